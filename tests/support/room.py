"""A simulated room: what the speaker plays comes back into the microphone, late and quieter.

For tests and benchmarks of echo cancellation without hardware. A `Room` listens to a speaker
sink (`on_played`, on the sink's audio thread) and renders the echo on the mic timeline: the
played audio delayed by `echo_delay_ms`, scaled by `echo_gain_db`, coloured like a small
speaker, with an optional reverberant tail and background noise. `RoomMic` is a `MicSource`
that mixes a user's voice (a WAV file) into it, paced by the wall clock like `WavMic`, so it can
replace the mic in a full pipeline; `Room.capture` does the same on a simulated clock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from shelfsight.media.mic import MicChunk
from shelfsight.media.pcm import (
    CHUNK_S,
    MIC_CHUNK_BYTES,
    MIC_RATE_HZ,
    SPEAKER_RATE_HZ,
    float_to_pcm16,
)
from shelfsight.media.speaker import PlayedCallback
from shelfsight.media.wav import load_mic_pcm

KEEP_PLAYED_S = 10.0  # played audio kept for echoes; trimmed to half when it grows past this
RESAMPLE_MARGIN_S = 0.01  # context around each rendered window, so soxr's edges fall outside
TAIL_LEVEL_DB = -8.0  # reverberant tail energy relative to the direct path
NOISE_LOOP_S = 7.0


@dataclass(frozen=True)
class RoomAcoustics:
    """The echo path. `echo_gain_db` is the echo's level relative to what was played (the
    whole impulse response's energy); `reverb_ms` the time the tail takes to decay by 60 dB;
    `speaker_clip_dbfs` soft-clips the played audio above that level, as a small laptop speaker
    driven hard does (the non-linear echo a linear canceller cannot model)."""

    echo_delay_ms: float = 60.0
    echo_gain_db: float = -9.0
    reverb_ms: float = 120.0
    noise_dbfs: float | None = None  # RMS of a steady pink-ish background noise
    speaker_clip_dbfs: float | None = None
    seed: int = 7


class Room:
    """Played audio in (any thread, via `on_played`), echo at the mic out (the mic's thread).

    The lock is held only to copy a played block into the timeline or a window out of it.
    """

    def __init__(self, acoustics: RoomAcoustics | None = None) -> None:
        self.acoustics = acoustics or RoomAcoustics()
        rng = np.random.default_rng(self.acoustics.seed)
        self._h = _impulse_response(self.acoustics, rng)
        self._noise = _pink_noise(self.acoustics.noise_dbfs, rng)
        self._lock = threading.Lock()
        self._played = np.zeros(0, np.float32)  # 24 kHz, sample 0 played at _t0
        self._t0: float | None = None

    def on_played(self, pcm24k: bytes, t_played: float) -> None:
        """A `SpeakerSink.on_played` callback: 24 kHz mono PCM16 heard from `t_played` on."""
        block = np.frombuffer(pcm24k, "<i2").astype(np.float32) / 32768
        with self._lock:
            if self._t0 is None or t_played - self._t0 > 2 * KEEP_PLAYED_S:  # first, or a jump
                self._played, self._t0 = np.zeros(0, np.float32), t_played
            start = round((t_played - self._t0) * SPEAKER_RATE_HZ)
            if start < 0:  # played before the first block we saw: outside the room's memory
                block, start = block[-start:], 0
            end = start + len(block)
            if end > len(self._played):
                self._played = np.concatenate(
                    [self._played, np.zeros(end - len(self._played), np.float32)]
                )
            self._played[start:end] = block
            if len(self._played) > KEEP_PLAYED_S * SPEAKER_RATE_HZ:
                cut = len(self._played) // 2
                self._played = self._played[cut:]
                self._t0 += cut / SPEAKER_RATE_HZ

    def echo(self, t_capture: float, n_samples: int) -> np.ndarray:
        """The echo alone at the mic (float32, 16 kHz) for `n_samples` from `t_capture` on."""
        taps = len(self._h)
        t_first = t_capture - self.acoustics.echo_delay_ms / 1000 - (taps - 1) / MIC_RATE_HZ
        x = self._played_16k(t_first, taps - 1 + n_samples)
        if self.acoustics.speaker_clip_dbfs is not None:
            clip = 10 ** (self.acoustics.speaker_clip_dbfs / 20)
            x = clip * np.tanh(x / clip)
        return np.convolve(x, self._h, mode="valid").astype(np.float32)

    def noise(self, t_capture: float, n_samples: int) -> np.ndarray:
        if self._noise is None:
            return np.zeros(n_samples, np.float32)
        idx = (round(t_capture * MIC_RATE_HZ) + np.arange(n_samples)) % len(self._noise)
        return self._noise[idx]

    def capture(self, t_capture: float, near_pcm16: bytes) -> bytes:
        """What the mic records at `t_capture`: the user's voice (16 kHz PCM16) + echo + noise."""
        near = np.frombuffer(near_pcm16, "<i2").astype(np.float32) / 32768
        return float_to_pcm16(
            near + self.echo(t_capture, len(near)) + self.noise(t_capture, len(near))
        )

    def _played_16k(self, t_first: float, n_samples: int) -> np.ndarray:
        """Played audio resampled to 16 kHz from `t_first` on; silence where nothing played."""
        margin = round(RESAMPLE_MARGIN_S * MIC_RATE_HZ)
        n_24k = (n_samples + 2 * margin) * SPEAKER_RATE_HZ // MIC_RATE_HZ + 3
        window = np.zeros(n_24k, np.float32)
        with self._lock:
            if self._t0 is not None:
                first = round((t_first - RESAMPLE_MARGIN_S - self._t0) * SPEAKER_RATE_HZ)
                lo, hi = max(first, 0), min(first + n_24k, len(self._played))
                if hi > lo:
                    window[lo - first : hi - first] = self._played[lo:hi]
        x = soxr.resample(window, SPEAKER_RATE_HZ, MIC_RATE_HZ)
        return x[margin : margin + n_samples]


def _impulse_response(acoustics: RoomAcoustics, rng: np.random.Generator) -> np.ndarray:
    """Direct path through a small speaker (little bass, soft top) plus an exponential tail."""
    direct = np.array([0.6, 1.0, -0.35, -0.25])  # weak lows, gentle roll-off
    n_tail = round(acoustics.reverb_ms / 1000 * MIC_RATE_HZ)
    h = np.zeros(max(len(direct), n_tail))
    h[: len(direct)] = direct
    if n_tail > 0:
        tail = rng.standard_normal(n_tail) * np.exp(-6.91 * np.arange(n_tail) / n_tail)
        tail[: min(n_tail - 1, round(0.003 * MIC_RATE_HZ))] = 0  # reflections come later
        h[:n_tail] += tail * np.sqrt(
            np.sum(direct**2) / np.sum(tail**2) * 10 ** (TAIL_LEVEL_DB / 10)
        )
    h *= 10 ** (acoustics.echo_gain_db / 20) / np.sqrt(np.sum(h**2))
    return h.astype(np.float32)


def _pink_noise(level_dbfs: float | None, rng: np.random.Generator) -> np.ndarray | None:
    """A loop of noise with a 1/f spectrum above 60 Hz (crowd, fridges), at `level_dbfs` RMS."""
    if level_dbfs is None:
        return None
    n = round(NOISE_LOOP_S * MIC_RATE_HZ)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / MIC_RATE_HZ)
    spectrum /= np.sqrt(np.maximum(f, 60.0))
    noise = np.fft.irfft(spectrum, n)
    return (noise / np.sqrt(np.mean(noise**2)) * 10 ** (level_dbfs / 20)).astype(np.float32)


