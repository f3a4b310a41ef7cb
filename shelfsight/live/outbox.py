"""What the Live link sends, in order, and what it may have to send again.

Mic audio and control items (typed text, activity start and end, function responses) leave in
the order they were put in. An item leaves the queue only once its send has returned; it is
then kept in a replay list until the server's next resumption handle. A resumed session holds
what the server had consumed when it issued its newest handle and nothing sent after it (the
Gemini API does not say how much of that it consumed: `last_consumed_client_message_index` is
Vertex-only), and a send that returned was only written to the socket, not necessarily read.
So after a connection is lost, the replay list goes back to the front of the queue and the next
connection hears it once.

Bounds and overflow policy: at most `max_audio_s` of audio waits to be sent (past that the
oldest waiting audio is dropped and counted in `audio_dropped_s`: a long outage loses it), and
at most `replay_s` is kept for replay (past that the oldest is forgotten: the server has most
likely heard it). Control items are never dropped while waiting. Loop thread only.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

BYTES_PER_S = 16_000 * 2  # 16 kHz mono PCM16


@dataclass(frozen=True)
class Audio:
    pcm: bytes  # 16 kHz mono PCM16
    speech: bool = False  # the caller's detector heard the user in it


@dataclass(frozen=True)
class Text:
    """A typed question; the link sends it with the newest frame as one client-content turn
    (`LiveLink._send_question`), never as realtime text."""

    text: str


@dataclass(frozen=True)
class ActivityStart:
    """Push-to-talk: the user started talking (automatic activity detection is off)."""


@dataclass(frozen=True)
class ActivityEnd:
    """Push-to-talk: the user stopped talking; `spoken`: the turn held speech."""

    spoken: bool = True


@dataclass(frozen=True)
class ToolResponse:
    """The answer to the model's function call `call_id` (sent with send_tool_response).
    scheduling: WHEN_IDLE, SILENT or INTERRUPT (see shelfsight.tools.calls)."""

    call_id: str
    name: str
    response: dict[str, Any]
    scheduling: str = "WHEN_IDLE"


Control = Text | ActivityStart | ActivityEnd | ToolResponse
Item = Audio | Control


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

    @property
    def backlog_s(self) -> float:
        """Audio waiting to be sent (replayed audio included), in seconds."""
        return (self._bytes["resend"] + self._bytes["waiting"]) / BYTES_PER_S

    @property
    def replayable_s(self) -> float:
        """Audio sent since the newest handle, in seconds."""
        return self._bytes["replay"] / BYTES_PER_S

    def put(self, item: Item) -> None:
        self._push(self._waiting, "waiting", item)
        while self._bytes["waiting"] > self._max_waiting_bytes and self._drop_oldest_waiting():
            pass

    def take(self) -> Item | None:
        """The next item to send, now in flight (no longer droppable); None when empty."""
        assert self._in_flight is None, "one item in flight at a time"
        self._in_flight_was_resend = bool(self._resend)
        if self._resend:
            self._in_flight = self._pop(self._resend, "resend")
        elif self._waiting:
            self._in_flight = self._pop(self._waiting, "waiting")
        return self._in_flight

    def sent(self) -> None:
        """The in-flight item's send returned: keep it for replay."""
        item, self._in_flight = self._in_flight, None
        if item is None:
            return
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

    def commit(self) -> None:
        """The server's state now includes everything sent so far: forget the replay list."""
        self._replay.clear()
        self._bytes["replay"] = 0

    def replay(self) -> float:
        """Queue everything sent since the newest handle to go first; returns its seconds."""
        replayed_s = self.replayable_s
        self._resend.extendleft(reversed(self._replay))
        self._bytes["resend"] += self._bytes["replay"]
        self.commit()
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

    def _drop_oldest_waiting(self) -> bool:
        for i, item in enumerate(self._waiting):
            if isinstance(item, Audio):
                del self._waiting[i]
                self._bytes["waiting"] -= len(item.pcm)
                self.audio_dropped_s += len(item.pcm) / BYTES_PER_S
                return True
        return False
