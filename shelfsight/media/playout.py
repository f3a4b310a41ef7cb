"""The speaker's jitter buffer: when an answer starts playing.

Threads: `push` runs on the loop thread, `pop` on the audio thread (the PortAudio callback or
the WAV clock), the rest on the loop thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

LATE_GAP_S = 0.5  # audio arriving this soon after the buffer ran dry counts as an underrun


class JitterBuffer:
    """Thread-safe FIFO of mono PCM16 between the loop thread (push) and an audio thread (pop),
    with an adaptive playout margin.

    After running dry (or at the start of an answer) playback waits until `margin_s` of audio
    is queued, or until no audio has come for `margin_s` (an answer's short tail), so chunks
    arriving a few tens of ms late do not leave holes. An underrun (audio arriving within
    LATE_GAP_S after the buffer ran dry mid-answer) grows the margin by the gap (at least GROW_S)
    up to `max_s`;
    every CALM_S of audio played without one shrinks it by SHRINK_S down to `min_s`. Bounded to
    `max_buffer_s`; overflow drops the oldest audio and counts it in `dropped_s`. The lock is
    held only for a copy, so the audio callback never waits long. Times are `clock()` seconds
    (time.monotonic unless a test injects a simulated clock).
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_hz = rate_hz
        self.dropped_s = 0.0
        self.underruns = 0
        self.margin_s = margin_s
        self.max_margin_seen_s = margin_s
        self._min_s, self._max_s = min_s, max_s
        self._clock = clock
        self._max_bytes = int(rate_hz * max_buffer_s) * 2
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._playing = False  # playout started and the queued audio has not yet run out
        self._dry_at: float | None = None  # monotonic time the audio last ran out mid-play
        self._t_push = 0.0  # monotonic time of the last push
        self._calm_s = 0.0  # audio played since the last underrun (seconds)

    def push(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise ValueError("PCM16 data must have an even number of bytes")
        now = self._clock()
        with self._lock:
            if self._dry_at is not None and pcm:
                if now - self._dry_at < LATE_GAP_S:
                    self.underruns += 1
                    self._grow(gap_s=now - self._dry_at)
                self._dry_at = None
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

    def pop(self, n_bytes: int) -> bytes:
        """Up to n_bytes of the oldest audio: nothing while building the margin, fewer bytes
        when running dry."""
        now = self._clock()
        with self._lock:
            if not self._playing:
                if not self._buf:
                    return b""
                queued_s = len(self._buf) / 2 / self.rate_hz
                if queued_s < self.margin_s and now - self._t_push < self.margin_s:
                    return b""
                self._playing = True
            out = bytes(self._buf[:n_bytes])
            del self._buf[:n_bytes]
            if len(out) < n_bytes:
                self._playing = False
                self._dry_at = now
            self._calm_s += len(out) / 2 / self.rate_hz
            if self._calm_s >= self.CALM_S:
                self.margin_s = max(self._min_s, self.margin_s - self.SHRINK_S)
                self._calm_s = 0.0
        return out

    def clear(self) -> None:
        with self._lock:
            self._buf.clear()
            self._playing = False
            self._dry_at = None

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)
