"""The speaker's jitter buffer: when an answer starts playing, and when it waits.

Threads: `push` runs on the loop thread (answer chunks as they arrive), `pop` on the audio
thread (the PortAudio callback or the WAV clock, 20 ms at a time), the properties are read on
the loop thread. One lock guards the state; it is held for a copy and a few float operations,
so the audio thread never waits long. Times are `clock()` seconds (time.monotonic unless a
test or a benchmark injects a simulated clock); amounts of audio are seconds of `rate_hz` mono
PCM16.

An *answer* is the audio pushed from a moment the buffer was idle (empty and not in a hole of
less than LATE_GAP_S) or cleared on. Playback of an answer starts, and restarts after a hole,
once enough of it is queued:

* **Jitter**: `margin_s` (60 ms, adaptive 20-120 ms, grown by each hole heard, shrunk by calm
  playback), or sooner if nothing has come for `margin_s` (an answer's short tail).
* **A slow link** (a phone downlink slower than the answer's 512 kbit/s of base64): the answer
  arrives at a ratio r < 1 of real time (audio seconds received per wall second, from its first
  chunk on). Played as soon as the margin is there, it runs dry again and again. To play
  through, the rest of the answer (R seconds, what is queued included) needs (1 - r) x R queued
  before starting: then the queue, drained at 1 and filled at r, lasts until the last chunk.
  So the wait is `margin_s + hold_s`, hold_s = min(max_hold_s, (1 - r) x R). R is a guess
  (the answer's length is not known in advance): the rest of a typical answer, L - played,
  L = the median length of the last LENGTHS_KEPT answers (TYPICAL_ANSWER_S, 6 s, before any),
  and never less than what is queued. After a hole in the answer the guess was short (or the
  link was not yet known slow), so the next one is long: R = max(L, 2 x played) - at least a
  typical answer more, or twice what has played. A guess too long costs at most waiting for
  the answer's last chunk (the queue then plays out whole); one too short costs another hole.
  While holding, "nothing has come" means nothing for margin + 2 chunk intervals (the slow
  link's chunks are further apart than the margin).

When r counts (see `_slow_ratio`): r >= FAST_RATIO (0.9) is a fast link and only the margin
applies, exactly as before this policy existed (playback starts once 60 ms is queued). r is
trusted from MEASURE_S (0.3 s) after the answer's first chunk, or at once after a hole in it,
unless CREDIT_S (30 ms) of lateness on its last chunk would make it fast (jitter: measured on
400 fast answers with 0-60 ms of jitter, none then waits longer than with the margin alone,
and 0.7x and 0.36x answers are caught as early as with no credit). It is re-read at every
audio block while waiting, so a late chunk misread as slowness is undone by the next ones on
time. Before MEASURE_S the previous answer's r stands in if it was slow, so on a link that
stays slow the next answer waits from its first chunk instead of starting and running dry
within 300 ms (a fast answer after a slow one waits about MEASURE_S more, once: it is
measured afresh, a clear() included). A burst already AHEAD_S (150 ms) ahead of real time
plays at once: a fast link's first chunks (a slow link's are not, even bunched), as does a
sound pushed whole of WHOLE_SOUND_S or more (a spoken status, every earcon but the 30 ms
thinking tick). A slow upload (`expect_slow`) stands in for a downlink not yet measured.

A lossy link stalls for seconds while TCP retransmits. Told where answers end
(`answer_ended`: the session says so at each turn's end, and after each sound of its own),
a stall is a hole in the answer, not the start of a new one; the longest stall of recent
answers (over STALL_S) is held for as well, and a stall that long is not taken for the
answer's end.

Bounds: the audio held back is at most `max_hold_s` (3 s), so the hold makes an answer end
at most 3 s (plus the margin and the quiet time) after its last chunk arrived; without it the
answer ends about when its last chunk arrives, in pieces. 3 s plays a 10 s answer through at
0.7x and a 4.7 s one at 0.36x (a 5 s answer there needs 3.2 s); more would keep a listener
waiting for long answers that may be cut anyway. The wait itself never lasts more than
MAX_WAIT_S (10 s) of wall time: at 0.36x, 3 s of audio takes 8.3 s to come; a slower link
plays what it has after 10 s (silence much longer reads as a hang).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

LATE_GAP_S = 0.5  # audio arriving this soon after the buffer ran dry counts as an underrun
FAST_RATIO = 0.9  # arrival ratio from which the jitter margin alone plays an answer through
CREDIT_S = 0.03  # lateness of an early hole's last chunk still taken for jitter
MEASURE_S = 0.3  # wall time after an answer's first chunk before its own ratio is trusted
# An answer this far ahead of real time is fast, whatever came before it (50 ms was too
# little: a slow tether delivered an answer's first two chunks, 80 ms, within 11 ms).
AHEAD_S = 0.15
WHOLE_SOUND_S = 0.06  # one push this long is a whole sound of ours (earcons: 70-280 ms)
EXPECTED_SLOW_RATIO = 0.7  # assumed for a downlink not yet measured, when the uplink is slow
TYPICAL_ANSWER_S = 6.0  # the length guessed for an answer before any has been heard
LENGTHS_KEPT = 9  # answers whose lengths make the median
STALL_S = 0.25  # a wait between an answer's chunks this long is a stall (loss), not jitter
MAX_HOLD_S = 3.0  # the most audio held back for a slow link (seconds of audio)
MAX_WAIT_S = 10.0  # the longest wall time a slow-link wait lasts
SLOW_NOTICE_S = 1.0  # a slow-link wait at least this long is worth telling the user


@dataclass
class _Answer:
    """One answer's arrival and playout (clock seconds and audio seconds)."""

    t0: float  # its first chunk's arrival
    first_s: float = 0.0  # audio in that chunk
    recv_s: float = 0.0  # audio received so far
    t_last: float = 0.0  # the last chunk's arrival
    pushes: int = 0
    played_s: float = 0.0  # audio played so far
    holes: int = 0  # times it ran dry and went on
    longest_gap_s: float = 0.0  # the longest wait between two of its chunks

    def add(self, now: float, seconds: float) -> None:
        if not self.pushes:
            self.first_s = seconds
        else:
            self.longest_gap_s = max(self.longest_gap_s, now - self.t_last)
        self.recv_s += seconds
        self.t_last = now
        self.pushes += 1

    def interval_s(self) -> float | None:
        """Mean time between its chunks."""
        return (self.t_last - self.t0) / (self.pushes - 1) if self.pushes >= 2 else None

    def inner_ratio(self) -> float | None:
        """Audio per wall second between the first chunk and the last: exact for steady
        arrivals (the first chunk came for free at t0)."""
        if self.pushes < 2 or self.t_last <= self.t0:
            return None
        return (self.recv_s - self.first_s) / (self.t_last - self.t0)

    def ratio(self, now: float) -> float:
        """Audio per wall second since the first chunk, lowered while nothing comes (a stall)."""
        plain = self.recv_s / (now - self.t0) if now > self.t0 else float("inf")
        inner = self.inner_ratio()
        return plain if inner is None else min(plain, inner)


