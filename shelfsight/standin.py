"""A local stand-in for the Gemini Live `BidiGenerateContent` websocket endpoint.

The real google-genai client talks to it over real TLS on loopback, so tests, the offline demo
and replays exercise the same connection code as a live run. It speaks the wire format the SDK
sends (checked against google-genai 3.6): a `setup` message, then `realtime_input` /
`client_content` messages; it answers with scripted speech in camelCase `serverContent`
messages and fails the way the real service does (close codes 1007, 1008, 1011).

Threads: the server runs on one asyncio loop (the caller's, or its own thread via
`StandIn.start_in_thread`); the recordings it keeps are guarded by a lock so tests may read
them from any thread. Nothing here reads or prints an API key: only whether it was accepted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import trustme
from google.genai import types
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

ANSWER_RATE_HZ = 24_000
DEFAULT_ANSWER_TEXT = "Third shelf from the top, right end, green bag."
DEFAULT_QUESTION_TEXT = "Where are the gluten-free crackers?"
_PATH_RE = re.compile(
    r"^/+ws/google\.ai\.generativelanguage\.(?P<version>v\w+)\.GenerativeService"
    r"\.BidiGenerateContent(Constrained)?$"
)
_MAX_CLOSE_REASON_BYTES = 123  # RFC 6455 limit; the real service truncates too
_BAD_KEY_REASON = "API key not valid. Please pass a valid API key."
_BAD_MODEL_REASON = (
    "{model} is not found for API version {version}, or is not supported for "
    "bidiGenerateContent. Call ListModels to see the list of available models and their "
    "supported methods."
)


def synth_speech_pcm16(
    duration_s: float, rate_hz: int, level_dbfs: float = -20.0, f0_hz: float = 140.0
) -> bytes:
    """Deterministic speech-like mono PCM16: harmonics of `f0_hz` under a ~3.5 Hz syllable
    envelope, scaled to an RMS of `level_dbfs`. Loud enough for any energy VAD by default."""
    t = np.arange(int(duration_s * rate_hz)) / rate_hz
    voice = sum(np.sin(2 * np.pi * f0_hz * k * t) / k for k in range(1, 6))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t)
    fade = np.clip(np.minimum(t, t[-1] - t) / 0.01, 0.0, 1.0) if len(t) else t
    wave = voice * syllables * fade
    rms = float(np.sqrt(np.mean(wave**2))) if len(t) else 1.0
    scaled = wave / rms * 32768 * 10 ** (level_dbfs / 20)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


@dataclass(frozen=True)
class ScriptedAnswer:
    """One scripted exchange: the transcript of the spoken question and the spoken answer
    (24 kHz mono PCM16, exactly the bytes the client will receive)."""

    question_text: str
    answer_text: str
    answer_pcm24k: bytes

    def __post_init__(self) -> None:
        if not self.answer_pcm24k or len(self.answer_pcm24k) % 2:
            raise ValueError("answer_pcm24k must be non-empty whole PCM16 samples")


def default_answers() -> tuple[ScriptedAnswer, ...]:
    """The one bundled answer: ~1.5 s of speech-like audio about the green bag."""
    pcm = synth_speech_pcm16(1.5, ANSWER_RATE_HZ)
    return (ScriptedAnswer(DEFAULT_QUESTION_TEXT, DEFAULT_ANSWER_TEXT, pcm),)


@dataclass(frozen=True)
class ConnectionFaults:
    """Scripted misbehaviour for one connection; times count from `setupComplete`."""

    refuse_http_status: int | None = None  # e.g. 503: the websocket upgrade is refused
    go_away_after_s: float | None = None
    go_away_time_left_s: float = 5.0
    close_after_s: float | None = None
    close_code: int = 1011
    close_reason: str = "Internal error encountered."


@dataclass(frozen=True)
class StandInConfig:
    """What the stand-in accepts and how it answers.

    `api_keys=None` accepts any non-empty key; `models=None` accepts any model (names with or
    without the "models/" prefix). Answers are used in order across all connections, cycling.
    `connection_faults[i]` applies to the i-th connection (0-based); later ones behave.
    `speed` is how many times faster than real time answer audio is sent (inf: no pacing).
    """

    api_keys: frozenset[str] | None = None
    models: frozenset[str] | None = None
    answers: tuple[ScriptedAnswer, ...] = field(default_factory=default_answers)
    answer_chunk_ms: int = 40
    speed: float = 4.0
    vad_threshold_dbfs: float = -35.0
    vad_window_ms: int = 20
    vad_speech_ms: int = 100
    vad_silence_ms: int = 500  # overridden by the setup's silenceDurationMs when given
    connection_faults: tuple[ConnectionFaults, ...] = ()

    def faults_for(self, index: int) -> ConnectionFaults:
        in_range = index < len(self.connection_faults)
        return self.connection_faults[index] if in_range else ConnectionFaults()


@dataclass(frozen=True)
class ReceivedEvent:
    """One thing the client sent. kind: audio, video, text, activity_start, activity_end,
    audio_stream_end, client_content, other. `data` is decoded (PCM or JPEG bytes)."""

    t_monotonic: float
    kind: str
    data: bytes = b""
    mime_type: str = ""
    text: str = ""


@dataclass(frozen=True)
class SentEvent:
    """One thing the stand-in sent. kind: setup_complete, input_transcription, audio,
    output_transcription, generation_complete, turn_complete, interrupted, go_away,
    session_resumption_update, close."""

    t_monotonic: float
    kind: str
    text: str = ""
    n_bytes: int = 0


@dataclass(frozen=True)
class TurnRecord:
    """One user turn and its answer. outcome: streaming, completed, interrupted, abandoned."""

    trigger: str  # vad, activity, text, client_content, audio_stream_end
    question_text: str
    answer_text: str
    t_start_monotonic: float
    t_end_monotonic: float | None = None
    outcome: str = "streaming"


class ConnectionRecord:
    """What one connection did. Written on the stand-in's loop, readable from any thread."""

    def __init__(
        self,
        index: int,
        path: str,
        api_key_ok: bool,
        lock: threading.Lock,
        on_change: Callable[[], None],
    ) -> None:
        self.index = index
        self.path = path
        self.api_key_ok = api_key_ok
        self._lock = lock
        self._on_change = on_change  # wakes `StandIn.wait_until`; called on the loop only
        self._setup: dict[str, Any] | None = None
        self._close: tuple[int | None, str | None] = (None, None)
        self._received: list[ReceivedEvent] = []
        self._sent: list[SentEvent] = []
        self._turns: list[TurnRecord] = []

    @property
    def setup(self) -> dict[str, Any] | None:
        with self._lock:
            return self._setup

    @property
    def close_code(self) -> int | None:
        with self._lock:
            return self._close[0]

    @property
    def close_reason(self) -> str | None:
        with self._lock:
            return self._close[1]

    def received(self, kind: str | None = None) -> list[ReceivedEvent]:
        with self._lock:
            return [e for e in self._received if kind is None or e.kind == kind]

    def sent(self, kind: str | None = None) -> list[SentEvent]:
        with self._lock:
            return [e for e in self._sent if kind is None or e.kind == kind]

    def turns(self) -> list[TurnRecord]:
        with self._lock:
            return list(self._turns)

    def audio_bytes(self) -> bytes:
        return b"".join(e.data for e in self.received("audio"))

    def frames(self) -> list[bytes]:
        return [e.data for e in self.received("video")]

    def texts(self) -> list[str]:
        return [e.text for e in self.received("text")]

    @property
    def turns_completed(self) -> int:
        return sum(t.outcome == "completed" for t in self.turns())

    @property
    def interruptions(self) -> int:
        return sum(t.outcome == "interrupted" for t in self.turns())

    # Writers: called only on the stand-in's event loop.
    def _set_setup(self, setup: dict[str, Any]) -> None:
        with self._lock:
            self._setup = setup
        self._on_change()

    def _set_close(self, code: int | None, reason: str | None) -> None:
        with self._lock:
            self._close = (code, reason)
        self._on_change()

    def _add_received(self, event: ReceivedEvent) -> None:
        with self._lock:
            self._received.append(event)
        self._on_change()

    def _add_sent(self, event: SentEvent) -> None:
        with self._lock:
            self._sent.append(event)
        self._on_change()

    def _start_turn(self, turn: TurnRecord) -> int:
        with self._lock:
            self._turns.append(turn)
            number = len(self._turns) - 1
        self._on_change()
        return number

    def _end_turn(self, number: int, outcome: str) -> None:
        """Records how a turn ended; the first ending wins."""
        with self._lock:
            if self._turns[number].outcome != "streaming":
                return
            ended = replace(self._turns[number], t_end_monotonic=time.monotonic(), outcome=outcome)
            self._turns[number] = ended
        self._on_change()


