"""Steady tones in the mic: store chimes, scanner beeps, ringtones and alarms are not the user.

Loudspeakers and piezo buzzers play notes of one pitch, and each note is a narrow line in the
spectrum: a peak standing far above the bins a few either side (a Hann window's main lobe is
+-2 bins wide; a steady tone is 30 dB down 3 bins away). `ToneSplit` tells the voice detector
what share of a chunk's power is in such lines: a chime is nearly all lines, the user talking
over one as loud as they are about half.

It looks through two windows and takes the larger share: 32 ms, sharp in time (a note as it
starts), and 128 ms, sharp in frequency (two low notes a third apart, 45 Hz at A3-F3, are one
blur in 32 ms, and a blur is no line).

A voice has lines too where its pitch holds still: a high voice's harmonics stand apart in
32 ms, a low voice's first few in 128 ms. They come as a comb, consecutive harmonics of one
pitch in the voice's range (80-420 Hz): five in 32 ms, three in 128 ms. Such a comb is the
voice, not a tone, unless (in 32 ms) most of its power keeps its phase over 40 ms, as a
loudspeaker's held note does and a voice's gliding pitch does not: a chime with harmonics.
Not in 128 ms: windows 20 ms apart share most of their samples there, and any sound's phases
move evenly. Not over longer than 40 ms: a chime's second note would be a voice until then.
Five harmonics, so that a ringtone with a vibrato, a few harmonics wobbling in pitch like a
singer's, stays a tone in 32 ms.

Cheap enough for the loop thread: a 512- and a 2048-point real FFT and a few vector operations
per 20 ms chunk (`python -m bench.vad` measures it).
"""

from __future__ import annotations

from collections import deque

import numpy as np

RATE_HZ = 16_000
LINE_SPAN = 3  # bins either side a line must stand above...
LINE_DB = 12.0  # ...by this much (power); a voice's harmonics rarely do
LINE_WIDTH = 2  # bins either side of a line's peak that belong to it (the main lobe)
VOICE_F0_HZ = (80.0, 420.0)  # pitches a comb of harmonics may be a voice at
STEADY_LAG = 1  # chunks (20 ms): a held note's phase advances by the same step over 2...
STEADY_RAD = 0.25  # ...to within this; a voice's harmonics glide off by more


class ToneSplit:
    """Keeps the last 128 ms of mic samples; loop thread only (one per detector)."""

    def __init__(self) -> None:
        # (window, lowest voice pitch it can tell apart, harmonics that make a voice's comb,
        # whether a held note shows in its phases: 128 ms windows 20 ms apart share most of
        # their samples, and a voice's phases there move as evenly as a note's)
        self._views = (_View(512, 140.0, 5, True), _View(2048, VOICE_F0_HZ[0], 3, False))
        self._recent = np.zeros(max(view.n for view in self._views), np.float32)

    def line_share_of(self, chunk: np.ndarray) -> float:
        """Share (0-1) of the power of the windows ending with `chunk` (float32 samples, at
        most 512 of them) that is in narrow spectral lines, voices' combs left out."""
        n = len(chunk)
        self._recent[:-n] = self._recent[n:]
        self._recent[-n:] = chunk
        return max(view.line_share(self._recent) for view in self._views)


