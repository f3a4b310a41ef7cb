"""The one owner of the Gemini Live connection.

`LiveLink` connects, sends, receives and reconnects; nothing else touches the SDK session.
Sources hand it audio, frames and turn events at any time, even before the first connection is
up or while it is reconnecting: audio and control events wait in one ordered, bounded outbox
(audio is never dropped for video's sake), and frames sit in a single latest-only slot, so a
slow link drops frames, never audio. What the server says comes out of `events()` as small
frozen dataclasses, in order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import numpy as np
import soxr
from google.genai import errors, types
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    WebSocketException,
)

from shelfsight.errors import UserError

log = logging.getLogger(__name__)

MIC_MIME = "audio/pcm;rate=16000"
SPEAKER_RATE_HZ = 24000
MIC_CHUNK_S = 0.02


# ---- what the server says, as the rest of the program sees it --------------------------------


@dataclass(frozen=True)
class AnswerAudio:
    pcm: bytes  # 24 kHz mono PCM16
    t_received: float


@dataclass(frozen=True)
class UserTranscript:
    text: str


@dataclass(frozen=True)
class AnswerTranscript:
    text: str


@dataclass(frozen=True)
class Interrupted:
    t_received: float


@dataclass(frozen=True)
class TurnComplete:
    t_received: float


@dataclass(frozen=True)
class GoAway:
    time_left_s: float | None


@dataclass(frozen=True)
class Connected:
    attempt: int
    resumed: bool
    outage_s: float  # time without a working connection before this one (0 for the first)


@dataclass(frozen=True)
class Reconnecting:
    reason: str
    attempt: int
    delay_s: float


ServerEvent = (
    AnswerAudio
    | UserTranscript
    | AnswerTranscript
    | Interrupted
    | TurnComplete
    | GoAway
    | Connected
    | Reconnecting
)


# ---- what the client sends ----------------------------------------------------------------


@dataclass(frozen=True)
class _Audio:
    pcm: bytes


@dataclass(frozen=True)
class _Control:
    kind: str  # "text" | "activity_start" | "activity_end" | "audio_stream_end"
    text: str = ""


ConfigFactory = Callable[[str | None], types.LiveConnectConfig]


class LiveLink:
    """Connection owner; all methods are called on the event loop thread."""

    def __init__(
        self,
        *,
        client: object,
        model: str,
        config_for: ConfigFactory,
        max_outage_s: float = 60.0,
        first_connect_timeout_s: float = 15.0,
        audio_buffer_s: float = 5.0,
    ) -> None:
        self._client = client
        self._model = model
        self._config_for = config_for
        self._max_outage_s = max_outage_s
        self._first_connect_timeout_s = first_connect_timeout_s
        # Outbox policy: control items are never dropped; audio beyond `audio_buffer_s` drops
        # the oldest audio (counted), which only happens during a long outage.
        self._outbox: collections.deque[_Audio | _Control] = collections.deque()
        self._audio_in_outbox = 0
        self._max_audio_items = int(audio_buffer_s / MIC_CHUNK_S)
        self._frame: bytes | None = None
        self._wake = asyncio.Event()
        # Server events: unbounded by design, consumed at once by the conversation task; the
        # producer is the network, already paced by the server.
        self._events: asyncio.Queue[ServerEvent] = asyncio.Queue()
        self._handle: str | None = None
        self.audio_dropped = 0
        self.audio_chunks_sent = 0
        self.frames_sent = 0
        self.frames_skipped = 0

    # -- input side ---------------------------------------------------------------------------

    def send_audio(self, pcm: bytes) -> None:
        if self._audio_in_outbox >= self._max_audio_items:
            self._drop_oldest_audio()
        self._outbox.append(_Audio(pcm))
        self._audio_in_outbox += 1
        self._wake.set()

    def send_frame(self, jpeg: bytes) -> None:
        if self._frame is not None:
            self.frames_skipped += 1
        self._frame = jpeg
        self._wake.set()

    def send_text(self, text: str) -> None:
        self._control("text", text)

    def activity_start(self) -> None:
        self._control("activity_start")

    def activity_end(self) -> None:
        self._control("activity_end")

    def audio_stream_end(self) -> None:
        self._control("audio_stream_end")

    @property
    def audio_backlog_s(self) -> float:
        return self._audio_in_outbox * MIC_CHUNK_S

    @property
    def resumption_handle(self) -> str | None:
        return self._handle

    async def events(self) -> AsyncIterator[ServerEvent]:
        while True:
            yield await self._events.get()

    def _control(self, kind: str, text: str = "") -> None:
        self._outbox.append(_Control(kind, text))
        self._wake.set()

    def _drop_oldest_audio(self) -> None:
        for i, item in enumerate(self._outbox):
            if isinstance(item, _Audio):
                del self._outbox[i]
                self._audio_in_outbox -= 1
                self.audio_dropped += 1
                return

    # -- connection ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and keep connected until cancelled; raises UserError on a fatal close."""
        attempt = 0
        outage_started: float | None = time.monotonic()
        first = True
        while True:
            attempt += 1
            try:
                async with self._client.aio.live.connect(  # type: ignore[attr-defined]
                    model=self._model, config=self._config_for(self._handle)
                ) as session:
                    outage_s = 0.0 if first else time.monotonic() - (outage_started or 0.0)
                    self._emit(Connected(attempt, self._handle is not None, outage_s))
                    first, attempt, outage_started = False, 0, None
                    await self._serve(session)
            except (errors.APIError, OSError, TimeoutError, WebSocketException) as exc:
                reason = _reason_to_retry(exc, self._model)
            if outage_started is None:
                outage_started = time.monotonic()
            limit = self._first_connect_timeout_s if first else self._max_outage_s
            waited = time.monotonic() - outage_started
            if waited >= limit:
                where = "reach" if first else "reconnect to"
                raise UserError(
                    f"Could not {where} the Gemini Live API for {waited:.0f} s: {reason}."
                )
            delay = min(_backoff_s(attempt), max(0.0, limit - waited))
            self._emit(Reconnecting(reason, attempt, delay))
            await asyncio.sleep(delay)

    async def _serve(self, session: object) -> None:
        """Pump both directions on one connection until it closes; raises why it closed."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._send_loop(session))
                tg.create_task(self._receive_loop(session))
        except BaseExceptionGroup as group:
            raise _most_telling(group) from None

    async def _send_loop(self, session: object) -> None:
        send = session.send_realtime_input  # type: ignore[attr-defined]
        self._wake.set()  # whatever piled up while disconnected goes out now
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                item = self._outbox[0]
                await _send_item(send, item)
                # Popped only once sent: a send cut by a dropped socket is retried next time.
                self._outbox.popleft()
                if isinstance(item, _Audio):
                    self._audio_in_outbox -= 1
                    self.audio_chunks_sent += 1
            if self._frame is not None:
                jpeg, self._frame = self._frame, None
                await send(video=types.Blob(data=jpeg, mime_type="image/jpeg"))
                self.frames_sent += 1

    async def _receive_loop(self, session: object) -> None:
        while True:
            async for msg in session.receive():  # type: ignore[attr-defined]
                for event in self._translate(msg):
                    self._emit(event)

    def _translate(self, msg: types.LiveServerMessage) -> list[ServerEvent]:
        now = time.monotonic()
        out: list[ServerEvent] = []
        content = msg.server_content
        if content is not None:
            if content.interrupted:
                out.append(Interrupted(now))
            if content.input_transcription and content.input_transcription.text:
                out.append(UserTranscript(content.input_transcription.text))
            if content.model_turn and content.model_turn.parts:
                for part in content.model_turn.parts:
                    blob = part.inline_data
                    if blob and blob.data and (blob.mime_type or "").startswith("audio/pcm"):
                        out.append(AnswerAudio(_to_speaker_rate(blob.data, blob.mime_type), now))
            if content.output_transcription and content.output_transcription.text:
                out.append(AnswerTranscript(content.output_transcription.text))
            if content.turn_complete:
                out.append(TurnComplete(now))
        if msg.go_away is not None:
            out.append(GoAway(_seconds(msg.go_away.time_left)))
        update = msg.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self._handle = update.new_handle
        return out

    def _emit(self, event: ServerEvent) -> None:
        self._events.put_nowait(event)


async def _send_item(send: Callable[..., object], item: _Audio | _Control) -> None:
    if isinstance(item, _Audio):
        await send(audio=types.Blob(data=item.pcm, mime_type=MIC_MIME))  # type: ignore[misc]
    elif item.kind == "text":
        await send(text=item.text)  # type: ignore[misc]
    elif item.kind == "activity_start":
        await send(activity_start=types.ActivityStart())  # type: ignore[misc]
    elif item.kind == "activity_end":
        await send(activity_end=types.ActivityEnd())  # type: ignore[misc]
    elif item.kind == "audio_stream_end":
        await send(audio_stream_end=True)  # type: ignore[misc]


# ---- error classification -----------------------------------------------------------------


def _reason_to_retry(exc: BaseException, model: str) -> str:
    """Say why a connection ended, or raise UserError when retrying cannot help.

    1007 (invalid argument, bad key) and 1008 (policy, unknown model) are fatal; 1011, 1006,
    network and TLS errors are transient.
    """
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403):
            raise UserError(
                f"The Gemini Live API refused the key (HTTP {status}): check GEMINI_API_KEY."
            ) from None
        if status == 404:
            raise UserError(
                "The Live API endpoint was not found (HTTP 404): check GOOGLE_GEMINI_BASE_URL."
            ) from None
    if isinstance(exc, errors.APIError):
        code, reason = exc.code, _short(exc.details)
    elif isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd else 1006
        reason = _short(exc.rcvd.reason if exc.rcvd else "abnormal closure")
    else:
        return _describe_network_error(exc)
    lowered = reason.lower()
    if code == 1007 and "api key" in lowered:
        raise UserError(
            "The Gemini API key was rejected: check GEMINI_API_KEY "
            "(keys are at https://aistudio.google.com/apikey)."
        )
    if code == 1008 and ("not found" in lowered or "not supported" in lowered):
        raise UserError(
            f"Model {model!r} is not available for the Live API ({reason}). "
            "Choose another with --model or SHELFSIGHT_MODEL."
        )
    if code in (1007, 1008):
        raise UserError(f"The Gemini Live API refused the session ({code}): {reason}")
    return f"connection closed ({code}: {reason})" if reason else f"connection closed ({code})"


def _most_telling(group: BaseExceptionGroup) -> BaseException:
    """Of the errors both directions saw, prefer the receiver's: it carries the close code."""
    leaves = list(_leaves(group))
    for kind in (errors.APIError, ConnectionClosed):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0]