def _pick(obj: Mapping[str, Any] | None, camel: str) -> Any:
    """Reads a field the SDK may spell camelCase or snake_case (it sends both, per field)."""
    if not obj:
        return None
    snake = re.sub(r"([A-Z])", r"_\1", camel).lower()
    return obj.get(camel, obj.get(snake))


def _decode_b64(text: str) -> bytes:
    """Decodes standard or urlsafe base64 (the SDK sends urlsafe), padding optional."""
    normal = text.replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(normal + "=" * (-len(normal) % 4))


def _api_version(path: str) -> str:
    match = _PATH_RE.match(path)
    return match["version"] if match else "v1beta"


def _rate_from_mime(mime_type: str, default_hz: int = 16_000) -> int:
    match = re.search(r"rate=(\d+)", mime_type)
    return int(match.group(1)) if match else default_hz


@dataclass(frozen=True)
class _SessionOptions:
    """The parts of a client's setup message that change how the stand-in behaves."""

    model: str
    manual_activity: bool
    barge_in: bool
    silence_ms: int
    input_transcription: bool
    output_transcription: bool
    resumption: bool
    resume_handle: str | None

    @classmethod
    def from_setup(cls, setup: Mapping[str, Any], config: StandInConfig) -> _SessionOptions:
        rt = _pick(setup, "realtimeInputConfig") or {}
        aad = _pick(rt, "automaticActivityDetection") or {}
        resumption = _pick(setup, "sessionResumption")
        return cls(
            model=str(setup.get("model", "")),
            manual_activity=bool(_pick(aad, "disabled")),
            barge_in=_pick(rt, "activityHandling") != "NO_INTERRUPTION",
            silence_ms=int(_pick(aad, "silenceDurationMs") or config.vad_silence_ms),
            input_transcription=_pick(setup, "inputAudioTranscription") is not None,
            output_transcription=_pick(setup, "outputAudioTranscription") is not None,
            resumption=resumption is not None,
            resume_handle=_pick(resumption, "handle"),
        )


