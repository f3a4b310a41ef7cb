"""The one owner of the Gemini Live connection.

`LiveLink` connects, sends, receives and reconnects; nothing else touches the SDK session.
Sources hand it audio, frames and turn events at any time, even before the first connection is
up or while it is reconnecting: audio and control events wait in one ordered, bounded outbox
(see `shelfsight.live.outbox`; audio is never dropped for video's sake), and frames sit in a
single latest-only slot, so a slow link drops frames, never audio. What the server says comes
out of `events()` as small frozen dataclasses, in order.

A session outlives its connections. Every connection asks for context compression and session
resumption (the caller's config), and the newest handle is kept. On `go_away` the link waits
for a quiet moment (no answer playing, no question pending, the handle up to date) or until
shortly before `time_left` runs out, stops sending, closes the old connection and resumes on a
new one: the service refuses to resume a session while an earlier connection of it is open.
Answers keep arriving on the old connection until it is closed; mic audio waits in the outbox
meanwhile and goes out first on the new one, so nothing is lost and nothing is sent twice.
After an unexpected close, the link reconnects with backoff and re-sends what it sent since
the newest handle, which the resumed session does not hold.

A connection that stalls (a phone tether: no error, no close) is cut by a `Watchdog` when
something owed does not come back (see `shelfsight.live.liveness`): what we sent is not
acknowledged within `dead_after_s`, a question gets no word back, an idle connection's pings
go unanswered far longer than late pongs take. A quiet connection is never cut for its quiet.
An outage counts from when nothing more got through, and ends once a new connection has
shown it works (something came back after its setup), not merely opened.

A slow upload is met by `UploadPace` (`shelfsight.live.slow`): no pictures, 8 kHz audio (16
kHz again if the server refuses 8 kHz), the backlog reported; mic audio waits up to
`audio_buffer_s` (15 s) and what is lost beyond that is counted and reported (`AudioLost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from google.genai import types
from google.genai.live import AsyncSession

from shelfsight.core.frames import EncodedFrame
from shelfsight.core.pcm import MIC_MIME
from shelfsight.core.phrases import phrase
from shelfsight.errors import UserError
from shelfsight.live import sdk_socket
from shelfsight.live.ack_probe import AckProbe, platform_probe
from shelfsight.live.errors import (
    CONNECTION_ERRORS,
    Retry,
    backoff_s,
    classify,
    is_refusal,
    most_telling,
)
from shelfsight.live.events import (
    MIC_CHUNK_S,
    SPEAKER_RATE_HZ,
    AnswerAudio,
    AnswerCut,
    AnswerTranscript,
    AudioLost,
    Connected,
    FrameSent,
    GoAway,
    Interrupted,
    PictureSize,
    Reconnecting,
    ServerEvent,
    SlowLink,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    UserTranscript,
    translate,
)
from shelfsight.live.outbox import (
    BYTES_PER_S,
    ActivityEnd,
    ActivityStart,
    Audio,
    AudioStreamEnd,
    Item,
    Outbox,
    Text,
    ToolResponse,
)
from shelfsight.live.slow import (
    SLOW_BELOW_BPS,
    SLOW_BELOW_DEFLATED_BPS,
    UploadPace,
    WireAudio,
)
from shelfsight.live.watchdog import PING_EVERY_S, DeadLink, Watchdog

log = logging.getLogger(__name__)

__all__ = [  # the events are defined in live_events; callers import them from here
    "MIC_CHUNK_S",
    "SPEAKER_RATE_HZ",
    "AnswerAudio",
    "AnswerCut",
    "AnswerTranscript",
    "AudioLost",
    "Connected",
    "FrameSent",
    "GoAway",
    "Interrupted",
    "LiveLink",
    "Reconnecting",
    "ServerEvent",
    "PictureSize",
    "SlowLink",
    "ToolCall",
    "ToolCallCancellation",
    "TurnComplete",
    "UserTranscript",
]

QUESTION_GAP_S = 2.0  # speech after this long without any begins a new question
PENDING_INPUT_S = 4.0  # user input with no answer yet holds a goAway switch this long
RESUME_REFUSALS = 3  # 1011s to resuming before a fresh session (see `_old_socket_open`)
HANDLE_WAIT_S = 2.0  # after a turn, wait this long for its resumption handle before switching
STABLE_S = 5.0  # a connection that failed younger than this keeps the backoff growing
# A connection that lived this long was working as far as anyone could tell, whether or not
# anything came back on it (push-to-talk, idle, a server that answers no pings, no ACK probe).
WORKED_S = 30.0
DEFAULT_TIME_LEFT_S = 10.0  # a goAway without time_left
CLOSE_TIMEOUT_S = 2.0
OPEN_TIMEOUT_S = 8.0  # websocket handshake (the client's own 5 s) and the session setup
FLOWING_S = 1.0  # heard from the server this recently: a backlog means slow, not stalled
LOST_REPORT_EVERY_S = 5.0  # AudioLost events, at most this often while audio is being lost
WIRE_BYTES_PER_AUDIO_S = BYTES_PER_S * 4 / 3  # 16 kHz audio as base64 JSON, about
# What a healthy path holds in flight (a round trip of audio and a picture, segments counted
# whole); past it, the kernel's unacknowledged bytes are a slow path's queue, still to arrive.
IN_FLIGHT_SLACK_BYTES = 32 * 1024
# Speech only: mic audio goes up whole while an answer plays and this long after (the
# speaker's jitter buffer), so the server hears a barge-in at once.
ANSWER_TAIL_S = 0.5


ConfigFactory = Callable[[str | None], types.LiveConnectConfig]
ProbeFactory = Callable[[], AckProbe | None]  # one probe per connection (it may keep state)


class Connect(Protocol):
    """`client.aio.live.connect`, or anything shaped like it (tests, benchmarks)."""

    def __call__(
        self, *, model: str, config: types.LiveConnectConfig
    ) -> AbstractAsyncContextManager[AsyncSession]: ...


@dataclass(frozen=True)
class LinkStats:
    """What the link did in a session, for the summary and the recording's manifest."""

    connections: int
    audio_chunks_sent: int
    audio_replayed_s: float  # re-sent after lost connections (the resumed session lacked it)
    audio_dropped_s: float  # lost: an outage or a slow link outlasted the audio buffer
    frames_sent: int
    frames_skipped: int  # replaced by a newer frame before the link could send them
    dead_links: int = 0  # connections cut because nothing came back from the server
    slow_link_s: float = 0.0  # time the upload was too slow (8 kHz audio, no pictures)
    max_upload_backlog_s: float = 0.0  # the most mic audio that waited to go out


