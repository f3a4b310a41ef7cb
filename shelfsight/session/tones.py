"""Steady tones in the mic: store chimes, scanner beeps, ringtones and alarms are not the user.

Loudspeakers and piezo buzzers play notes of one pitch, and each note is a narrow line in the
spectrum: a peak standing far above the bins a few either side (a Hann window's main lobe is
+-2 bins wide; a steady tone is 30 dB down 3 bins away). A voice's harmonics are not: its pitch
moves within the 32 ms window, and below about 200 Hz its harmonics are too close together to
stand alone. `ToneSplit` tells the voice detector what share of a chunk's power is in such
lines: a chime is nearly all lines, the user talking over one as loud as they are about half,
and the detector's level gate leaves the lines out, so a long alarm does not raise the floor
the user must talk above.

Cheap enough for the loop thread: one 512-point real FFT and a few vector operations per 20 ms
chunk (about 0.03 ms; `python -m bench.vad` measures it).
"""

from __future__ import annotations

import numpy as np

TONE_FFT = 512  # samples at 16 kHz: a 32 ms window, 31.25 Hz bins
LINE_SPAN = 3  # bins either side a line must stand above...
LINE_DB = 12.0  # ...by this much (power); a voice's harmonics rarely do
LINE_WIDTH = 2  # bins either side of a line's peak that belong to it (the main lobe)


class ToneSplit:
    """Keeps the last `TONE_FFT` mic samples; loop thread only (one per detector)."""

    def __init__(self, line_db: float = LINE_DB) -> None:
        self._window = np.hanning(TONE_FFT).astype(np.float32)
        self._recent = np.zeros(TONE_FFT, np.float32)
        self._ratio = np.float32(10 ** (line_db / 10))

    def line_share_of(self, chunk: np.ndarray) -> float:
        """Share (0-1) of the power of the window ending with `chunk` (float32 samples, at
        most `TONE_FFT` of them) that is in narrow spectral lines."""
        n = len(chunk)
        self._recent[:-n] = self._recent[n:]
        self._recent[-n:] = chunk
        power = np.abs(np.fft.rfft(self._recent * self._window)) ** 2
        total = float(power.sum())
        if total <= 0.0:
            return 0.0
        d, r = LINE_SPAN, self._ratio
        mid = power[d:-d]
        peak = (
            (mid >= power[d - 1 : -d - 1])
            & (mid >= power[d + 1 : len(power) - d + 1])
            & (mid > r * power[: -2 * d])
            & (mid > r * power[2 * d :])
        )
        lines = np.zeros(len(power) + 2 * LINE_WIDTH, bool)
        for shift in range(2 * LINE_WIDTH + 1):  # each peak with its main lobe
            lines[d + shift : d + shift + len(peak)] |= peak
        return float(power[lines[LINE_WIDTH:-LINE_WIDTH]].sum()) / total