def fan_out(*callbacks: PlayedCallback) -> PlayedCallback:
    """One `on_played` for a sink that calls each of `callbacks` in order (e.g. room, canceller)."""

    def played(pcm24k: bytes, t_played: float) -> None:
        for callback in callbacks:
            callback(pcm24k, t_played)

    return played


class RoomMic:
    """A `MicSource` in the simulated room: the user's voice plus the echo, on wall-clock time.

    Chunk n carries t_capture = start + n * 20 ms and is returned once that time has passed, as
    `WavMic` does. The voice (any WAV, resampled to 16 kHz) starts `voice_at_s` after start; the
    mic ends after `duration_s` (default: when the voice ends).
    """

    def __init__(
        self,
        room: Room,
        voice: Path | None = None,
        *,
        voice_at_s: float = 0.0,
        duration_s: float | None = None,
    ) -> None:
        if voice is None and duration_s is None:
            raise ValueError("RoomMic needs a voice file or a duration")
        self.name = f"simulated room ({voice or 'no voice'})"
        self.dropped_chunks = self.xruns = 0  # a simulation loses nothing
        self._room = room
        self._voice_path = voice
        self._voice_at_s = voice_at_s
        self._duration_s = duration_s
        self._voice = b""
        self._n_chunks = 0
        self._t0 = 0.0
        self._next = 0
        self._closed = False

    async def start(self) -> None:
        if self._voice_path is not None:
            self._voice = await asyncio.to_thread(load_mic_pcm, self._voice_path)
        duration_s = self._duration_s
        if duration_s is None:
            duration_s = self._voice_at_s + len(self._voice) / 2 / MIC_RATE_HZ
        self._n_chunks = round(duration_s / CHUNK_S)
        self._t0 = time.monotonic()

    async def read(self) -> MicChunk | None:
        if self._closed or self._next >= self._n_chunks:
            return None
        t_capture = self._t0 + self._next * CHUNK_S
        await asyncio.sleep(max(0.0, t_capture + CHUNK_S - time.monotonic()))
        near = voice_chunk(self._voice, self._next * CHUNK_S - self._voice_at_s)
        self._next += 1
        return MicChunk(self._room.capture(t_capture, near), t_capture)

    def close(self) -> None:
        self._closed = True


