"""What one tether run did, read from its records (for bench/tether.py).

- Where the mic audio went: every audio message the stand-in received is placed in the mic
  file. 16 kHz chunks by their bytes (the file's faint noise floor makes every 20 ms chunk
  unique); 8 kHz audio (slow mode) by comparing it, 20 ms at a time, with the file resampled
  to 8 kHz as the link does (soxr: a streamed resample matches the whole-file one to about one
  LSB, a wrong place differs by the noise floor). Each connection's audio becomes segments of
  the file; a forward jump between two segments of one connection is a hole the model heard
  across.
- Holes in the answers' playback: the answer is a known waveform with a unique noise floor;
  each of its 20 ms blocks is found bit-exact in the speaker WAV (written on a real-time
  clock, silence where nothing played), and the extra distance between consecutive blocks of
  one play is a hole where the speaker ran dry.

All positions are in samples: 8 kHz samples of the mic (`MicMap`), 24 kHz of the speaker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

MIC_HZ, SLOW_HZ = 16_000, 8_000
CHUNK16 = 320  # samples in a 20 ms mic chunk at 16 kHz
WIN = 160  # ... and at 8 kHz: the unit audio is placed in
MATCH_RMS = 10.0  # an 8 kHz window this close to the file is that place (noise floor: ~70)
BLOCK24 = 480  # 20 ms of answer audio at 24 kHz
HOLE_MIN = 24  # a playback hole shorter than 1 ms is not one


@dataclass(frozen=True)
class Segment:
    """`n` samples of one connection's audio stream, from stream position `k`, which are the
    mic file's 8 kHz samples from `e`."""

    k: int
    e: int
    n: int

    @property
    def shift(self) -> int:
        return self.e - self.k

    @property
    def end(self) -> int:
        return self.e + self.n


class MicMap:
    """The mic file (16 kHz PCM16), for placing the audio the stand-in received."""

    def __init__(self, mic16: np.ndarray) -> None:
        n_chunks = len(mic16) // CHUNK16
        self.n8 = n_chunks * WIN
        self.chunks = {mic16[c * CHUNK16 : (c + 1) * CHUNK16].tobytes(): c for c in range(n_chunks)}
        self.mic8 = soxr.resample(mic16.astype(np.float64), MIC_HZ, SLOW_HZ)[: self.n8]
        self._nfft = 1 << int(np.ceil(np.log2(self.n8 + WIN)))
        self._spectrum = np.fft.rfft(self.mic8, self._nfft)
        self._energy = np.concatenate([[0.0], np.cumsum(self.mic8**2)])

    def _matches(self, window: np.ndarray, e: int) -> bool:
        if e < 0 or e + WIN > self.n8:
            return False
        return float(np.sqrt(np.mean((window - self.mic8[e : e + WIN]) ** 2))) < MATCH_RMS

    def locate(self, window: np.ndarray) -> int | None:
        """Where in the 8 kHz file `window` (WIN samples) is, or None."""
        corr = np.fft.irfft(self._spectrum * np.conj(np.fft.rfft(window, self._nfft)))
        last = self.n8 - WIN + 1
        energy = self._energy[WIN : WIN + last] - self._energy[:last]
        e = int(np.argmax(corr[:last] / np.sqrt(np.maximum(energy, 1e-9))))
        return e if self._matches(window, e) else None

    def place(self, messages: list[tuple[int, bytes]]) -> list[Segment]:
        """One connection's audio messages, (rate Hz, PCM16) in order, as segments of the file
        (merged where contiguous; audio from nowhere in the file, e.g. the silence sent after
        it, is left out)."""
        raw: list[Segment] = []
        k = 0
        run: list[np.ndarray] = []
        run_k = 0
        for rate, data in messages:
            if rate == SLOW_HZ:
                if not run:
                    run_k = k
                samples = np.frombuffer(data, "<i2").astype(np.float64)
                run.append(samples)
                k += len(samples)
                continue
            if run:
                raw += self._place_run(np.concatenate(run), run_k, raw)
                run = []
            for i in range(0, len(data) - 2 * CHUNK16 + 1, 2 * CHUNK16):
                c = self.chunks.get(data[i : i + 2 * CHUNK16])
                if c is not None:
                    raw.append(Segment(k, c * WIN, WIN))
                k += WIN
        if run:
            raw += self._place_run(np.concatenate(run), run_k, raw)
        return merge(raw)

    def _place_run(self, samples: np.ndarray, k0: int, before: list[Segment]) -> list[Segment]:
        """8 kHz audio from stream position `k0`: expected where the last segment leads,
        searched for in the whole file where it is not."""
        out: list[Segment] = []
        e: int | None = before[-1].shift + k0 if before else None
        i = 0
        while i + WIN <= len(samples):
            window = samples[i : i + WIN]
            if e is None or not self._matches(window, e):
                e = self.locate(window)
            if e is None:  # a resampler's start-up, or audio from nowhere: try a bit later
                i += WIN // 2
                continue
            out.append(Segment(k0 + i, e, WIN))
            i, e = i + WIN, e + WIN
        return out