class _EnergyVad:
    """Finds speech start and end in mono PCM16 from fixed-window RMS.

    Time is audio time (samples), not wall time, so clients may send faster than real time.
    """

    def __init__(self, config: StandInConfig, rate_hz: int, silence_ms: int) -> None:
        self.rate_hz = rate_hz
        self._window_bytes = 2 * rate_hz * config.vad_window_ms // 1000
        self._window_ms = config.vad_window_ms
        self._threshold = 32768 * 10 ** (config.vad_threshold_dbfs / 20)
        self._speech_ms, self._silence_ms = config.vad_speech_ms, silence_ms
        self._pending = bytearray()
        self.in_speech = False
        self._run_ms = 0  # consecutive ms that argue for leaving the current state

    def feed(self, pcm: bytes) -> list[str]:
        """Returns "start"/"end" transitions found in this chunk, in order."""
        self._pending += pcm
        transitions = []
        while len(self._pending) >= self._window_bytes:
            window = np.frombuffer(bytes(self._pending[: self._window_bytes]), "<i2")
            del self._pending[: self._window_bytes]
            loud = float(np.sqrt(np.mean(window.astype(np.float64) ** 2))) >= self._threshold
            self._run_ms = self._run_ms + self._window_ms if loud != self.in_speech else 0
            needed = self._silence_ms if self.in_speech else self._speech_ms
            if self._run_ms >= needed:
                self.in_speech, self._run_ms = not self.in_speech, 0
                transitions.append("start" if self.in_speech else "end")
        return transitions

    def force_end(self) -> bool:
        """audioStreamEnd: ends pending speech at once; True if there was any."""
        was_speaking, self.in_speech, self._run_ms = self.in_speech, False, 0
        self._pending.clear()
        return was_speaking