def voice_chunk(voice_pcm16: bytes, t_in_voice_s: float) -> bytes:
    """20 ms of 16 kHz PCM16 starting `t_in_voice_s` into the voice; silence outside it."""
    offset = round(t_in_voice_s * MIC_RATE_HZ) * 2
    lo, hi = max(0, offset), max(0, offset + MIC_CHUNK_BYTES)
    part = voice_pcm16[lo:hi]
    lead = b"\0" * (lo - offset)
    return (lead + part).ljust(MIC_CHUNK_BYTES, b"\0")[:MIC_CHUNK_BYTES]


@dataclass(frozen=True)
class Simulation:
    """One simulated run, each signal float32 at 16 kHz on the mic timeline."""

    voice: np.ndarray  # the user's voice alone
    echo: np.ndarray  # the echo alone
    mic: np.ndarray  # what the mic recorded: voice + echo + noise
    cleaned: np.ndarray  # what `process` returned


def simulate(
    room: Room,
    far_pcm24k: bytes,
    process: Callable[[bytes, float], bytes],
    on_played: PlayedCallback | None = None,
    *,
    voice_pcm16: bytes = b"",
    voice_at_s: float = 0.0,
    duration_s: float,
    t_start: float = 1000.0,
) -> Simulation:
    """Plays `far_pcm24k` (24 kHz PCM16, then silence) into `room` and through `on_played`,
    records the mic every 20 ms and passes it through `process(pcm16k, t_capture)` (as
    `EchoCanceller.process`), on a simulated clock: no
    waiting, so seconds of audio take a fraction of a second. Speaker block n is handed over
    just before mic chunk n (same start time) is processed: as little look-ahead as a real
    speaker gives (a device speaker hands its blocks over earlier).
    """
    block_bytes = round(SPEAKER_RATE_HZ * CHUNK_S) * 2
    parts: dict[str, list[np.ndarray]] = {"voice": [], "echo": [], "mic": [], "cleaned": []}
    for n in range(round(duration_s / CHUNK_S)):
        t = t_start + n * CHUNK_S
        block = far_pcm24k[n * block_bytes : (n + 1) * block_bytes].ljust(block_bytes, b"\0")
        room.on_played(block, t)
        if on_played is not None:
            on_played(block, t)
        near = voice_chunk(voice_pcm16, n * CHUNK_S - voice_at_s)
        mic = room.capture(t, near)
        cleaned = process(mic, t)
        for name, pcm in (("voice", near), ("mic", mic), ("cleaned", cleaned)):
            parts[name].append(np.frombuffer(pcm, "<i2").astype(np.float32) / 32768)
        parts["echo"].append(room.echo(t, len(near) // 2))
    return Simulation(**{name: np.concatenate(p) for name, p in parts.items()})
