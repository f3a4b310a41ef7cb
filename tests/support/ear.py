"""A listener's ear on shelfsight's real stereo output: guide ticks and the chime, as heard.

`Listener` reads a PulseAudio sink's monitor (what a loudspeaker or headphones get, after every
mix) with `parec` at 24 kHz stereo in 20 ms pieces, on its own thread, and hands each piece to
`ToneAnalyser`, which knows only the README's rules: the guide's ticks are short beeps, from the
item's side (left/right loudness), higher in pitch when the item is above the centre (660 Hz
at the centre, an octave per half picture), and a steady two-tone chime (660 and 990 Hz
sounding together) means within reach. It tells a tick from speech or an earcon by what a
person hears: a short, isolated, pure tone, loud enough (earcons are 9 dB softer); the chime by
both of its notes, together and steady for 50 ms.

Each `Percept` carries when its sound arrived (time.monotonic() of the piece that ended it).
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

RATE_HZ = 24000
HOP = 120  # 5 ms
WINDOW = 600  # 25 ms: one tick
NFFT = 2048
BAND_HZ = (320.0, 1340.0)  # ticks: 660 Hz an octave either way
TICK_LEVEL = 0.3  # shelfsight's tick peak, of full scale (README: guidance is mixed at -10 dBFS)
CHIME_HOPS = 10  # 50 ms of both notes together


@dataclass(frozen=True)
class Percept:
    t_heard: float
    kind: str  # "tick" or "chime"
    pan: float = 0.0  # -1 left .. +1 right (ticks)
    tilt: float = 0.0  # -1 top .. +1 bottom, from the pitch (ticks)
    pitch_hz: float = 0.0


class ToneAnalyser:
    """Stereo PCM in (any piece size), percepts out. One thread."""

    def __init__(self) -> None:
        self._buf = np.zeros((0, 2), np.float32)
        self._window = np.hanning(WINDOW).astype(np.float32)
        freqs = np.fft.rfftfreq(NFFT, 1 / RATE_HZ)
        self._band = np.flatnonzero((freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1]))
        self._hz_per_bin = RATE_HZ / NFFT
        self._lobe = 8  # bins either side of a peak: the 25 ms window's main lobe
        self._all = np.flatnonzero((freqs >= 100) & (freqs <= 4000))
        # Loudness references: a tick from straight ahead, and one note of the chime.
        t = np.arange(WINDOW) / RATE_HZ
        tick = np.hanning(WINDOW) * np.sin(2 * np.pi * 660 * t) * TICK_LEVEL * math.sqrt(0.5)
        note = np.sin(2 * np.pi * 660 * t) * TICK_LEVEL * 0.5 * math.sqrt(0.5)
        self._tick_power = self._narrow(self._power(np.stack([tick, tick], axis=1))[0], 55)
        self._note_power = self._narrow(self._power(np.stack([note, note], axis=1))[0], 55)
        self._history: deque[tuple[float, float, float, float, float]] = deque(maxlen=17)
        self._chime_run = 0

    def feed(self, pcm: np.ndarray, t_arrived: float) -> list[Percept]:
        """`pcm`: (n, 2) float32 in [-1, 1] that arrived at `t_arrived`."""
        self._buf = np.concatenate([self._buf, pcm])
        out: list[Percept] = []
        n_hops = (len(self._buf) - WINDOW) // HOP + 1
        for k in range(max(0, n_hops)):
            end = WINDOW + k * HOP
            lag_s = (len(self._buf) - end) / RATE_HZ
            out += self._hop(self._buf[end - WINDOW : end], t_arrived - lag_s)
        if n_hops > 0:
            self._buf = self._buf[n_hops * HOP :]
        return out

    def _power(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Power spectra (both channels, left, right) of a (WINDOW, 2) piece."""
        left = np.abs(np.fft.rfft(window[:, 0] * self._window, NFFT)) ** 2
        right = np.abs(np.fft.rfft(window[:, 1] * self._window, NFFT)) ** 2
        return left + right, left, right

    def _narrow(self, power: np.ndarray, k: int) -> float:
        return float(power[k - self._lobe : k + self._lobe + 1].sum())

    def _hop(self, window: np.ndarray, t: float) -> list[Percept]:
        power, pl, pr = self._power(window)
        k = int(self._band[np.argmax(power[self._band])])
        lobe = slice(k - self._lobe, k + self._lobe + 1)
        narrow = float(power[lobe].sum())
        tonal = narrow / max(1e-12, float(power[self._all].sum()))
        angle = math.atan2(math.sqrt(pr[lobe].sum()), math.sqrt(pl[lobe].sum()))
        pan = angle / (math.pi / 4) - 1  # constant power: L = cos, R = sin of (pan + 1) pi / 4
        out = self._chime(power, t)
        self._history.append((t, narrow, tonal, self._peak_hz(power, k), pan))
        return out + self._tick()

    def _tick(self) -> list[Percept]:
        """A tick ends at the middle of the history: it must top its neighbours (±15 ms),
        stand alone (25 and 40 ms either side: a fifth of its power at most; speech, earcon
        notes and the chime last longer), be a pure tone and loud enough (the earcons are
        9 dB softer; a tick cut short by the mixer's block still counts)."""
        h = self._history
        if len(h) < 17:
            return []
        i = len(h) - 9
        t, narrow, tonal, pitch, pan = h[i]
        if narrow < 0.25 * self._tick_power or tonal < 0.6:
            return []
        if any(h[j][1] > narrow for j in range(i - 3, i + 4) if j != i):
            return []
        if any(h[j][1] > 0.2 * narrow for j in (i - 8, i - 5, i + 5, i + 8)):
            return []
        tilt = -math.log2(pitch / 660.0)
        return [Percept(t, "tick", max(-1.0, min(1.0, pan)), max(-1.0, min(1.0, tilt)), pitch)]

    def _chime(self, power: np.ndarray, t: float) -> list[Percept]:
        low = self._narrow(power, round(660.0 / self._hz_per_bin))
        high = self._narrow(power, round(990.0 / self._hz_per_bin))
        total = float(power[self._all].sum())
        both = min(low, high) > 0.1 * self._note_power and 0.4 < low / max(high, 1e-12) < 2.5
        both = both and (low + high) > 0.6 * total
        self._chime_run = self._chime_run + 1 if both else 0
        if self._chime_run == CHIME_HOPS:
            return [Percept(t, "chime")]
        return []

    def _peak_hz(self, power: np.ndarray, k: int) -> float:
        a, b, c = (math.log(max(1e-20, float(power[j]))) for j in (k - 1, k, k + 1))
        offset = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
        return (k + max(-0.5, min(0.5, offset))) * self._hz_per_bin


