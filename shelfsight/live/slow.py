"""What the link does when the upload is too slow: audio always wins.

16 kHz PCM16 is 256 kbit/s raw and about 341 kbit/s as the base64 JSON the Live API takes, so
a 256 kbit/s phone link cannot carry it at all, let alone pictures. The policy, in order:

1. Pictures never delay audio: a frame goes out only when no audio waits (always), and while
   the link is slow only one goes out with each question, as it begins (spoken or typed),
   small (the sampler makes light pictures meanwhile), so the model never answers from a
   picture minutes old.
2. While slow, audio is sent at 8 kHz (`audio/pcm;rate=8000`, which the Live API accepts and
   resamples; speech stays intelligible, telephone-like): ~171 kbit/s on the wire, so a
   256 kbit/s link keeps up and the backlog drains instead of growing. The rate changes only
   in a pause, never inside an utterance.
3. Nothing is dropped silently: audio waits in the outbox (15 s) in order; only past that is
   the oldest dropped, and that is counted, shown and recorded (`AudioLost`).

"Slow" starts when the kernel measures the path slower than full-rate audio needs with room to
spare (`uplink_bps` under `slow_below_bps`, where the kernel says: Linux's delivery rate,
macOS's window over round trip), so a first question is not asked into a clogged link; or
else when more than `enter_backlog_s` of mic audio has waited to go out all through the
last `trend_s`, no less than over the `trend_s` before, while the link still carries data (TCP
ACKs or pongs come back: a stall is the watchdog's case; the backlog a reconnect leaves drains,
so it is not slowness). It ends
after `calm_s` with under `calm_backlog_s` waiting and no measurement of a slow path (then
16 kHz and pictures are tried again).
A link that was slow stays suspect: if it is slow again within `probation_s` of leaving slow
mode, the next calm it must show doubles (up to `max_calm_s`), so a link that cannot carry the
full rate is not flipped back and forth every half minute; normal mode that holds through
probation earns the short calm back. Loop thread only.
"""

from __future__ import annotations

import collections

import numpy as np
import soxr

from shelfsight.live.events import SlowLink

SLOW_RATE_HZ = 8000
# 16 kHz PCM16 as base64 JSON is about 43 KB/s; a path under 1.25 times that cannot carry it
# and the pictures beside it (bytes/s). Compressed (permessage-deflate) a store's audio takes
# about a quarter less.
SLOW_BELOW_BPS = 54_000
SLOW_BELOW_DEFLATED_BPS = 40_000
SLOW_MIME = f"audio/pcm;rate={SLOW_RATE_HZ}"
DRAIN_TOLERANCE_S = 0.25  # a backlog this much smaller than `trend_s` ago is draining


