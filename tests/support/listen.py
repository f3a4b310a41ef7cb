"""Listening to a speaker WAV as a user would: where each known sound is heard.

`find_sound` slides a known sound (an earcon, a rendered status sentence) over the recording
with a normalised cross-correlation (FFT), so it finds the sound whatever was played before or
after it; 1.0 is the exact waveform. `heard_cues` lists every earcon heard whole, in time
order; `silence_cues` removes them, whole or cut short.
"""

from __future__ import annotations

import functools

import numpy as np

from shelfsight.media.earcons import Earcon, EarconBank
from shelfsight.media.pcm import SPEAKER_RATE_HZ

MATCH = 0.98  # normalised correlation of a sound played unchanged


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, "<i2").astype(np.float64)


@functools.lru_cache(maxsize=1)
def _spectrum(recording: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The recording's FFT (`n` points) and running energy: the same for every sound looked
    for in it, so computed once per recording (a whole session's takes a second or two)."""
    x = _samples(recording)
    return np.fft.rfft(x, n), np.concatenate([[0.0], np.cumsum(x * x)])


def find_sound(recording: bytes, sound: bytes, threshold: float = MATCH) -> list[float]:
    """Start times (s) where `sound` is heard in `recording` (both 24 kHz mono PCM16)."""
    n_x, s = len(recording) // 2, _samples(sound)
    if n_x < len(s) or not np.any(s):
        return []
    n = 1 << int(np.ceil(np.log2(n_x + len(s))))
    spectrum, window = _spectrum(recording, n)
    corr = np.fft.irfft(spectrum * np.conj(np.fft.rfft(s, n)), n)[: n_x - len(s) + 1]
    energy = window[len(s) :] - window[: n_x - len(s) + 1]
    score = corr / (np.sqrt(np.maximum(energy, 1e-9)) * np.sqrt(np.sum(s * s)))
    hits: list[float] = []
    for i in np.flatnonzero(score >= threshold):
        t = i / SPEAKER_RATE_HZ
        if not hits or t - hits[-1] > len(s) / SPEAKER_RATE_HZ:
            hits.append(t)
    return hits


def heard_cues(recording: bytes, bank: EarconBank | None = None) -> list[tuple[float, Earcon]]:
    """Every earcon (at the default volume unless `bank` says otherwise), by time."""
    bank = bank or EarconBank()
    found = [(t, cue) for cue in Earcon for t in find_sound(recording, bank.pcm(cue))]
    return sorted(found)


def silence_cues(recording: bytes, bank: EarconBank | None = None) -> bytes:
    """The recording with every earcon silenced, also one cut short (by an answer that
    arrived while it played): each is found by its first 20 ms."""
    bank = bank or EarconBank()
    out = bytearray(recording)
    for cue in Earcon:
        pcm = bank.pcm(cue)
        for t in find_sound(recording, pcm[:960]):
            start = round(t * SPEAKER_RATE_HZ) * 2
            out[start : start + len(pcm)] = bytes(len(out[start : start + len(pcm)]))
    return bytes(out)


def plays_of(recording: bytes, answer: bytes, *, holes: int = 2) -> int:
    """How often `answer` (24 kHz mono PCM16) was played whole in `recording`: its sounding
    20 ms blocks heard bit-exact near where that play puts them, all but up to `holes` of them.
    A playback hole (an underrun) loses the block it falls in and delays what follows by its
    length, so an answer with one is still one play; an answer cut short is not a play; one
    played twice is two."""
    block, starts = SPEAKER_RATE_HZ * 2 // 50, []
    sounding = [o for o in range(0, len(answer) - block + 1, block) if any(answer[o : o + block])]
    for n, offset in enumerate(sounding):
        at = recording.find(answer[offset : offset + block])
        while at >= 0:
            if at % 2 == 0:
                starts.append(((at - offset) / (2 * SPEAKER_RATE_HZ), n))
            at = recording.find(answer[offset : offset + block], at + 2)
    plays, first, group = 0, None, set[int]()
    for t, n in sorted(starts):
        if first is None or t - first > 0.3:  # plays do not overlap: a new one starts here
            plays += len(group) >= len(sounding) - holes
            first, group = t, set()
        group.add(n)
    return plays + (len(group) >= len(sounding) - holes)