def _leaves(group: BaseExceptionGroup) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _describe_network_error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, InvalidHandshake):
        return f"handshake failed ({exc})"
    return f"network error ({exc.__class__.__name__}: {exc})"


def _short(details: object, limit: int = 200) -> str:
    text = details if isinstance(details, str) else str(details or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _backoff_s(attempt: int) -> float:
    """Exponential backoff with full jitter: 0.25 s, 0.5 s, 1 s ... capped at 8 s."""
    ceiling = min(8.0, 0.25 * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _seconds(duration: object) -> float | None:
    if duration is None:
        return None
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        return float(duration.total_seconds())  # type: ignore[attr-defined]
    with contextlib.suppress(TypeError, ValueError):
        return float(str(duration).rstrip("s"))
    return None


def _to_speaker_rate(pcm: bytes, mime_type: str | None) -> bytes:
    """The service sends 24 kHz; convert if a future model says otherwise."""
    rate = SPEAKER_RATE_HZ
    for field in (mime_type or "").split(";"):
        key, _, value = field.strip().partition("=")
        if key == "rate" and value.isdigit():
            rate = int(value)
    if rate == SPEAKER_RATE_HZ:
        return pcm
    samples = np.frombuffer(pcm, dtype=np.int16)
    return soxr.resample(samples, rate, SPEAKER_RATE_HZ).astype(np.int16).tobytes()