class _Connection:
    """One open SDK session (loop thread only)."""

    def __init__(
        self, session: AsyncSession, stack: contextlib.AsyncExitStack, resumed: bool
    ) -> None:
        self.session = session
        self.resumed = resumed
        self.watchdog: Watchdog | None = None
        self.t_opened = time.monotonic()
        self.go_away: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        self.retiring = False  # we are closing it on purpose: its close is not a failure
        self._stack = stack
        self.dead = False  # the watchdog cut it

    @property
    def proven(self) -> bool:
        """Something came back after the setup: the connection works, the outage is over."""
        return self.watchdog is None or self.watchdog.liveness.proven

    async def close(self) -> None:
        """Close the websocket; bounded, idempotent, never raises a connection error."""
        self.retiring = True
        stack, self._stack = self._stack, contextlib.AsyncExitStack()
        if self.dead:  # nobody would answer a close handshake
            sdk_socket.abort(sdk_socket.websocket_of(self.session))
        with contextlib.suppress(*CONNECTION_ERRORS):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await stack.aclose()


@dataclass(frozen=True)
class _Ending:
    reason: str
    planned: bool  # goAway switch
    replay: bool  # what was sent since the newest handle must go again
    t_monotonic: float  # when sending stopped


@dataclass
class _Outage:
    t_start: float  # when nothing more got through (monotonic s)
    first: bool = False  # no connection yet: the first-connect timeout applies
    attempts: int = 0
    resumes_refused: int = 0  # 1011 to a setup with our handle: the old socket still open
    again: bool = False  # it goes on after a connection that never worked: say so once


