"""Spoken status through the platform's speech engine, rendered to PCM for our own speaker.

The engine writes a WAV (macOS `say`, `espeak-ng`/`espeak`, `pico2wave`); it is never let
speak to the system speaker itself, because the mic would hear it and the model would take it
for the user. The PCM goes through the speaker sink like an answer, so it is in the echo
canceller's reference. `speech-dispatcher`'s `spd-say` cannot write a file, so it is not used.

`render` blocks (a child process, about 0.1 s for a sentence): call it on a worker thread.
Results are cached by text.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from shelfsight.media.pcm import SPEAKER_RATE_HZ, float_to_pcm16

log = logging.getLogger(__name__)

RENDER_TIMEOUT_S = 5.0
STATUS_PEAK_DBFS = -9.0  # a little under the answer's speech peaks
CACHE_SIZE = 32
INSTALL_HINT = "spoken status needs a speech engine: install espeak-ng (apt install espeak-ng)"


@dataclass(frozen=True)
class Engine:
    name: str  # "say", "espeak-ng", "espeak" or "pico2wave"
    path: str


def find_engine() -> Engine | None:
    """The first speech engine on this machine that can write a file, or None."""
    names = ["say"] if sys.platform == "darwin" else []
    names += ["espeak-ng", "espeak", "pico2wave"]
    for name in names:
        if path := shutil.which(name):
            return Engine(name, path)
    return None


class StatusVoice:
    """Renders short English sentences to 24 kHz mono PCM16 at STATUS_PEAK_DBFS; thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def render(self, text: str) -> bytes | None:
        """The sentence as PCM (cached), or None if the engine failed (logged once per text)."""
        with self._lock:
            if text in self._cache:
                return self._cache[text]
        try:
            pcm = _normalise(self._run_engine(text))
        except (OSError, subprocess.SubprocessError, wave.Error, EOFError, ValueError) as exc:
            log.warning("speech engine %s failed: %s", self.engine.name, exc)
            return None
        with self._lock:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[text] = pcm
        return pcm

    def _run_engine(self, text: str) -> tuple[np.ndarray, int]:
        """(mono float samples, rate) of the engine's WAV for `text`."""
        if self.engine.name.startswith("espeak"):
            cmd = [self.engine.path, "-v", "en-us", "-s", "165", "--stdout", "--", text]
            done = subprocess.run(cmd, capture_output=True, timeout=RENDER_TIMEOUT_S, check=True)
            return _read_wav(io.BytesIO(done.stdout))
        with tempfile.TemporaryDirectory(prefix="shelfsight-tts-") as folder:
            out = Path(folder) / "status.wav"
            if self.engine.name == "say":
                cmd = [self.engine.path, "-o", str(out), "--file-format=WAVE"]
                cmd += [f"--data-format=LEI16@{SPEAKER_RATE_HZ}", "--", text]
            else:  # pico2wave
                cmd = [self.engine.path, "-l", "en-US", "-w", str(out), "--", text]
            subprocess.run(cmd, capture_output=True, timeout=RENDER_TIMEOUT_S, check=True)
            with out.open("rb") as f:
                return _read_wav(f)


def _read_wav(f: io.BufferedIOBase | io.BytesIO) -> tuple[np.ndarray, int]:
    with wave.open(f, "rb") as w:  # type: ignore[arg-type]
        if w.getsampwidth() != 2:
            raise ValueError(f"{w.getsampwidth() * 8}-bit speech output")
        channels, rate = w.getnchannels(), w.getframerate()
        # espeak-ng writes 0xFFFFFFFF as the length to stdout: read what is there.
        data = w.readframes(w.getnframes() if w.getnframes() < 2**31 else 2**31)
    x = np.frombuffer(data[: len(data) - len(data) % (2 * channels)], "<i2")
    return x.reshape(-1, channels).mean(axis=1).astype(np.float32) / 32768, rate


def _normalise(samples_rate: tuple[np.ndarray, int]) -> bytes:
    """Leading and trailing silence cut, resampled to 24 kHz, peak at STATUS_PEAK_DBFS."""
    x, rate = samples_rate
    if not x.size:
        raise ValueError("the speech engine wrote no audio")
    loud = np.flatnonzero(np.abs(x) > 0.01 * (float(np.max(np.abs(x))) or 1.0))
    if not loud.size:
        raise ValueError("the speech engine wrote only silence")
    margin = rate // 50  # keep 20 ms either side: the engine's own fade in and out
    x = x[max(0, loud[0] - margin) : loud[-1] + margin]
    if rate != SPEAKER_RATE_HZ:
        x = soxr.resample(x, rate, SPEAKER_RATE_HZ).astype(np.float32)
    peak = float(np.max(np.abs(x))) or 1.0
    return float_to_pcm16(x * np.float32(10 ** (STATUS_PEAK_DBFS / 20) / peak))