class UploadPace:
    """The slow-link state; `update` is called before every audio send with the backlog."""

    def __init__(
        self,
        enter_backlog_s: float = 0.3,
        calm_backlog_s: float = 0.2,
        calm_s: float = 30.0,
        trend_s: float = 0.5,
        probation_s: float = 60.0,
        max_calm_s: float = 300.0,
    ) -> None:
        self._enter_s = enter_backlog_s
        self._calm_backlog_s = calm_backlog_s
        self._base_calm_s = self._calm_s = calm_s
        self._trend_s = trend_s
        self._probation_s = probation_s
        self._max_calm_s = max_calm_s
        self._t_left: float | None = None  # when slow mode last ended
        self._history: collections.deque[tuple[float, float]] = collections.deque()
        self.slow = False
        self.times_slow = 0  # how often the link became slow
        self.slow_s = 0.0  # time spent slow, up to the last change
        self.max_backlog_s = 0.0
        self._t_changed = 0.0
        self._t_calm_since: float | None = None
        self.slow_below_bps: float = SLOW_BELOW_BPS  # the link sets it for each connection

    def update(
        self,
        backlog_s: float,
        now: float,
        *,
        flowing: bool = True,
        uplink_bps: float | None = None,
    ) -> SlowLink | None:
        """The new state if it changed. `flowing`: something came back from the server just
        now (a stalled link is not a slow one: the watchdog deals with it); `uplink_bps`: the
        path's rate as the kernel measured it lately (bytes/s), if known."""
        self.max_backlog_s = max(self.max_backlog_s, backlog_s)
        measured_slow = uplink_bps is not None and uplink_bps < self.slow_below_bps
        if not self.slow:
            if self._t_left is not None and now - self._t_left >= self._probation_s:
                self._t_left, self._calm_s = None, self._base_calm_s  # it held: trusted again
            if not flowing:
                # An outage's backlog grows for want of a link, not of speed: only what is
                # seen while the link carries data says how fast it drains.
                self._history.clear()
                return None
            if measured_slow or self._not_draining(backlog_s, now):
                if self._t_left is not None:  # slow again on probation: calm longer next time
                    self._calm_s = min(self._max_calm_s, 2 * self._calm_s)
                self.slow, self._t_changed, self._t_calm_since = True, now, None
                self.times_slow += 1
                return SlowLink(True, round(backlog_s, 2))
            return None
        if backlog_s >= self._calm_backlog_s or measured_slow:
            self._t_calm_since = None
        elif self._t_calm_since is None:
            self._t_calm_since = now
        elif now - self._t_calm_since >= self._calm_s:
            self.slow_s += now - self._t_changed
            self.slow, self._t_changed, self._t_left = False, now, now
            self._history.clear()
            return SlowLink(False, round(backlog_s, 2))
        return None

    def light_pictures(self, now: float) -> bool:
        """Small pictures: while slow, and on probation after it (full ones are tried once
        the link has held a minute at full-rate audio, not at once, which would clog it)."""
        on_probation = self._t_left is not None and now - self._t_left < self._probation_s
        return self.slow or on_probation

    @property
    def calm_s(self) -> float:
        """How long the backlog must stay small before slow mode ends, now."""
        return self._calm_s

    def _not_draining(self, backlog_s: float, now: float) -> bool:
        """The backlog's floor over the last `trend_s` is over `enter_backlog_s` and no lower
        than over the `trend_s` before. Floors, because the backlog is a sawtooth (buffers
        along the path take bytes in bursts); two windows, because the backlog a reconnect
        leaves is large but shrinking."""
        history = self._history
        if not history or now - history[-1][0] >= 0.05:
            history.append((now, backlog_s))
        while now - history[0][0] > 2 * self._trend_s:
            history.popleft()
        if now - history[0][0] < 2 * self._trend_s - 0.1:
            return False
        recent = min(b for t, b in history if now - t <= self._trend_s)
        before = min(b for t, b in history if now - t > self._trend_s)
        return recent > self._enter_s and recent >= before - DRAIN_TOLERANCE_S

    def total_slow_s(self, now: float) -> float:
        return self.slow_s + (now - self._t_changed if self.slow else 0.0)


class WireAudio:
    """What a mic chunk goes out as: 16 kHz, or 8 kHz while the link is slow. The rate only
    changes after `PAUSE_CHUNKS` without speech, when the server has ended any turn (its
    silence to end one is 700 ms): a change inside a turn could cost the server's speech
    detection its state (the stand-in's starts afresh at a new rate)."""

    PAUSE_CHUNKS = 40  # 0.8 s: past the server's 0.7 s of silence that ends a turn

    def __init__(self) -> None:
        self._downsampler: soxr.ResampleStream | None = None
        self._quiet = 0
        self.low_rate_sent = False  # 8 kHz audio went out on this connection
        self.low_rate_refused = False  # the server closed on it: 16 kHz from now on

    def new_connection(self) -> None:
        """A new connection holds no turn yet, so the rate may change at its first chunk. The
        resampler starts afresh: what it held back belongs to audio the replay sends again
        (kept, it would come out ahead of the replay, out of order)."""
        self.low_rate_sent = False
        self._downsampler = None
        self._quiet = self.PAUSE_CHUNKS

    def stream_ended(self) -> None:
        """An audioStreamEnd went out: the server has flushed and ended any turn, so the rate
        may change with the next chunk (speech only, the pause itself is never sent)."""
        self._quiet = self.PAUSE_CHUNKS

    def encode(self, pcm16k: bytes, *, speech: bool, slow: bool) -> tuple[bytes, str | None]:
        """(bytes, mime type), or a None mime type for the usual 16 kHz. The resampler works in
        blocks and holds up to ~120 ms back (whatever its quality setting), so a chunk at
        8 kHz can come out empty: the link sends nothing for it."""
        slow = slow and not self.low_rate_refused
        if slow != (self._downsampler is not None) and self._quiet >= self.PAUSE_CHUNKS:
            self._downsampler = (
                soxr.ResampleStream(16000, SLOW_RATE_HZ, 1, dtype="int16") if slow else None
            )
        self._quiet = 0 if speech else min(self._quiet + 1, self.PAUSE_CHUNKS)
        if self._downsampler is None:
            return pcm16k, None
        samples = np.frombuffer(pcm16k, dtype="<i2")
        out: np.ndarray = self._downsampler.resample_chunk(samples)
        self.low_rate_sent = True
        return out.astype("<i2").tobytes(), SLOW_MIME  # may be b"" (held back): not sent