def reached(segments: list[Segment], k: int) -> int | None:
    """How far into the file (8 kHz samples) a connection's audio had got at stream
    position `k`: the end of what was placed before it (None: nothing yet)."""
    out = None
    for s in segments:
        if s.k < k:
            out = s.e + min(s.n, k - s.k)
    return out


def stream_length(rate: int, data: bytes) -> int:
    """A message's length in stream positions (8 kHz samples; a 16 kHz chunk counts its
    duration, as `MicMap.place` does)."""
    return len(data) // 2 if rate == SLOW_HZ else len(data) // 4


def merge(segments: list[Segment]) -> list[Segment]:
    """Joins consecutive segments with the same shift (what lies between them in the stream
    was the file in between too, merely not placed: a resampler's start-up)."""
    out: list[Segment] = []
    for s in segments:
        last = out[-1] if out else None
        if last is not None and s.shift == last.shift and s.e >= last.end:
            out[-1] = Segment(last.k, last.e, s.end - last.e)
        else:
            out.append(s)
    return out


def holes(segments: list[Segment]) -> list[tuple[int, int, int]]:
    """Forward jumps in one connection's audio: (hole start, hole end, end of what came next)
    in 8 kHz file samples: the file from start to end never came on this connection, though
    what followed it did."""
    return [
        (a.end, b.e, b.end) for a, b in zip(segments, segments[1:], strict=False) if b.e > a.end
    ]


def delivered(
    connections: list[list[Segment]], n8: int, words: list[tuple[int, int]]
) -> tuple[float, float]:
    """The share of the questions' words (8 kHz file samples [start, end)) the stand-in
    received on some connection, and the share of the whole file it received (speech only,
    the pauses between questions stay home by design: that share is what was sent)."""
    covered = np.zeros(n8, bool)
    for segments in connections:
        for s in segments:
            covered[max(0, s.e) : min(n8, s.end)] = True
    spoken = np.zeros(n8, bool)
    for start, end in words:
        spoken[start:end] = True
    share = float(covered[spoken].mean()) if spoken.any() else 0.0
    return share, float(covered.mean())


def spliced(connections: list[list[Segment]], question: tuple[int, int]) -> bool:
    """The stand-in received the question (8 kHz file samples [start, end)) with a hole in
    it: on some connection, part of the question came after a stretch of it that never did."""
    start, end = question
    for segments in connections:
        for hole_start, hole_end, next_end in holes(segments):
            if hole_start < end and hole_end > start and hole_end < end and next_end > hole_end:
                return True
    return False


@dataclass(frozen=True)
class Play:
    """One play of the answer in the speaker WAV."""

    start: int  # speaker sample of its first block found
    holes: list[int]  # each hole's length in samples, in order
    whole: bool  # its last block was played (not cut short)


def plays(speaker: np.ndarray, answer: np.ndarray) -> list[Play]:
    """Every play of `answer` in `speaker` (both 24 kHz int16), with its holes."""
    data = speaker.astype("<i2").tobytes()
    found: list[tuple[int, int]] = []
    n_blocks = len(answer) // BLOCK24
    sounding = [n for n in range(n_blocks) if answer[n * BLOCK24 : (n + 1) * BLOCK24].any()]
    for n in sounding:
        block = answer[n * BLOCK24 : (n + 1) * BLOCK24].astype("<i2").tobytes()
        at = data.find(block)
        while at >= 0:
            if at % 2 == 0:
                found.append((at // 2, n))
            at = data.find(block, at + 2)
    groups: list[list[tuple[int, int]]] = []
    for pos, n in sorted(found):
        if not groups or n <= groups[-1][-1][1]:
            groups.append([])
        groups[-1].append((pos, n))
    out = []
    for group in groups:
        extra = [
            (p2 - p1) - (n2 - n1) * BLOCK24
            for (p1, n1), (p2, n2) in zip(group, group[1:], strict=False)
        ]
        out.append(
            Play(group[0][0], [x for x in extra if x >= HOLE_MIN], group[-1][1] == sounding[-1])
        )
    return out
