"""What the Live link sends, in order, and what it may have to send again.

Mic audio and control items (typed text, activity start and end, function responses) leave in
the order they were put in. An item leaves the queue only once its send has returned; it is
then kept in a replay list until a resumption handle comes after it surely reached the server. A
resumed session holds what the server had consumed when it issued its newest handle and nothing
sent after it, and a send that returned was only written to the socket, not necessarily read
(`shelfsight.live.delivery` says which items arrived). So after a connection is lost, the
replay list goes back to the front of the queue and the next connection hears it once.

Bounds and overflow policy: at most `max_audio_s` of audio waits to be sent. Past that, what
waits longest goes, a whole utterance at a time: the pause before the oldest utterance first,
then the utterance itself, never a part of one glued to a later one (the model would answer a
splice of two questions). An utterance is a push-to-talk turn (its markers go with it, unless
its start was already sent: then its end marker stays, so the server closes the turn), or, in
hands-free, speech with the 0.6 s before it and until 0.7 s of quiet after it; one still being
spoken that alone outgrows the buffer loses its start instead, its newest part kept in order
(a monologue, or speech in babble whose end the detector never hears). What was dropped
is counted in `audio_dropped_s`, and each utterance lost is kept in `missed` with the wall-clock
time it began (to tell the user which one to ask again). At most `replay_s` is kept for replay
(past that the oldest is forgotten: the server has most likely heard it). Other control items
are never dropped. Loop thread only.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from shelfsight.core.pcm import MIC_BYTES_PER_S

BYTES_PER_S = MIC_BYTES_PER_S  # 16 kHz mono PCM16
# Hands-free: 0.6 s before the first speech belongs to the utterance. The detector's level
# rule decides late in loud noise: up to 0.36 s into a question at 5 dB SNR in store noise
# (bench.tokens --store-trip), and speech only must still send the first syllable.
PREROLL_CHUNKS = 30
HANG_CHUNKS = 35  # ... and it ends after 0.7 s without speech (the server's silence to end)


@dataclass(frozen=True)
class Audio:
    pcm: bytes  # 16 kHz mono PCM16
    speech: bool = False  # the caller's detector heard the user in it
    utterance: int | None = None  # set by the outbox; None: a pause between utterances
    # Sent even in a pause when only speech goes up: an answer plays, and the server must hear
    # the user talk over it at once, whatever the local detector makes of it.
    keep: bool = False


@dataclass(frozen=True)
class Text:
    """A typed question; the link sends it with the newest frame as one client-content turn
    (`LiveLink._send_question`), never as realtime text."""

    text: str


@dataclass(frozen=True)
class ActivityStart:
    """Push-to-talk: the user started talking (automatic activity detection is off)."""

    utterance: int | None = None  # set by the outbox


@dataclass(frozen=True)
class ActivityEnd:
    """Push-to-talk: the user stopped talking; `spoken`: the turn held speech."""

    spoken: bool = True
    utterance: int | None = None  # set by the outbox


@dataclass(frozen=True)
class ToolResponse:
    """The answer to the model's function call `call_id` (sent with send_tool_response).
    scheduling: WHEN_IDLE, SILENT or INTERRUPT (see shelfsight.tools.calls)."""

    call_id: str
    name: str
    response: dict[str, Any]
    scheduling: str = "WHEN_IDLE"


@dataclass(frozen=True)
class AudioStreamEnd:
    """The mic stream pauses (speech only: nothing is sent between utterances); the Live API
    asks for this when audio stops for more than a second, to flush what it holds."""


Control = Text | ActivityStart | ActivityEnd | ToolResponse | AudioStreamEnd
Item = Audio | Control


@dataclass(frozen=True)
class Missed:
    """An utterance dropped before it reached the server: when it began (wall clock, s)."""

    t_wall: float
    dropped_s: float


class Outbox:
    """The ordered queue: `put` from producers, `take` / `sent` / `unsent` from one sender.

    Three segments, sent in this order: `_resend` (replayed after a lost connection, already
    bounded by `replay_s`), `_waiting` (never sent), then new items. `_replay` holds what was
    sent since the newest handle.
    """

    def __init__(self, max_audio_s: float, replay_s: float) -> None:
        self._max_waiting_bytes = int(max_audio_s * BYTES_PER_S)
        self._max_replay_bytes = int(replay_s * BYTES_PER_S)
        self._resend: collections.deque[Item] = collections.deque()
        self._waiting: collections.deque[Item] = collections.deque()
        self._replay: collections.deque[Item] = collections.deque()
        self._in_flight: Item | None = None
        self._in_flight_was_resend = False
        self._bytes = {"resend": 0, "waiting": 0, "replay": 0}
        self.audio_dropped_s = 0.0
        self.missed: dict[int, Missed] = {}  # utterance -> what of it was lost (the link reads)
        self._utterances = _Utterances()
        self._begun: set[int] = set()  # utterances whose first item has been taken
        # Speech only (a slow link): pauses between utterances are not sent (`take`).
        self.speech_only = False
        self.skipped_s = 0.0  # pause audio not sent, by choice (not lost)
        self._stream_open = False  # utterance audio went out since the last AudioStreamEnd
        self.sent_count = 0  # items whose send returned, ever (an index for `commit`)

    @property
    def backlog_s(self) -> float:
        """Audio waiting to be sent (replayed audio included), in seconds; speech only, not
        the pause held back as a possible pre-roll (it goes only if speech claims it)."""
        return (self._bytes["resend"] + self._bytes["waiting"]) / BYTES_PER_S - self._held_s()

    def _held_s(self) -> float:
        """Speech only: pause audio that is not owed: skipped, or held as a possible pre-roll
        (`_next_waiting`), while nothing else waits."""
        if not self.speech_only or self._resend:
            return 0.0
        if not all(_is_pause(item) for item in self._waiting):
            return 0.0
        return self._bytes["waiting"] / BYTES_PER_S

    @property
    def replayable_s(self) -> float:
        """Audio sent since the newest handle, in seconds."""
        return self._bytes["replay"] / BYTES_PER_S

    def put(self, item: Item) -> None:
        item = self._utterances.tag(item, self._waiting)
        self._push(self._waiting, "waiting", item)
        self._bound()

    def _bound(self) -> None:
        """Past `max_audio_s` waiting (replayed audio included), drop the oldest."""
        while self._bytes["resend"] + self._bytes["waiting"] > self._max_waiting_bytes:
            if not self._drop_oldest():
                return

    def take(self) -> Item | None:
        """The next item to send, now in flight (no longer droppable); None when empty, or
        when only pause audio that may yet begin an utterance waits (speech only)."""
        assert self._in_flight is None, "one item in flight at a time"
        self._in_flight_was_resend = bool(self._resend)
        if self._resend:
            self._in_flight = self._pop(self._resend, "resend")
        elif self._waiting:
            self._in_flight = self._next_waiting()
        if (uid := _utterance_of(self._in_flight)) is not None:
            self._begun.add(uid)
        if isinstance(self._in_flight, Audio):
            self._stream_open = True
        return self._in_flight

    def _next_waiting(self) -> Item | None:
        """The head of the waiting queue; speech only, pause audio is skipped (the newest
        PREROLL_CHUNKS of it wait: they may be claimed by speech that is just beginning),
        and the first skip after an utterance sends an AudioStreamEnd instead."""
        while self.speech_only and _is_pause(self._waiting[0]):
            waiting = self._waiting
            if len(waiting) <= PREROLL_CHUNKS and all(_is_pause(item) for item in waiting):
                return None  # it may yet be an utterance's pre-roll: wait
            if self._stream_open:
                self._stream_open = False
                return AudioStreamEnd()
            chunk = self._pop(self._waiting, "waiting")
            assert isinstance(chunk, Audio)
            self.skipped_s += len(chunk.pcm) / BYTES_PER_S
            if not self._waiting:
                return None
        return self._pop(self._waiting, "waiting")


    def sent(self) -> None:
        """The in-flight item's send returned: keep it for replay. It is item `sent_count`."""
        item, self._in_flight = self._in_flight, None
        if item is None:
            return
        self.sent_count += 1
        self._push(self._replay, "replay", item)
        while self._bytes["replay"] > self._max_replay_bytes:
            self._pop(self._replay, "replay")

    def unsent(self) -> None:
        """The in-flight item's send failed or was cancelled: it goes first next time."""
        item, self._in_flight = self._in_flight, None
        if item is not None:
            segment = "resend" if self._in_flight_was_resend else "waiting"
            queue = self._resend if self._in_flight_was_resend else self._waiting
            self._push(queue, segment, item, left=True)

    def commit(self, upto: int | None = None) -> None:
        """The server's state now includes what was sent up to item `upto` (everything if
        None): forget that part of the replay list (it holds the latest items sent)."""
        keep = 0 if upto is None else max(0, self.sent_count - upto)
        while len(self._replay) > keep:
            self._pop(self._replay, "replay")

    def replay(self) -> float:
        """Queue everything sent since the newest handle to go first; returns its seconds.
        The server holds none of it now: its utterances count as not begun."""
        replayed_s = self.replayable_s
        self._begun -= {uid for item in self._replay if (uid := _utterance_of(item)) is not None}
        self._resend.extendleft(reversed(self._replay))
        self._bytes["resend"] += self._bytes["replay"]
        self.commit()
        self._bound()
        return replayed_s

    def _push(
        self, queue: collections.deque[Item], segment: str, item: Item, left: bool = False
    ) -> None:
        if left:
            queue.appendleft(item)
        else:
            queue.append(item)
        if isinstance(item, Audio):
            self._bytes[segment] += len(item.pcm)

    def _pop(self, queue: collections.deque[Item], segment: str) -> Item:
        item = queue.popleft()
        if isinstance(item, Audio):
            self._bytes[segment] -= len(item.pcm)
        return item

    def _drop_oldest(self) -> bool:
        """Drop the oldest audio waiting (replayed first): a chunk of pause, or a whole
        utterance, wherever its parts wait."""
        queued = [*self._resend, *self._waiting]
        oldest = next((item for item in queued if isinstance(item, Audio)), None)
        if oldest is None:
            return False
        uid = oldest.utterance
        if uid is None:
            self._drop([oldest])
            return True
        if uid == self._utterances.open:
            # Still being spoken, and alone longer than the buffer (nothing older waits): its
            # start goes, a chunk at a time, so its newest part stays whole and in order (a
            # long monologue, or speech in babble the detector never heard end).
            doomed: list[Item] = [oldest]
        else:
            # A finished one goes whole. The markers of a turn already begun stay: the server
            # must see the turn closed.
            keep_markers = uid in self._begun
            doomed = [
                item
                for item in queued
                if _utterance_of(item) == uid and (isinstance(item, Audio) or not keep_markers)
            ]
        dropped_s = self._drop(doomed)
        before = self.missed.get(uid)
        total_s = dropped_s + (before.dropped_s if before else 0.0)
        self.missed[uid] = Missed(self._utterances.began_at(uid), round(total_s, 2))
        return True

    def _drop(self, items: list[Item]) -> float:
        """Remove `items` from the queues; returns the seconds of audio among them."""
        doomed = {id(item) for item in items}
        dropped = 0
        for segment in ("resend", "waiting"):
            queue = self._resend if segment == "resend" else self._waiting
            kept = collections.deque(i for i in queue if id(i) not in doomed)
            gone = sum(len(i.pcm) for i in queue if id(i) in doomed and isinstance(i, Audio))
            self._bytes[segment] -= gone
            dropped += gone
            if segment == "resend":
                self._resend = kept
            else:
                self._waiting = kept
        self.audio_dropped_s += dropped / BYTES_PER_S
        return dropped / BYTES_PER_S


