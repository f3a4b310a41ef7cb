"""Speech as the stand-in hears and speaks it: an energy voice detector and synthetic speech.

Both work on mono PCM16 little-endian bytes and count time in samples, never wall time, so a
client may stream audio faster than real time and still get the same turns.
"""

from __future__ import annotations

import numpy as np


def synth_speech_pcm16(
    duration_s: float, rate_hz: int, level_dbfs: float = -20.0, f0_hz: float = 140.0
) -> bytes:
    """Deterministic speech-like mono PCM16: harmonics of `f0_hz` under a ~3.5 Hz syllable
    envelope, scaled to an RMS of `level_dbfs`. Loud enough for any energy VAD by default."""
    t = np.arange(int(duration_s * rate_hz)) / rate_hz
    if not len(t):
        return b""
    voice = sum(np.sin(2 * np.pi * f0_hz * k * t) / k for k in range(1, 6))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t)
    fade = np.clip(np.minimum(t, t[-1] - t) / 0.01, 0.0, 1.0)  # 10 ms ramps: no clicks
    wave = voice * syllables * fade
    rms = float(np.sqrt(np.mean(wave**2))) or 1.0
    scaled = wave / rms * 32768 * 10 ** (level_dbfs / 20)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


class EnergyVad:
    """Finds speech start and end in mono PCM16 from fixed-window RMS.

    A state flips only after a run of windows that argue for it: `speech_ms` of loud windows
    to start, `silence_ms` of quiet ones to end, like the service's own detector.
    """

    def __init__(
        self, rate_hz: int, threshold_dbfs: float, window_ms: int, speech_ms: int, silence_ms: int
    ) -> None:
        self.rate_hz = rate_hz
        self._window_ms = window_ms
        self._window_bytes = 2 * rate_hz * window_ms // 1000
        self._threshold = 32768 * 10 ** (threshold_dbfs / 20)
        self._speech_ms, self._silence_ms = speech_ms, silence_ms
        self._pending = bytearray()  # less than one window, kept for the next chunk
        self.in_speech = False
        self._run_ms = 0  # consecutive ms that argue for leaving the current state

    def feed(self, pcm: bytes) -> list[str]:
        """Returns "start"/"end" transitions found in this chunk, in order."""
        self._pending += pcm
        transitions = []
        while len(self._pending) >= self._window_bytes:
            window = np.frombuffer(bytes(self._pending[: self._window_bytes]), "<i2")
            del self._pending[: self._window_bytes]
            loud = float(np.sqrt(np.mean(window.astype(np.float64) ** 2))) >= self._threshold
            self._run_ms = self._run_ms + self._window_ms if loud != self.in_speech else 0
            needed = self._silence_ms if self.in_speech else self._speech_ms
            if self._run_ms >= needed:
                self.in_speech, self._run_ms = not self.in_speech, 0
                transitions.append("start" if self.in_speech else "end")
        return transitions

    def force_end(self) -> bool:
        """audioStreamEnd: ends pending speech at once; True if there was any."""
        was_speaking, self.in_speech, self._run_ms = self.in_speech, False, 0
        self._pending.clear()
        return was_speaking