class LiveLink:
    """Connection owner; all methods are called on the event loop thread."""

    def __init__(
        self,
        *,
        connect: Connect,
        model: str,
        config_for: ConfigFactory,
        max_outage_s: float = 60.0,
        first_connect_timeout_s: float = 15.0,
        audio_buffer_s: float = 15.0,
        replay_s: float = 15.0,
        handover_margin_s: float = 1.5,
        dead_after_s: float = 2.5,
        ping_every_s: float = PING_EVERY_S,
        pace: UploadPace | None = None,
        ack_probe: ProbeFactory = platform_probe,
        speech_only: bool = False,
    ) -> None:
        self._connect_to = connect
        self._model = model
        self._config_for = config_for
        self._max_outage_s = max_outage_s
        self._first_connect_timeout_s = first_connect_timeout_s
        self._handover_margin_s = handover_margin_s
        self._dead_after_s = dead_after_s
        self._ping_every_s = ping_every_s
        self._pace = pace or UploadPace()
        self._ack_probe = ack_probe
        # Only the user's speech goes up (and all of it while an answer plays): pauses are
        # billed by the second and carry nothing the model needs (README, "What it costs").
        self.speech_only = speech_only
        self._t_answer_ends = -math.inf  # when the answer received so far ends playing
        self._worked_s = min(WORKED_S, max_outage_s / 2)  # well inside the outage limit
        self._sending = False  # inside a send: the watchdog's fallback counts it as owed
        self._activity_spoken = False  # the open push-to-talk turn held speech
        self._t_speech = -math.inf  # the last chunk with speech in it (monotonic s)
        self._question_began = False  # a picture may go out even on a slow link
        self._light_pictures = False  # what the sampler was last told (PictureSize)
        self._wire = WireAudio()
        self._conn: _Connection | None = None
        self._lost_reported_s = 0.0
        self._missed_told: set[int] = set()  # utterances already reported lost
        self._t_lost_reported = 0.0
        self._outbox = Outbox(max_audio_s=audio_buffer_s, replay_s=replay_s)
        self._frame: EncodedFrame | None = None
        self._last_frame: EncodedFrame | None = None  # re-sent on a new connection if none is newer
        self._wake = asyncio.Event()
        # Server events: unbounded by design, consumed at once by the conversation task; the
        # producer is the network, already paced by the server.
        self._events: asyncio.Queue[ServerEvent] = asyncio.Queue()
        self._handle: str | None = None
        self._context_lost = False
        # Turn state, for choosing when to switch connections (monotonic seconds).
        # Whether an answer is arriving on the current connection: wire state, for AnswerCut
        # and the goAway switch (the conversation keeps its own turn state from the events).
        self._answering = False
        self._activity_open = False
        self._t_input = 0.0  # last speech, typed text or activity end put in the outbox
        self._t_turn_end = 0.0  # last turn_complete or interrupted
        self._t_handle = 0.0  # last resumption handle
        self.connections = 0
        self.audio_chunks_sent = 0
        self.audio_replayed_s = 0.0
        self.frames_sent = 0
        self.frames_skipped = 0
        self.dead_links = 0

    # -- input side ---------------------------------------------------------------------------

    def send_audio(self, pcm: bytes, *, speech: bool = False) -> None:
        """16 kHz mono PCM16; `speech`: the caller's detector heard the user in this chunk
        (a question is then pending, which holds off a goAway switch)."""
        now = time.monotonic()
        if speech:
            if now - self._t_speech >= QUESTION_GAP_S and not self._activity_open:
                self._question_began = True  # hands-free (push-to-talk: at the key)
            self._t_input = self._t_speech = now
            self._activity_spoken = True
        # While an answer plays all of the mic goes, so the server hears a barge-in at once;
        # not on a slow link, whose uplink the next question needs (the local barge-in still
        # stops the answer here; measured at 128 kbit/s, the mic during slow answers made
        # later questions wait 7 s).
        answering = self._answering or now < self._t_answer_ends + ANSWER_TAIL_S
        keep = answering and not self._pace.slow
        self._outbox.put(Audio(pcm, speech, keep=keep))
        self._update_pace()
        self._wake.set()

    def send_frame(self, frame: EncodedFrame) -> None:
        """Latest-only: a frame still waiting is replaced (and counted as skipped)."""
        if self._frame is not None:
            self.frames_skipped += 1
        self._frame = frame
        self._wake.set()

    def send_text(self, text: str) -> None:
        self._t_input = time.monotonic()
        self._put(Text(text))

    def send_tool_response(
        self, call_id: str, name: str, response: dict[str, Any], scheduling: str = "WHEN_IDLE"
    ) -> None:
        """Answer the model's function call `call_id`, in order with everything else."""
        self._put(ToolResponse(call_id, name, response, scheduling))

    def activity_start(self) -> None:
        self._activity_open, self._activity_spoken = True, False
        self._question_began = True
        self._put(ActivityStart())

    def activity_end(self) -> None:
        """A push-to-talk turn ends; an answer is owed if it held speech (a key pressed by
        mistake, with nothing said, may well get none)."""
        self._activity_open = False
        self._t_input = time.monotonic()
        self._put(ActivityEnd(spoken=self._activity_spoken))

    @property
    def audio_backlog_s(self) -> float:
        """Mic audio not yet at the server: the outbox, the websocket's buffers and, when the
        kernel counts it, what it holds unacknowledged (a slow path's queue): what the end
        of a session waits for."""
        conn = self._conn
        dog = conn.watchdog if conn else None
        queued = max(0, dog.kernel_owed_bytes - IN_FLIGHT_SLACK_BYTES) if dog else 0
        return self._unsent_audio_s() + queued / WIRE_BYTES_PER_AUDIO_S

    def _unsent_audio_s(self) -> float:
        """Mic audio not yet handed to the kernel: the outbox, plus the websocket's buffers
        (the slow-link judgement's backlog; the kernel's own share is the path's rate)."""
        conn = self._conn
        buffered = conn.watchdog.buffered_bytes if conn and conn.watchdog else 0
        return self._outbox.backlog_s + buffered / WIRE_BYTES_PER_AUDIO_S

    @property
    def audio_dropped_s(self) -> float:
        """Mic audio lost because an outage outlasted the buffer."""
        return self._outbox.audio_dropped_s

    @property
    def resumption_handle(self) -> str | None:
        return self._handle

    def stats(self) -> LinkStats:
        return LinkStats(
            connections=self.connections,
            audio_chunks_sent=self.audio_chunks_sent,
            audio_replayed_s=round(self.audio_replayed_s, 2),
            audio_dropped_s=round(self.audio_dropped_s, 2),
            frames_sent=self.frames_sent,
            frames_skipped=self.frames_skipped,
            dead_links=self.dead_links,
            slow_link_s=round(self._pace.total_slow_s(time.monotonic()), 1),
            max_upload_backlog_s=round(self._pace.max_backlog_s, 2),
        )

    async def events(self) -> AsyncIterator[ServerEvent]:
        while True:
            yield await self._events.get()

    def drain_events(self) -> list[ServerEvent]:
        """The events not yet taken from `events()`: at the end, so the recording is whole."""
        out = []
        while not self._events.empty():
            out.append(self._events.get_nowait())
        return out

    def _put(self, item: Item) -> None:
        self._outbox.put(item)
        self._wake.set()

    # -- connection lifecycle ------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and stay connected until cancelled; raises UserError when that fails."""
        outage = _Outage(time.monotonic(), first=True)
        ending: _Ending | None = None
        while True:
            conn = await self._connect(outage, ending)
            try:
                ending = await self._serve(conn)
            finally:
                await conn.close()
            self._after_close(ending)
            lived_s = ending.t_monotonic - conn.t_opened
            if ending.planned or conn.proven or lived_s >= self._worked_s:
                # It worked: a new outage, from when nothing more got through. One that dies
                # young keeps the backoff growing (a server that fails every connection).
                young = lived_s < STABLE_S and not ending.planned
                outage = _Outage(ending.t_monotonic, attempts=outage.attempts if young else 0)
            else:  # nothing ever came back on it: the same outage goes on (backoff grows)
                outage.again = True

    async def _connect(self, outage: _Outage, ending: _Ending | None) -> _Connection:
        """Open a connection with the newest handle, retrying with backoff; UserError once the
        outage has lasted longer than allowed."""
        reason = ending.reason if ending else ""
        planned = ending is not None and ending.planned
        limit = self._first_connect_timeout_s if outage.first else self._max_outage_s
        while True:
            outage.attempts += 1
            if ending is not None or outage.attempts > 1:
                waited = time.monotonic() - outage.t_start
                if waited >= limit:
                    gave_up = "gave_up_reach" if outage.first else "gave_up_reconnect"
                    raise UserError(phrase(gave_up, seconds=waited, reason=reason))
                now_ok = planned and outage.attempts == 1
                delay = 0.0 if now_ok else min(backoff_s(outage.attempts), limit - waited)
                gives_up = limit - waited
                again, outage.again = outage.again, False
                self._emit(
                    Reconnecting(reason, outage.attempts, delay, waited, gives_up, planned, again)
                )
                await asyncio.sleep(delay)
            try:
                conn = await self._open()
            except CONNECTION_ERRORS as exc:
                resuming = self._handle is not None
                retry = classify(exc, model=self._model, resuming=resuming)
                if resuming and is_refusal(exc, 1011):
                    retry = self._old_socket_open(outage, retry)
                if retry.stale_handle:
                    self._handle, self._context_lost = None, True  # the next try starts afresh
                reason, planned = retry.reason, False
                continue
            outage_s = 0.0 if outage.first else time.monotonic() - outage.t_start
            lost, self._context_lost = self._context_lost, False
            self._emit(Connected(outage.attempts, conn.resumed, outage_s, planned, lost))
            outage.first = False
            return conn

    @staticmethod
    def _old_socket_open(outage: _Outage, retry: Retry) -> Retry:
        """The service refuses to resume a session while an earlier connection of it is
        open (reported as 1011). Ours is closed before any reconnect, but after a stall the
        server may not have heard that (the close was lost with the link) and holds it open
        until its own timeout. Retried with backoff a few times; then a fresh session, which
        keeps the conversation going (the outbox re-sends what was said since the handle)."""
        outage.resumes_refused += 1
        if outage.resumes_refused < RESUME_REFUSALS:
            return retry
        return Retry(phrase("reason_old_connection", reason=retry.reason), True)

    async def _open(self) -> _Connection:
        handle = self._handle
        stack = contextlib.AsyncExitStack()
        # The SDK waits for setupComplete without a timeout: a link that dies mid-setup would
        # hold the reconnect forever.
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            session = await stack.enter_async_context(
                self._connect_to(model=self._model, config=self._config_for(handle))
            )
        self.connections += 1
        conn = _Connection(session, stack, resumed=handle is not None)
        self._wire.new_connection()
        ws = sdk_socket.websocket_of(session)
        deflated = ws is not None and sdk_socket.deflate_negotiated(ws)
        self._pace.slow_below_bps = SLOW_BELOW_DEFLATED_BPS if deflated else SLOW_BELOW_BPS
        if ws is not None:
            conn.watchdog = Watchdog(
                ws,
                stall_s=self._dead_after_s,
                retiring=lambda: conn.retiring,
                probe=self._ack_probe(),
                sent_before=self._outbox.sent_count,
                sending=lambda: self._sending,
                ping_every_s=self._ping_every_s,
                on_tick=self._update_pace,  # push-to-talk sends no audio while idle
            )
        else:
            log.warning("no websocket under the SDK session: dead links go unnoticed")
        return conn

    async def _watch(self, conn: _Connection, watchdog: Watchdog) -> None:
        try:
            await watchdog.run()
        except BaseExceptionGroup:
            conn.dead = True
            self.dead_links += 1
            raise

    async def _serve(self, conn: _Connection) -> _Ending:
        """Pump both directions until the connection fails or a goAway switch is due."""
        self._conn = conn
        try:
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(self._send_loop(conn))
                tg.create_task(self._receive_loop(conn))
                if conn.watchdog is not None:
                    tg.create_task(self._watch(conn, conn.watchdog))
                time_left_s = await conn.go_away
                deadline = time.monotonic() + max(
                    0.0, (time_left_s or DEFAULT_TIME_LEFT_S) - self._handover_margin_s
                )
                quiet = await self._until_quiet(deadline)
                log.info("goAway: switching connections %s", "now" if quiet else "mid-turn")
                conn.retiring = True
                self._wake.set()
                await sender
                t_stopped = time.monotonic()
                await conn.close()  # the receiver reads what is left, then ends
            self._conn = None
            reason = phrase("reason_go_away")
            return _Ending(reason, planned=True, replay=not quiet, t_monotonic=t_stopped)
        except BaseExceptionGroup as group:
            t_failed = time.monotonic()
            self._conn = None
            cause = most_telling(group)
            if isinstance(cause, DeadLink):
                t_failed = cause.silent_since
            retry = self._low_rate_refused(cause) or classify(
                cause, model=self._model, resuming=False
            )
            return _Ending(retry.reason, planned=False, replay=True, t_monotonic=t_failed)

    def _low_rate_refused(self, cause: BaseException) -> Retry | None:
        """A refusal (1007) after 8 kHz audio went out: the server does not take that rate
        (whether it does is not documented). Not fatal: 16 kHz from now on, and what it
        refused goes again (the outbox keeps the 16 kHz original)."""
        if not (self._wire.low_rate_sent and is_refusal(cause, 1007)):
            return None
        self._wire.low_rate_refused = True
        log.warning("the server refused 8 kHz audio (%s); sending 16 kHz", cause)
        return Retry(phrase("reason_8khz"))

    def _after_close(self, ending: _Ending) -> None:
        if self._answering:
            self._answering = False
            self._emit(AnswerCut(time.monotonic()))
        if ending.replay:
            self.audio_replayed_s += self._outbox.replay()
        else:
            self._outbox.commit()  # a quiet switch: nothing since the handle needs hearing

    async def _until_quiet(self, deadline: float) -> bool:
        """Wait for a moment when switching loses nothing; False if the deadline came first."""
        while not self._is_quiet(time.monotonic()):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def _is_quiet(self, now: float) -> bool:
        if self._answering or self._activity_open:
            return False
        question_pending = (
            self._t_input > self._t_turn_end and now - self._t_input < PENDING_INPUT_S
        )
        handle_due = self._t_turn_end > self._t_handle and now - self._t_turn_end < HANDLE_WAIT_S
        return not (question_pending or handle_due)

    # -- pumps ----------------------------------------------------------------------------------

    async def _send_loop(self, conn: _Connection) -> None:
        send = conn.session.send_realtime_input
        if self._frame is None:
            self._frame = self._last_frame  # the freshest picture goes out on every connection
        self._wake.set()  # whatever piled up while disconnected goes out now
        while True:
            await self._wake.wait()
            self._wake.clear()
            while not conn.retiring and (item := self._outbox.take()) is not None:
                try:
                    async with self._writing(conn):
                        if isinstance(item, Text):
                            await self._send_question(conn.session, item)
                        elif isinstance(item, ToolResponse):
                            await _send_tool_response(conn.session, item)
                        else:
                            await self._send_item(send, item)
                except BaseException:
                    self._outbox.unsent()
                    raise
                self._outbox.sent()
                if conn.watchdog is not None:
                    conn.watchdog.sent(self._outbox.sent_count)
                    if _owes_answer(item):
                        conn.watchdog.reply_owed()
                if isinstance(item, Audio):
                    self.audio_chunks_sent += 1
                    self._report_lost()
            if conn.retiring:
                return
            if self._frame is not None and (not self._pace.slow or self._question_began):
                # Slow: audio first, and one fresh picture as each question begins (live.slow).
                self._question_began = False
                async with self._writing(conn):
                    await self._send_frame(send)

    @contextlib.asynccontextmanager
    async def _writing(self, conn: _Connection) -> AsyncIterator[None]:
        """Around every send: what is written is owed an acknowledgement (the watchdog)."""
        dog = conn.watchdog
        if dog is not None:
            dog.writing()
        self._sending = True
        try:
            yield
        finally:
            self._sending = False
        if dog is not None:
            dog.written()

    async def _send_item(self, send: _Send, item: Item) -> None:
        """A realtime item; a typed question (Text) and a tool response go their own ways."""
        match item:
            case Audio(pcm=pcm, speech=speech):
                data, mime = self._wire.encode(pcm, speech=speech, slow=self._pace.slow)
                if data:
                    await send(audio=types.Blob(data=data, mime_type=mime or MIC_MIME))
            case ActivityStart():
                await send(activity_start=types.ActivityStart())
            case ActivityEnd():
                await send(activity_end=types.ActivityEnd())
            case AudioStreamEnd():
                await send(audio_stream_end=True)
                self._wire.stream_ended()

    def _update_pace(self) -> None:
        """Every mic chunk and watchdog tick (the sends come in bursts on a slow link: too
        sparse to judge)."""
        now = time.monotonic()
        conn = self._conn
        dog = conn.watchdog if conn is not None else None
        flowing = conn is not None and (dog is None or now - dog.t_proof < FLOWING_S)
        uplink = dog.uplink_bps if dog is not None else None
        if event := self._pace.update(
            self._unsent_audio_s(), now, flowing=flowing, uplink_bps=uplink
        ):
            log.info("upload %s (%.1f s waiting)", "slow" if event.slow else "ok", event.backlog_s)
            self._emit(event)
        # Slow: only speech goes up (pauses are not sent), so a link that cannot carry even
        # 8 kHz all along still carries each question, late but whole; speech only (the
        # default): the same, to pay for no pause.
        self._outbox.speech_only = self._pace.slow or self.speech_only
        light = self._pace.light_pictures(now)
        if light != self._light_pictures:
            self._light_pictures = light
            self._emit(PictureSize(light))

    def _report_lost(self) -> None:
        """Say how much mic audio the outbox had to drop, and which utterances, at most every
        few seconds (each utterance once)."""
        total = self._outbox.audio_dropped_s
        now = time.monotonic()
        if (
            total - self._lost_reported_s >= 0.02
            and now - self._t_lost_reported >= LOST_REPORT_EVERY_S
        ):
            missed = self._outbox.missed
            new = sorted(uid for uid in missed if uid not in self._missed_told)
            self._missed_told.update(new)
            starts = tuple(missed[uid].t_wall for uid in new)
            self._emit(AudioLost(round(total - self._lost_reported_s, 2), round(total, 2), starts))
            self._lost_reported_s, self._t_lost_reported = total, now

    async def _send_frame(self, send: _Send) -> None:
        """Send the latest-only frame slot, if a frame is waiting in it."""
        if self._frame is None:
            return
        frame, self._frame = self._frame, None
        self._last_frame = frame
        await send(video=types.Blob(data=frame.jpeg, mime_type="image/jpeg"))
        self.frames_sent += 1
        self._emit(FrameSent(frame, time.monotonic()))

    async def _send_question(self, session: AsyncSession, item: Text) -> None:
        """A typed question and the picture it is about, as ONE client-content turn.

        Realtime video and text are separate streams the API does not order (SDK docstring
        of `send_realtime_input`; 3.8 migration notes), so sent apart the model may answer
        from an older frame. A client-content turn is added to the context in order: the
        newest frame (the pending one, else the last one sent) as an inline JPEG part, then
        the text; `turn_complete=True` asks for the answer now and, on 3.8, ends any answer
        still being generated.
        """
        frame = self._frame or self._last_frame
        self._frame = None
        parts = [types.Part(text=item.text)]
        if frame is not None:
            image = types.Blob(data=frame.jpeg, mime_type="image/jpeg")
            parts.insert(0, types.Part(inline_data=image))
        turn = types.Content(role="user", parts=parts)
        await session.send_client_content(turns=turn, turn_complete=True)
        if frame is not None:
            self._last_frame = frame
            self.frames_sent += 1
            self._emit(FrameSent(frame, time.monotonic(), with_turn=True))

    async def _receive_loop(self, conn: _Connection) -> None:
        try:
            while True:
                async for msg in conn.session.receive():
                    self._on_message(msg, conn)
        except CONNECTION_ERRORS:
            if not conn.retiring:
                raise

    def _on_message(self, msg: types.LiveServerMessage, conn: _Connection) -> None:
        now = time.monotonic()
        if conn.watchdog is not None:
            conn.watchdog.heard()
        events = translate(msg, now)
        for event in events:
            if isinstance(event, AnswerAudio | AnswerTranscript):
                self._answering = True
                if isinstance(event, AnswerAudio):  # 24 kHz PCM16: it plays this long
                    start = max(now, self._t_answer_ends)
                    self._t_answer_ends = start + len(event.pcm) / (2 * SPEAKER_RATE_HZ)
            elif isinstance(event, Interrupted | TurnComplete):
                self._answering, self._t_turn_end = False, now
            elif isinstance(event, GoAway) and not conn.go_away.done():
                conn.go_away.set_result(event.time_left_s)
            self._emit(event)
        update = msg.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self._handle, self._t_handle = update.new_handle, now
            # Only what surely reached the server is in its state (live.delivery).
            dog = conn.watchdog
            self._outbox.commit(dog.delivered() if dog is not None else None)

    def _emit(self, event: ServerEvent) -> None:
        self._events.put_nowait(event)


_Send = Callable[..., Awaitable[None]]  # AsyncSession.send_realtime_input


def _owes_answer(item: Item) -> bool:
    """A typed question, or a spoken push-to-talk turn, is owed an answer. A function
    response is not: one scheduled SILENT gets none, and the stand-in answers none."""
    return isinstance(item, Text) or (isinstance(item, ActivityEnd) and item.spoken)


async def _send_tool_response(session: AsyncSession, item: ToolResponse) -> None:
    response = types.FunctionResponse(
        id=item.call_id,
        name=item.name,
        response=item.response,
        scheduling=types.FunctionResponseScheduling(item.scheduling),
    )
    await session.send_tool_response(function_responses=[response])