def _utterance_of(item: Item | None) -> int | None:
    return getattr(item, "utterance", None)


def _is_pause(item: Item) -> bool:
    """Mic audio between utterances that speech only may skip (not kept for an answer)."""
    return isinstance(item, Audio) and item.utterance is None and not item.keep


class _Utterances:
    """Tags what is put in the outbox with the utterance it belongs to (see the module doc)."""

    def __init__(self) -> None:
        self._next = 0
        self._open: int | None = None
        self._turn = False  # the open utterance is a push-to-talk turn
        self._quiet = 0  # chunks without speech in the open hands-free utterance
        self._began: dict[int, float] = {}  # utterance -> wall-clock start, while it may drop

    def tag(self, item: Item, waiting: collections.deque[Item]) -> Item:
        if isinstance(item, ActivityStart):
            self._open, self._turn = self._new(), True
            return dataclasses.replace(item, utterance=self._open)
        if isinstance(item, ActivityEnd):
            uid, self._open, self._turn = self._open, None, False
            return dataclasses.replace(item, utterance=uid)
        if not isinstance(item, Audio):
            return item
        if not self._turn:
            self._hands_free(item, waiting)
        return item if self._open is None else dataclasses.replace(item, utterance=self._open)

    def _hands_free(self, chunk: Audio, waiting: collections.deque[Item]) -> None:
        if chunk.speech:
            self._quiet = 0
            if self._open is None:
                self._open = self._new()
                self._claim_preroll(waiting)
        elif self._open is not None:
            self._quiet += 1
            if self._quiet > HANG_CHUNKS:
                self._open = None

    def _claim_preroll(self, waiting: collections.deque[Item]) -> None:
        """The pause chunks just before the first speech (still waiting) join the utterance."""
        claimed = 0
        for i in range(len(waiting) - 1, -1, -1):
            item = waiting[i]
            if not isinstance(item, Audio) or item.utterance is not None:
                break
            waiting[i] = dataclasses.replace(item, utterance=self._open)
            claimed += 1
            if claimed == PREROLL_CHUNKS:
                break

    def _new(self) -> int:
        self._next += 1
        self._began[self._next] = time.time()
        while len(self._began) > 1000:  # bounded: the oldest have long been sent
            del self._began[next(iter(self._began))]
        return self._next

    @property
    def open(self) -> int | None:
        """The utterance being spoken now, if any."""
        return self._open

    def began_at(self, uid: int) -> float:
        return self._began.get(uid, time.time())