class _View:
    """The spectrum of the last `n` samples, remembered over 2 x STEADY_LAG chunks.

    `lowest_f0_hz`: harmonics of a lower pitch stand too close to be lines in this window, so
    no comb is looked for there; `comb`: consecutive harmonics that make one; `held_notes`:
    a comb that keeps its phase is a note (else every comb is a voice).
    """

    def __init__(self, n: int, lowest_f0_hz: float, comb: int, held_notes: bool) -> None:
        self.n = n
        self._held_notes = held_notes
        self._window = np.hanning(n).astype(np.float32)
        self._f0_bins = (lowest_f0_hz * n / RATE_HZ, VOICE_F0_HZ[1] * n / RATE_HZ)
        self._comb = comb
        self._spectra: deque[np.ndarray] = deque(maxlen=2 * STEADY_LAG + 1)
        self._ratio = np.float32(10 ** (LINE_DB / 10))

    def line_share(self, recent: np.ndarray) -> float:
        spectrum = np.fft.rfft(recent[-self.n :] * self._window)
        self._spectra.append(spectrum)
        power = spectrum.real**2 + spectrum.imag**2
        total = float(power.sum())
        if total <= 0.0:
            return 0.0
        peaks = _line_peaks(power, self._ratio)
        if len(peaks) >= self._comb:
            voice = _comb_members(_peak_positions(power, peaks), self._f0_bins, self._comb)
            if voice.any() and not (self._held_notes and self._held(peaks[voice], power)):
                peaks = peaks[~voice]
        lines = np.zeros(len(power) + 2 * LINE_WIDTH, bool)
        for shift in range(2 * LINE_WIDTH + 1):  # each peak with its main lobe
            lines[peaks + shift] = True
        return float(power[lines[LINE_WIDTH:-LINE_WIDTH]].sum()) / total

    def _held(self, bins: np.ndarray, power: np.ndarray) -> bool:
        """Most of these bins' power keeps a steady pitch: the phase advances by the same
        step from window to window STEADY_LAG chunks apart (second difference near 0)."""
        if len(self._spectra) < self._spectra.maxlen:  # type: ignore[operator]
            return False
        first, mid, last = (np.angle(self._spectra[i][bins]) for i in (0, STEADY_LAG, -1))
        bend = np.abs(np.angle(np.exp(1j * (last - 2 * mid + first))))
        weight = power[bins]
        return float(weight[bend < STEADY_RAD].sum()) >= 0.5 * float(weight.sum())


def _line_peaks(power: np.ndarray, ratio: np.float32) -> np.ndarray:
    """Bins of local maxima standing `ratio` above the bins LINE_SPAN either side."""
    d = LINE_SPAN
    mid = power[d:-d]
    peak = (
        (mid >= power[d - 1 : -d - 1])
        & (mid >= power[d + 1 : len(power) - d + 1])
        & (mid > ratio * power[: -2 * d])
        & (mid > ratio * power[2 * d :])
    )
    return np.flatnonzero(peak) + d


def _peak_positions(power: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Each peak's frequency in (fractional) bins: a parabola through its log power."""
    a, b, c = (np.log(power[peaks + k] + 1e-30) for k in (-1, 0, 1))
    return peaks + np.clip(0.5 * (a - c) / (a - 2 * b + c - 1e-12), -0.5, 0.5)


def _comb_members(where: np.ndarray, f0_bins: tuple[float, float], run: int) -> np.ndarray:
    """Which peaks (at sorted fractional bins `where`) belong to `run` consecutive harmonics,
    starting at the 1st, 2nd or 3rd, of one pitch in `f0_bins`: a voice's comb. The pitches
    tried are each neighbouring pair's spacing, refined by the harmonic number it implies."""
    member = np.zeros(len(where), bool)
    if len(where) < run:
        return member
    gap = np.diff(where)
    pair = np.flatnonzero((gap >= f0_bins[0]) & (gap <= f0_bins[1]))
    f0 = where[pair + 1] / np.maximum(1.0, np.round(where[pair + 1] / gap[pair]))
    f0 = f0[(f0 >= f0_bins[0]) & (f0 <= f0_bins[1])]
    if not len(f0):
        return member
    k = np.arange(1, 21)
    wanted = f0[:, None] * k  # the 1st-20th harmonic of each pitch tried
    j = np.clip(np.searchsorted(where, wanted), 1, len(where) - 1)
    nearest = np.where(np.abs(where[j - 1] - wanted) < np.abs(where[j] - wanted), j - 1, j)
    hit = np.abs(where[nearest] - wanted) < 0.3 * np.sqrt(k)
    counts = np.zeros((len(f0), len(k) + 1), np.int32)
    np.cumsum(hit, axis=1, out=counts[:, 1:])
    starts = (counts[:, run:] - counts[:, :-run]) == run  # harmonics s+1..s+run all there
    starts[:, 3:] = False  # a voice's comb starts low
    in_run = np.zeros_like(hit)
    for offset in range(run):
        in_run[:, offset : offset + starts.shape[1]] |= starts
    member[nearest[in_run & hit]] = True
    return member