def _truncate_reason(reason: str) -> str:
    return reason.encode()[:_MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


async def _cancel_children(*tasks: asyncio.Task[None] | None) -> None:
    """Cancels child tasks, waits for all of them, then re-raises the first real failure."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    if live:
        await asyncio.wait(live)
    for task in live:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


class _Session:
    """One client connection: checks the setup, records input, takes turns, streams answers.

    Runs entirely on the stand-in's loop; owns the websocket until the handler returns.
    """

    def __init__(self, ws: ServerConnection, owner: StandIn, record: ConnectionRecord) -> None:
        self._ws, self._owner, self._record = ws, owner, record
        self._config = owner.config
        self._faults = self._config.faults_for(record.index)
        self._options: _SessionOptions | None = None
        self._vad: _EnergyVad | None = None
        self._activity_open = False
        self._answer_task: asyncio.Task[None] | None = None
        self._closing = False

    async def run(self) -> None:
        setup = await self._read_setup()
        if setup is None:
            return
        self._options = _SessionOptions.from_setup(setup, self._config)
        await self._send({"setupComplete": {}}, "setup_complete")
        reader = asyncio.create_task(self._read_loop())
        faults = asyncio.create_task(self._fault_timeline())
        try:
            await asyncio.wait({reader, faults}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._closing = True
            await _cancel_children(reader, faults, self._answer_task)

    async def _read_setup(self) -> dict[str, Any] | None:
        """Waits for the setup message and refuses it like the real service, or returns it."""
        try:
            message = json.loads(await self._ws.recv())
        except ValueError:
            message = None
        setup = message.get("setup") if isinstance(message, dict) else None
        if not isinstance(setup, dict):
            await self.close(1007, "Request contains an invalid argument.")
            return None
        self._record._set_setup(setup)
        if not self._record.api_key_ok:
            await self.close(1007, _BAD_KEY_REASON)
            return None
        model = str(setup.get("model", ""))
        if not self._owner.knows_model(model):
            version = _api_version(self._record.path)
            await self.close(1008, _BAD_MODEL_REASON.format(model=model, version=version))
            return None
        return setup

    async def _read_loop(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                t = time.monotonic()
                realtime = message.get("realtime_input", message.get("realtimeInput"))
                content = message.get("client_content", message.get("clientContent"))
                if realtime is not None:
                    await self._on_realtime_input(realtime, t)
                elif content is not None:
                    await self._on_client_content(content, t)
                else:
                    self._record._add_received(ReceivedEvent(t, "other", text=str(raw)[:200]))
        except ConnectionClosed:
            return

    async def _on_realtime_input(self, realtime: Mapping[str, Any], t: float) -> None:
        for blob in _pick(realtime, "mediaChunks") or []:
            await self._on_blob(blob, t)
        for key in ("audio", "video"):
            if realtime.get(key) is not None:
                await self._on_blob(realtime[key], t)
        if (text := realtime.get("text")) is not None:
            self._record._add_received(ReceivedEvent(t, "text", text=text))
            await self._user_turn_ended("text", text)
        if _pick(realtime, "activityStart") is not None:
            self._record._add_received(ReceivedEvent(t, "activity_start"))
            self._activity_open = True
            await self._user_started_speaking()
        if _pick(realtime, "activityEnd") is not None:
            self._record._add_received(ReceivedEvent(t, "activity_end"))
            if self._activity_open:
                self._activity_open = False
                await self._user_turn_ended("activity", None)
        if _pick(realtime, "audioStreamEnd"):
            self._record._add_received(ReceivedEvent(t, "audio_stream_end"))
            if self._vad is not None and self._vad.force_end():
                await self._user_turn_ended("audio_stream_end", None)

    async def _on_blob(self, blob: Mapping[str, Any], t: float) -> None:
        mime_type = str(_pick(blob, "mimeType") or "")
        data = _decode_b64(str(blob.get("data", "")))
        media = mime_type.split("/")[0]
        kind = {"audio": "audio", "image": "video", "video": "video"}.get(media, "other")
        self._record._add_received(ReceivedEvent(t, kind, data=data, mime_type=mime_type))
        assert self._options is not None
        if kind != "audio" or self._options.manual_activity:
            return
        rate_hz = _rate_from_mime(mime_type)
        if self._vad is None or self._vad.rate_hz != rate_hz:
            self._vad = _EnergyVad(self._config, rate_hz, self._options.silence_ms)
        for transition in self._vad.feed(data):
            if transition == "start":
                await self._user_started_speaking()
            else:
                await self._user_turn_ended("vad", None)

    async def _on_client_content(self, content: Mapping[str, Any], t: float) -> None:
        turns = content.get("turns") or []
        parts = [p for turn in turns if turn.get("role", "user") == "user" for p in turn["parts"]]
        text = " ".join(str(p["text"]) for p in parts if "text" in p)
        self._record._add_received(ReceivedEvent(t, "client_content", text=text))
        if _pick(content, "turnComplete"):
            await self._user_turn_ended("client_content", text)

    async def _user_started_speaking(self) -> None:
        assert self._options is not None
        if self._options.barge_in:
            await self._interrupt()

    async def _user_turn_ended(self, trigger: str, typed_text: str | None) -> None:
        """Starts the next scripted answer; a typed question is recorded as typed."""
        assert self._options is not None
        if self._options.barge_in:
            await self._interrupt()
        answer = self._owner._next_answer()
        question = answer.question_text if typed_text is None else typed_text
        turn = TurnRecord(trigger, question, answer.answer_text, time.monotonic())
        number = self._record._start_turn(turn)
        previous = self._answer_task  # queue behind it if still streaming (NO_INTERRUPTION)
        previous = previous if previous is not None and not previous.done() else None
        self._answer_task = asyncio.create_task(
            self._answer(number, answer, spoken=typed_text is None, after=previous)
        )

    async def _interrupt(self) -> None:
        task = self._answer_task
        if task is None or task.done():
            return
        await _cancel_children(task)
        await self._send({"serverContent": {"interrupted": True}}, "interrupted")

    async def _answer(
        self, number: int, answer: ScriptedAnswer, spoken: bool, after: asyncio.Task[None] | None
    ) -> None:
        """Streams one answer; records how the turn ended. Cancelled on barge-in."""
        assert self._options is not None
        try:
            if after is not None:
                await after
            if spoken and self._options.input_transcription:
                message = {"serverContent": {"inputTranscription": {"text": answer.question_text}}}
                await self._send(message, "input_transcription", answer.question_text)
            await self._stream_audio(answer)
            await self._send({"serverContent": {"generationComplete": True}}, "generation_complete")
            usage = {"promptTokenCount": 100, "responseTokenCount": 50, "totalTokenCount": 150}
            done = {"serverContent": {"turnComplete": True}, "usageMetadata": usage}
            await self._send(done, "turn_complete")
            self._record._end_turn(number, "completed")
            if self._options.resumption:
                handle = self._owner._new_handle(self._record.index)
                update = {"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}}
                await self._send(update, "session_resumption_update", handle)
        except asyncio.CancelledError:
            self._record._end_turn(number, "abandoned" if self._closing else "interrupted")
            raise
        except ConnectionClosed:
            self._record._end_turn(number, "abandoned")

    async def _stream_audio(self, answer: ScriptedAnswer) -> None:
        """Sends answer audio in chunks `speed` times faster than real time, with transcript
        pieces (words with their leading spaces) spread evenly across the chunks."""
        assert self._options is not None
        chunk_bytes = 2 * ANSWER_RATE_HZ * self._config.answer_chunk_ms // 1000
        pcm = answer.answer_pcm24k
        chunks = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
        pieces_before: dict[int, list[str]] = {}  # chunk index -> transcript pieces sent before it
        if self._options.output_transcription:
            pieces = re.findall(r"\s*\S+", answer.answer_text)
            for k, piece in enumerate(pieces):
                pieces_before.setdefault(k * len(chunks) // len(pieces), []).append(piece)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, chunk in enumerate(chunks):
            for piece in pieces_before.get(i, []):
                transcript = {"serverContent": {"outputTranscription": {"text": piece}}}
                await self._send(transcript, "output_transcription", piece)
            data = base64.b64encode(chunk).decode()
            inline = {"inlineData": {"mimeType": f"audio/pcm;rate={ANSWER_RATE_HZ}", "data": data}}
            message = {"serverContent": {"modelTurn": {"parts": [inline]}}}
            await self._send(message, "audio", n_bytes=len(chunk))
            due = start + (i + 1) * self._config.answer_chunk_ms / 1000 / self._config.speed
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def _fault_timeline(self) -> None:
        """Runs this connection's scripted faults. Returns only after closing the connection;
        otherwise parks until the session cancels it."""
        faults = self._faults
        steps: list[tuple[float, Callable[[], Any]]] = []
        if faults.go_away_after_s is not None:
            time_left = f"{faults.go_away_time_left_s:g}s"
            message = {"goAway": {"timeLeft": time_left}}
            steps.append(
                (faults.go_away_after_s, lambda: self._send(message, "go_away", time_left))
            )
        if faults.close_after_s is not None:
            steps.append(
                (faults.close_after_s, lambda: self.close(faults.close_code, faults.close_reason))
            )
        loop = asyncio.get_running_loop()
        start = loop.time()
        for at_s, step in sorted(steps, key=lambda s: s[0]):
            await asyncio.sleep(max(0.0, start + at_s - loop.time()))
            await step()
        if faults.close_after_s is None:
            await asyncio.Event().wait()

    async def _send(
        self, message: dict[str, Any], kind: str, text: str = "", n_bytes: int = 0
    ) -> None:
        """Sends one server message as a binary JSON frame, as the real service does."""
        await self._ws.send(json.dumps(message).encode())
        self._record._add_sent(SentEvent(time.monotonic(), kind, text=text, n_bytes=n_bytes))

    async def close(self, code: int, reason: str) -> None:
        self._record._add_sent(SentEvent(time.monotonic(), "close", text=f"{code} {reason}"))
        await self._ws.close(code, _truncate_reason(reason))


class StandIn:
    """The stand-in server on the running loop: `async with StandIn(config) as server:`.

    Listens on 127.0.0.1 with an ephemeral port and a certificate from a throwaway CA whose PEM
    lives in a temp dir it owns (removed on exit). Point the SDK at it with `http_options()`,
    or with GOOGLE_GEMINI_BASE_URL=`base_url` and SSL_CERT_FILE=`ca_pem_path`.
    """

    def __init__(self, config: StandInConfig | None = None) -> None:
        self.config = config or StandInConfig()
        self._lock = threading.Lock()
        self._records: list[ConnectionRecord] = []
        self._by_connection: dict[ServerConnection, ConnectionRecord] = {}
        self._answers_given = 0
        self._handles: list[str] = []
        self._ca: trustme.CA | None = None
        self._tmpdir: Path | None = None
        self._server: Server | None = None
        self._changed: asyncio.Event | None = None

    @classmethod
    def start_in_thread(cls, config: StandInConfig | None = None) -> StandInThread:
        """Runs a stand-in on its own thread and loop, for sync callers (CLI tests)."""
        return StandInThread(config or StandInConfig())

    async def __aenter__(self) -> StandIn:
        self._changed = asyncio.Event()
        self._ca = trustme.CA()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
        self._tmpdir = Path(tempfile.mkdtemp(prefix="shelfsight-standin-"))
        self._ca.cert_pem.write_to_path(str(self._tmpdir / "ca.pem"))
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            ssl=server_ctx,
            process_request=self._admit,
            max_size=16 * 2**20,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    @property
    def port(self) -> int:
        assert self._server is not None, "use StandIn as an async context manager"
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem_path(self) -> Path:
        assert self._tmpdir is not None, "use StandIn as an async context manager"
        return self._tmpdir / "ca.pem"

    def client_ssl_context(self) -> ssl.SSLContext:
        """A fresh client context trusting only the stand-in's CA."""
        assert self._ca is not None, "use StandIn as an async context manager"
        ctx = ssl.create_default_context()
        self._ca.configure_trust(ctx)
        return ctx

    def http_options(self) -> types.HttpOptions:
        """For `genai.Client(api_key=..., http_options=server.http_options())`."""
        return types.HttpOptions(
            base_url=self.base_url, async_client_args={"ssl": self.client_ssl_context()}
        )

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Every connection attempt so far, refused ones included, in arrival order."""
        with self._lock:
            return list(self._records)

    @property
    def turns_completed(self) -> int:
        return sum(c.turns_completed for c in self.connections)

    @property
    def issued_handles(self) -> list[str]:
        with self._lock:
            return list(self._handles)

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Waits until `predicate` (e.g. on `connections`) holds, re-checking it after every
        recorded change; raises TimeoutError after `timeout_s`."""
        assert self._changed is not None, "use StandIn as an async context manager"
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Records every upgrade request; refuses scripted-fault and unknown-path ones."""
        key = request.headers.get("x-goog-api-key", "")
        accepted = self.config.api_keys
        key_ok = bool(key) and (accepted is None or key in accepted)
        with self._lock:
            index = len(self._records)
            record = ConnectionRecord(index, request.path, key_ok, self._lock, self._notify)
            self._records.append(record)
        self._notify()
        refuse_status = self.config.faults_for(record.index).refuse_http_status
        if refuse_status is not None:
            return connection.respond(refuse_status, "Service unavailable (scripted).\n")
        if not _PATH_RE.match(request.path):
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        self._by_connection[connection] = record
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        record = self._by_connection.pop(ws)
        try:
            await _Session(ws, self, record).run()
        except ConnectionClosed:
            pass  # the client went away mid-send; the close code is recorded below
        finally:
            if ws.close_code is None:
                await ws.close()
            record._set_close(ws.close_code, ws.close_reason)

    def knows_model(self, model: str) -> bool:
        """Whether a setup's model ("models/NAME" or "NAME") is served here."""
        known = self.config.models
        name = model.removeprefix("models/")
        return known is None or name in {m.removeprefix("models/") for m in known}

    def _next_answer(self) -> ScriptedAnswer:
        with self._lock:
            answer = self.config.answers[self._answers_given % len(self.config.answers)]
            self._answers_given += 1
            return answer

    def _new_handle(self, connection_index: int) -> str:
        with self._lock:
            handle = f"standin-{connection_index}-{len(self._handles)}"
            self._handles.append(handle)
            return handle


class StandInThread:
    """A `StandIn` running on its own daemon thread and event loop.

    Construct via `StandIn.start_in_thread`; usable as a context manager; `stop()` joins the
    thread. Recordings are read through `server` (thread-safe).
    """

    def __init__(self, config: StandInConfig) -> None:
        self._config = config
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._server: StandIn | None = None
        self._thread = threading.Thread(target=self._run, name="standin", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError("the Live API stand-in failed to start") from self._error

    @property
    def server(self) -> StandIn:
        assert self._server is not None
        return self._server

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def ca_pem_path(self) -> Path:
        return self.server.ca_pem_path

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"stand-in condition not met within {timeout_s} s")
            time.sleep(0.01)

    def stop(self) -> None:
        """Closes every connection (code 1001), removes the CA dir and joins the thread."""
        if self._loop is not None and self._stop_event is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join()
        if self._error is not None:
            raise RuntimeError("the Live API stand-in failed") from self._error

    def __enter__(self) -> StandInThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            async with StandIn(self._config) as server:
                self._server = server
                self._ready.set()
                await self._stop_event.wait()
        except Exception as error:  # reported to the starting thread, not printed here
            self._error = error
        finally:
            self._ready.set()
