"""Guidance cues as sound: 24 kHz PCM16 ticks, stereo-panned, pitched, at a rate.

Each tick is a 25 ms tone burst with a raised-cosine envelope at the cue's pitch; ticks repeat
at the cue's rate; `on_target` replaces them with a steady two-tone chime (660 + 990 Hz,
pulsing at 4 Hz), unlike any tick. The renderer keeps its phase across blocks, so a cue that
changes every frame still sounds continuous.

Stereo: `render` returns interleaved stereo (constant-power pan). The speaker path of a run
is 24 kHz mono today (one jitter buffer shared with the answer), so wiring this into a run
needs either a second, stereo output stream for cues or a mono downmix (`to_mono`), which
keeps pitch, tick rate and the on-target chime but loses left/right. Not yet wired into
`shelfsight run` (see README, "Guide me": remaining work). Any thread; one renderer per sink.
"""

from __future__ import annotations

import math

import numpy as np

from shelfsight.guide.cues import Cue

RATE_HZ = 24_000
TICK_S = 0.025
LEVEL = 0.3  # of full scale: under speech, well clear of clipping when mixed


class CueRenderer:
    def __init__(self, rate_hz: int = RATE_HZ) -> None:
        self.rate_hz = rate_hz
        self._t = 0.0  # seconds rendered so far
        self._next_tick = 0.0  # when the next tick starts

    def render(self, cue: Cue | None, seconds: float) -> np.ndarray:
        """`seconds` of sound for `cue` (None: silence) as int16, shape (n, 2)."""
        n = int(round(seconds * self.rate_hz))
        t = self._t + np.arange(n) / self.rate_hz
        mono = np.zeros(n)
        if cue is not None and cue.on_target:
            gate = (np.sin(2 * math.pi * 4.0 * t) > 0).astype(float)
            mono = 0.5 * gate * (np.sin(2 * math.pi * 660 * t) + np.sin(2 * math.pi * 990 * t))
        elif cue is not None:
            mono = self._ticks(cue, t)
        self._t += n / self.rate_hz
        pan = 0.0 if cue is None or cue.on_target else cue.pan
        angle = (pan + 1) * math.pi / 4  # constant power: -1 all left, +1 all right
        stereo = np.stack([mono * math.cos(angle), mono * math.sin(angle)], axis=1)
        return (np.clip(stereo * LEVEL, -1, 1) * 32767).astype(np.int16)

    def _ticks(self, cue: Cue, t: np.ndarray) -> np.ndarray:
        out = np.zeros(len(t))
        end = self._t + len(t) / self.rate_hz
        if self._next_tick < self._t:
            self._next_tick = self._t
        while self._next_tick < end:
            start = self._next_tick
            inside = (t >= start) & (t < start + TICK_S)
            local = t[inside] - start
            envelope = 0.5 - 0.5 * np.cos(2 * math.pi * local / TICK_S)
            out[inside] += envelope * np.sin(2 * math.pi * cue.pitch_hz * local)
            self._next_tick += 1.0 / cue.tick_hz
        return out


def to_mono(stereo: np.ndarray) -> bytes:
    """The mono speaker path's PCM16 bytes: left/right is lost (documented limitation)."""
    return (stereo.astype(np.int32).sum(axis=1) // 2).astype(np.int16).tobytes()