class JitterBuffer:
    """Thread-safe FIFO of mono PCM16 between the loop thread (push) and an audio thread (pop),
    with an adaptive playout margin and a slow-link hold (see the module docstring).

    An underrun (audio arriving within LATE_GAP_S after the buffer ran dry mid-answer) grows
    the margin by the gap (at least GROW_S) up to `max_s`; every CALM_S of audio played
    without one shrinks it by SHRINK_S down to `min_s`. Bounded to `max_buffer_s`; overflow
    drops the oldest audio and counts it in `dropped_s`. `max_hold_s=0` turns the slow-link
    hold off (the margin alone, as before it existed).

    Read on the loop thread: `hold_s` (audio seconds held back now for a slow link, beyond
    the margin; written by the audio thread), `slow_wait_s` (how long that wait has lasted)
    and `max_slow_wait_s` (the longest slow-link wait so far, measured when playback began).
    """

    GROW_S = 0.02
    SHRINK_S = 0.005
    CALM_S = 10.0

    def __init__(
        self,
        rate_hz: int,
        max_buffer_s: float = 60.0,
        *,
        margin_s: float = 0.06,
        min_s: float = 0.02,
        max_s: float = 0.12,
        max_hold_s: float = MAX_HOLD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_hz = rate_hz
        self.dropped_s = 0.0
        self.underruns = 0
        self.margin_s = margin_s
        self.max_margin_seen_s = margin_s
        self.hold_s = 0.0
        self.max_slow_wait_s = 0.0
        self._min_s, self._max_s = min_s, max_s
        self._max_hold_s = max_hold_s
        self._clock = clock
        self._max_bytes = int(rate_hz * max_buffer_s) * 2
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._playing = False  # playout started and the queued audio has not yet run out
        self._dry_at: float | None = None  # clock time the audio last ran out mid-play
        self._t_push = 0.0  # clock time of the last push
        self._calm_s = 0.0  # audio played since the last underrun (seconds)
        self._answer: _Answer | None = None
        self._wait_t0 = 0.0  # clock time the current wait began (first chunk, or the hole)
        self._held = False  # the current wait held back audio for a slow link
        self._lengths: deque[float] = deque(maxlen=LENGTHS_KEPT)  # finished answers (s)
        self._stalls: deque[float] = deque(maxlen=LENGTHS_KEPT)  # their longest stalls (s)
        self._typical_s = TYPICAL_ANSWER_S
        self._link_ratio: float | None = None  # the last measured answer's ratio
        self._link_interval_s = 0.0  # and its mean time between chunks
        self._told_ends = False  # the session says where answers end (`answer_ended`)
        self._ended = False  # ... and the current one has ended

    def push(self, pcm: bytes) -> None:
        """Loop thread: append an answer's chunk as it arrives."""
        if len(pcm) % 2:
            raise ValueError("PCM16 data must have an even number of bytes")
        now = self._clock()
        with self._lock:
            if pcm:
                # Told where answers end, a push before that end is the same answer however
                # long the link stalled (a lost packet's retransmission takes seconds); else
                # timing alone says.
                same = self._answer is not None and self._told_ends and not self._ended
                dry = self._dry_at is not None
                late = dry and (same or now - self._dry_at < LATE_GAP_S)  # type: ignore[operator]
                if late:
                    self.underruns += 1
                    self._grow(gap_s=min(now - self._dry_at, LATE_GAP_S))  # type: ignore[operator]
                    if self._answer is not None:
                        self._answer.holes += 1
                elif self._answer is None or not (self._playing or self._buf):
                    self._new_answer(now)
                self._dry_at = None
                assert self._answer is not None
                self._answer.add(now, len(pcm) / 2 / self.rate_hz)
            self._buf += pcm
            self._t_push = now
            excess = len(self._buf) - self._max_bytes
            if excess > 0:
                del self._buf[:excess]
                self.dropped_s += excess / 2 / self.rate_hz

    def _grow(self, gap_s: float) -> None:
        """After a hole of `gap_s`: a margin that would have covered it (within `max_s`)."""
        self.margin_s = min(self._max_s, self.margin_s + max(self.GROW_S, gap_s))
        self.max_margin_seen_s = max(self.max_margin_seen_s, self.margin_s)
        self._calm_s = 0.0

    def _new_answer(self, now: float) -> None:
        self._end_answer(finished=True)
        self._answer = _Answer(t0=now)
        self._wait_t0 = now
        self._ended = False

    def answer_ended(self) -> None:
        """Loop thread: the server has sent the whole answer (its turn is complete, or it was
        interrupted or cut). From the first call on, only this ends an answer: a stall in
        the middle of one, however long, is a hole in it, not a new answer (which would take
        the stall's end for a fast link and the part before it for a typical length)."""
        with self._lock:
            self._told_ends = self._ended = True

    def _end_answer(self, *, finished: bool) -> None:
        """The answer's ratio becomes the link's (if measured); a finished (not cleared),
        streamed (not one-shot: a cue) answer's length joins the median."""
        a, self._answer = self._answer, None
        if a is None:
            return
        inner = a.inner_ratio()
        if inner is not None and a.t_last - a.t0 >= MEASURE_S:
            self._link_ratio, self._link_interval_s = inner, a.interval_s() or 0.0
            self._stalls.append(a.longest_gap_s if a.longest_gap_s >= STALL_S else 0.0)
        if finished and a.pushes >= 2:
            self._lengths.append(a.recv_s)
            self._typical_s = statistics.median(self._lengths)

    def pop(self, n_bytes: int) -> bytes:
        """Audio thread: up to n_bytes of the oldest audio: nothing while waiting to (re)start,
        fewer bytes when running dry."""
        now = self._clock()
        with self._lock:
            if not self._playing:
                if not self._buf:
                    return b""
                queued_s = len(self._buf) / 2 / self.rate_hz
                need_s, quiet_s = self._start_rule(now, queued_s)
                if queued_s < need_s and now - self._t_push < quiet_s:
                    return b""
                self._playing = True
                if self._held:
                    self.max_slow_wait_s = max(self.max_slow_wait_s, now - self._wait_t0)
                self._end_wait()
            out = bytes(self._buf[:n_bytes])
            del self._buf[:n_bytes]
            played_s = len(out) / 2 / self.rate_hz
            if self._answer is not None:
                self._answer.played_s += played_s
            if len(out) < n_bytes:
                self._playing = False
                self._dry_at = self._wait_t0 = now
            self._calm_s += played_s
            if self._calm_s >= self.CALM_S:
                self.margin_s = max(self._min_s, self.margin_s - self.SHRINK_S)
                self._calm_s = 0.0
        return out

    def _start_rule(self, now: float, queued_s: float) -> tuple[float, float]:
        """Under the lock: (audio to have queued, or else quiet time without a push) before
        (re)starting, in seconds; sets `hold_s`."""
        margin = self.margin_s
        ratio = self._slow_ratio(now)
        a = self._answer
        if ratio is None or a is None or now - self._wait_t0 >= MAX_WAIT_S:
            self.hold_s = 0.0
            return margin, margin
        rest = self._rest_s(a)
        # A lossy link stalls for its retransmissions: hold enough to play through the
        # longest stall lately seen too, and do not take one for the answer's end.
        stall = max(self._stalls, default=0.0)
        self.hold_s = min(self._max_hold_s, max((1 - ratio) * rest, min(stall, rest)))
        self._held = self._held or self.hold_s > 0
        quiet = margin + max(2 * (a.interval_s() or self._link_interval_s), stall)
        return margin + self.hold_s, quiet

    def _rest_s(self, a: _Answer) -> float:
        """Under the lock: the answer's audio still to play (seconds, what is queued included),
        guessed (see the module docstring)."""
        queued_s = a.recv_s - a.played_s
        if a.holes:  # it outlived the guess (or was not known slow): guess long
            return max(self._typical_s, 2 * a.played_s, queued_s)
        return max(self._typical_s - a.played_s, queued_s)

    def _slow_ratio(self, now: float) -> float | None:
        """Under the lock: the current answer's arrival ratio if it is slow (< FAST_RATIO),
        None if it is fast or not yet known to be slow."""
        a = self._answer
        if a is None or self._max_hold_s <= 0:
            return None
        span = now - a.t0
        if span < MEASURE_S and not a.holes:
            prior = self._link_ratio
            whole_sound = a.pushes == 1 and a.first_s >= WHOLE_SOUND_S  # an earcon, a status
            if prior is None or prior >= FAST_RATIO or whole_sound or a.recv_s - span >= AHEAD_S:
                return None
            return prior
        if span < MEASURE_S and a.t_last > a.t0:  # a hole this early may be one late chunk
            credited = (a.recv_s - a.first_s + CREDIT_S) / (a.t_last - a.t0)
            if credited >= FAST_RATIO:
                return None
        ratio = a.ratio(now)
        return ratio if ratio < FAST_RATIO else None

    def expect_slow(self, ratio: float = EXPECTED_SLOW_RATIO) -> None:
        """Loop thread: the upload was found slow (a weak tether is seldom fast one way only).
        Until an answer has been measured here, its first moments are judged as if it came at
        `ratio`, so the first answer waits to play whole instead of starting, running dry and
        then waiting. A downlink that is fast is measured so within MEASURE_S, once."""
        with self._lock:
            if self._link_ratio is None:
                self._link_ratio = ratio

    def clear(self) -> None:
        """Loop thread (barge-in): empty at once; the next chunk starts a new answer."""
        with self._lock:
            self._buf.clear()
            self._playing = False
            self._dry_at = None
            self._end_answer(finished=False)
            self._end_wait()

    def _end_wait(self) -> None:
        self.hold_s = 0.0
        self._held = False

    @property
    def slow_wait_s(self) -> float:
        """How long the answer has been held back so far because it arrives slower than real
        time (wall seconds since its first chunk, or since the hole it is refilling after);
        0.0 while playing, idle, or waiting only for the jitter margin."""
        with self._lock:
            if self._playing or self.hold_s <= 0:
                return 0.0
            return self._clock() - self._wait_t0

    @property
    def arrival_ratio(self) -> float | None:
        """The current answer's arrival ratio (audio seconds per wall second between its first
        chunk and its latest), None before its second chunk or after a clear()."""
        with self._lock:
            return None if self._answer is None else self._answer.inner_ratio()

    @property
    def typical_answer_s(self) -> float:
        """The median length of the last finished answers (seconds of audio)."""
        return self._typical_s

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)
