"""Guidance cues as sound: 24 kHz PCM16 ticks, stereo-panned, pitched, at a rate.

Each tick is a 25 ms tone burst with a raised-cosine envelope at the cue's pitch; ticks repeat
at the cue's rate; `on_target` replaces them with a steady two-tone chime (660 + 990 Hz,
pulsing at 4 Hz, its first pulse at once), unlike any tick. The renderer keeps its phase across
blocks, so a cue that changes every frame still sounds continuous.

Stereo: `render` returns (n, 2) int16 (constant-power pan). In a run, `GuideSound` holds the
guide's newest cue (set from the guide's worker thread) and is the speaker's overlay: the
speaker's audio thread mixes it over the answer block by block (`shelfsight.media.speaker`),
so ticks keep time instead of queueing behind speech; a sound device opens in stereo for it, a
WAV speaker (mono) gets the downmix, which keeps pitch, tick rate and the chime but not
left/right. One renderer per sink.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

import numpy as np

from shelfsight.core.guidance import Guidance
from shelfsight.core.pcm import SPEAKER_RATE_HZ

RATE_HZ = SPEAKER_RATE_HZ
TICK_S = 0.025
LEVEL = 0.3  # of full scale: under speech, well clear of clipping when mixed


class CueRenderer:
    def __init__(self, rate_hz: int = RATE_HZ) -> None:
        self.rate_hz = rate_hz
        self._t = 0.0  # seconds rendered so far
        self._next_tick = 0.0  # when the next tick starts
        self._last_tick: tuple[float, float] | None = None  # (start s, pitch Hz) of the latest
        self._chime_from: float | None = None  # when the chime began (None: not chiming)

    def render(self, cue: Guidance | None, seconds: float) -> np.ndarray:
        """`seconds` of sound for `cue` (None: silence) as int16, shape (n, 2)."""
        n = int(round(seconds * self.rate_hz))
        t = self._t + np.arange(n) / self.rate_hz
        mono = np.zeros(n)
        if cue is not None and cue.on_target:
            if self._chime_from is None:
                self._chime_from = self._t
            gate = (np.sin(2 * math.pi * 4.0 * (t - self._chime_from)) >= 0).astype(float)
            mono = 0.5 * gate * (np.sin(2 * math.pi * 660 * t) + np.sin(2 * math.pi * 990 * t))
        else:
            self._chime_from = None
            if cue is not None:
                mono = self._ticks(cue, t)
        self._t += n / self.rate_hz
        pan = 0.0 if cue is None or cue.on_target else cue.pan
        angle = (pan + 1) * math.pi / 4  # constant power: -1 all left, +1 all right
        stereo = np.stack([mono * math.cos(angle), mono * math.sin(angle)], axis=1)
        return (np.clip(stereo * LEVEL, -1, 1) * 32767).astype(np.int16)

    def _ticks(self, cue: Guidance, t: np.ndarray) -> np.ndarray:
        """The ticks in this block, whole: a tick begun in the last block ends in this one
        (the speaker mixes 20 ms blocks; a tick cut at each block's end was a click)."""
        out = np.zeros(len(t))
        end = self._t + len(t) / self.rate_hz
        if self._last_tick is not None and self._last_tick[0] + TICK_S > self._t:
            _add_tick(out, t, *self._last_tick)
        if self._next_tick < self._t:
            self._next_tick = self._t
        while self._next_tick < end:
            self._last_tick = (self._next_tick, cue.pitch_hz)
            _add_tick(out, t, *self._last_tick)
            self._next_tick += 1.0 / cue.tick_hz
        return out


def _add_tick(out: np.ndarray, t: np.ndarray, start: float, pitch_hz: float) -> None:
    """One raised-cosine tone burst starting at `start` (s), where it falls in times `t`."""
    inside = (t >= start) & (t < start + TICK_S)
    local = t[inside] - start
    envelope = 0.5 - 0.5 * np.cos(2 * math.pi * local / TICK_S)
    out[inside] += envelope * np.sin(2 * math.pi * pitch_hz * local)


def to_mono(stereo: np.ndarray) -> bytes:
    """The mono speaker path's PCM16 bytes: left/right is lost (documented limitation)."""
    return (stereo.astype(np.int32).sum(axis=1) // 2).astype(np.int16).tobytes()


class GuideSound:
    """The guide's current cue as sound. `set` from any thread (the guide's worker);
    `render` on the speaker's audio thread only. The lock guards only the cue reference."""

    def __init__(self, rate_hz: int = RATE_HZ) -> None:
        self._renderer = CueRenderer(rate_hz)
        self._lock = threading.Lock()
        self._cue: Guidance | None = None
        self._fresh = False  # the cue has not been rendered yet
        self.cues_rendered = 0
        self.latencies_s: deque[float] = deque(maxlen=2000)  # frame capture -> first mixed

    def set(self, cue: Guidance | None) -> None:
        with self._lock:
            self._cue, self._fresh = cue, cue is not None

    def render(self, frames: int) -> np.ndarray | None:
        """`frames` samples (n, 2) int16 at 24 kHz to mix, or None while there is no cue."""
        with self._lock:
            cue, fresh, self._fresh = self._cue, self._fresh, False
            if fresh and cue is not None:
                self.cues_rendered += 1
                self.latencies_s.append(time.monotonic() - cue.t_capture)
        if cue is None:
            return None
        return self._renderer.render(cue, frames / self._renderer.rate_hz)

    def latency_ms(self) -> tuple[float, float] | None:
        """(p50, p95) of frame capture -> first mixed, in ms; None before any cue."""
        with self._lock:
            samples = list(self.latencies_s)
        if not samples:
            return None
        p50, p95 = np.percentile(np.array(samples) * 1000, [50, 95])
        return round(float(p50), 1), round(float(p95), 1)