class Listener:
    """`parec` on `source` of the PulseAudio server in `env`, analysed as it arrives."""

    def __init__(self, env: dict[str, str], source: str = "answer.monitor") -> None:
        args = ["parec", "-d", source, f"--rate={RATE_HZ}", "--channels=2", "--format=s16le"]
        self._proc = subprocess.Popen(
            [*args, "--raw", "--latency-msec=20"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._analyser = ToneAnalyser()
        self._lock = threading.Lock()
        self._percepts: list[Percept] = []
        self.seconds_heard = 0.0
        self._thread = threading.Thread(target=self._pump, name="ear", daemon=True)
        self._thread.start()

    def percepts(self, since: float = 0.0) -> list[Percept]:
        with self._lock:
            return [p for p in self._percepts if p.t_heard >= since]

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        pending = b""
        while chunk := self._proc.stdout.read1(1920):  # up to 20 ms
            t = time.monotonic()
            pending += chunk
            usable = len(pending) // 4 * 4
            pcm = np.frombuffer(pending[:usable], "<i2").astype(np.float32).reshape(-1, 2) / 32768
            pending = pending[usable:]
            found = self._analyser.feed(pcm, t)
            with self._lock:
                self._percepts += found
                self.seconds_heard += len(pcm) / RATE_HZ

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._thread.join(timeout=3)
