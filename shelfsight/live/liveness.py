"""Is this connection dead? Judged only when something is owed, never on silence alone.

A quiet connection is not a dead one: push-to-talk sends nothing between questions, a
hands-free mic streams without an answer for minutes, and no Google document promises when
(or whether) a websocket pong comes (they have been reported 8-30 s late). So each rule waits
for something the other side owes, with a bound that fits what is owed:

- **Data we sent** (audio, pictures, questions): once written, the kernel owes us an
  acknowledgement (`shelfsight.live.ack_probe`), or, without a probe, the unsent backlog above
  the kernel must drain. No progress for `stall_s` (at least `RTO_FACTOR` retransmission
  timeouts, so a slow link still retransmitting is not called dead) cuts the connection.
- **An answer**: a spoken question ended or a typed one sent, the server owes a reply.
  Nothing at all from it (no message, no pong) for `reply_s`, which covers real thinking
  time, cuts it.
- **Pings** (idle): our own pings' bytes owe an acknowledgement, and a server that has
  answered pings before owes a pong; neither ends a connection sooner than `idle_s`, well
  past the lateness reported for the service's pongs.

Everything takes the time as an argument (monotonic seconds), so the rules are tested on a
clock of the test's own. Loop thread only.
"""

from __future__ import annotations

from dataclasses import dataclass

from shelfsight.core.phrases import phrase
from shelfsight.live.ack_probe import SendState

RTO_FACTOR = 2.0  # a timeout and then some: a slow link retransmitting is not dead
REPLY_S = 10.0  # a question with no word back: generous for a model that answers in ~1 s
IDLE_S = 45.0  # reported pong lateness is 8-30 s: half as much again on top


@dataclass(frozen=True)
class Dead:
    """Why the connection is judged dead, and since when nothing got through (monotonic s)."""

    reason: str
    silent_since: float


class Liveness:
    """The rules above for one connection; the watchdog feeds it and asks `verdict`."""

    def __init__(
        self, now: float, *, stall_s: float, reply_s: float = REPLY_S, idle_s: float = IDLE_S
    ) -> None:
        self._stall_s, self._reply_s, self._idle_s = stall_s, reply_s, idle_s
        self._rto_s: float | None = None
        self._progress: int | None = None
        self._data_since: float | None = None  # data owed an acknowledgement since
        self._ping_since: float | None = None  # only pings owed one since
        self._pong_since: float | None = None  # oldest ping without a pong
        self._reply_since: float | None = None  # a question owed an answer since
        self._ponged = False  # this server answers pings
        self._t_opened = now
        self.t_proof = now  # the last sign the other side is there (progress, message, pong)
        self.proven = False  # a sign came after the connection opened

    # -- what happened ------------------------------------------------------------------------

    def writing(self, now: float) -> None:
        """Data is being handed to the socket (before the write: it may block)."""
        if self._data_since is None:
            self._data_since = now

    def ping_sent(self, now: float) -> None:
        if self._ping_since is None:
            self._ping_since = now
        if self._pong_since is None:
            self._pong_since = now

    def pong(self, now: float) -> None:
        self._ponged = True
        self._pong_since = None
        self._answered(now)

    def heard(self, now: float) -> None:
        """Any server message."""
        self._answered(now)

    def reply_owed(self, now: float) -> None:
        if self._reply_since is None:
            self._reply_since = now

    def observe(self, now: float, state: SendState) -> None:
        """A reading of the send path (kernel probe or unsent backlog), every tick."""
        if state.rto_s is not None:
            self._rto_s = state.rto_s
        moved = self._progress is not None and state.progress != self._progress
        self._progress = state.progress
        if state.owed_bytes == 0:
            if self._data_since is not None:  # all that was written went out
                self._proof(now, trusted=state.trusted)
            self._data_since = self._ping_since = None
        elif moved:
            self._data_since = now if self._data_since is not None else None
            self._ping_since = now if self._ping_since is not None else None
            self._proof(now, trusted=state.trusted)

    # -- the judgement ------------------------------------------------------------------------

    @property
    def stall_s(self) -> float:
        rto_s = self._rto_s or 0.0
        return max(self._stall_s, RTO_FACTOR * rto_s)

    def verdict(self, now: float) -> Dead | None:
        if self._data_since is not None and now - self._data_since >= self.stall_s:
            waited = now - self._data_since
            return Dead(phrase("reason_silent", seconds=waited), self._data_since)
        if self._reply_since is not None and now - self._reply_since >= self._reply_s:
            waited = now - self._reply_since
            return Dead(phrase("reason_no_answer", seconds=waited), self._reply_since)
        if self._ping_since is not None and now - self._ping_since >= self._idle_s:
            waited = now - self._ping_since
            return Dead(phrase("reason_silent_idle", seconds=waited), self._ping_since)
        if self._ponged and self._pong_since is not None and now - self._pong_since >= self._idle_s:
            waited = now - self._pong_since
            return Dead(phrase("reason_no_pongs", seconds=waited), self._pong_since)
        return None

    def _answered(self, now: float) -> None:
        self._reply_since = None
        self._proof(now, trusted=True)

    def _proof(self, now: float, *, trusted: bool) -> None:
        self.t_proof = now
        if trusted or now - self._t_opened > self._stall_s:
            self.proven = True
