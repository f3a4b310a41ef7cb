"""Spoken status through the platform's speech engine, rendered to PCM for our own speaker.

The engine writes a WAV (macOS `say`, `espeak-ng`/`espeak`, `pico2wave`); it is never let
speak to the system speaker itself, because the mic would hear it and the model would take it
for the user. The PCM goes through the speaker sink like an answer, so it is in the echo
canceller's reference. `speech-dispatcher`'s `spd-say` cannot write a file, so it is not used.

Each speaks one language, with the engine's voice for it (`voice_for`): espeak-ng's
`-v de`, macOS `say -v Anna` (from the voices `say -v '?'` lists), pico2wave's `-l de-DE`
(English, German, French, Spanish and Italian only). `render` blocks (a child process, about
0.1 s for a sentence): call it on a worker thread. Results are cached by text.
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
from collections.abc import Callable
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


PICO_LANGUAGES = {"en": "en-US", "de": "de-DE", "fr": "fr-FR", "es": "es-ES", "it": "it-IT"}
PICO_REGIONS = {"en-GB"}  # besides PICO_LANGUAGES' own
ENGLISH_VOICE = {"espeak-ng": "en-us", "espeak": "en-us", "say": "", "pico2wave": "en-US"}


def voice_for(
    engine: Engine, tag: str, listing: Callable[[list[str]], str] | None = None
) -> str | None:
    """The engine's voice for the language of BCP-47 `tag` (its region preferred: "pt-BR"),
    or None when it has none. `listing` runs the engine's voice listing (injected in tests;
    the real engine otherwise); "" means the engine's default voice."""
    run = listing or _listing
    language, _, region = tag.replace("_", "-").partition("-")
    language = {"no": "nb", "nn": "nb"}.get(language.lower(), language.lower())
    region = region.split("-")[0].upper()
    if engine.name == "pico2wave":
        wanted = f"{language}-{region}"
        return wanted if wanted in PICO_REGIONS else PICO_LANGUAGES.get(language)
    if engine.name == "say":
        return _say_voice(run([engine.path, "-v", "?"]), language, region)
    return _espeak_voice(run([engine.path, f"--voices={language}"]), language, region)


def _say_voice(listing: str, language: str, region: str) -> str | None:
    """From `say -v '?'` lines ("Anna   de_DE    # Hallo! Ich heiße Anna."): the first voice
    of the language and region, else of the language."""
    found: list[tuple[str, str]] = []  # (name, locale)
    for line in listing.splitlines():
        head = line.split("#")[0].split()
        if len(head) >= 2 and "_" in head[-1]:
            found.append((" ".join(head[:-1]), head[-1]))
    for want in (f"{language}_{region}", f"{language}_"):
        for name, locale in found:
            if locale == want or (want.endswith("_") and locale.startswith(want)):
                return name
    return None


def _espeak_voice(listing: str, language: str, region: str) -> str | None:
    """From `espeak-ng --voices=de`: the language name of its best voice for the region
    ("pt-br"), else for the language; MBROLA voices are left out (they need mbrola)."""
    found: list[tuple[int, str]] = []  # (priority, language name)
    for line in listing.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5 and cols[0].isdigit() and not cols[4].startswith("mb/"):
            found.append((int(cols[0]), cols[1]))
    wanted = [f"{language}-{region}".lower(), language] if region else [language]
    for want in wanted:
        best = sorted(p for p in found if p[1] == want or p[1].startswith(want + "-"))
        if best:
            return best[0][1]
    return None


def _listing(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=RENDER_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.decode(errors="replace")


class StatusVoice:
    """Renders short sentences to 24 kHz mono PCM16 at STATUS_PEAK_DBFS with the engine's
    `voice` (see `voice_for`; None: its English voice); thread-safe."""

    def __init__(self, engine: Engine, voice: str | None = None) -> None:
        self.engine = engine
        self.voice = ENGLISH_VOICE.get(engine.name, "") if voice is None else voice
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
            cmd = [self.engine.path, "-v", self.voice, "-s", "165", "--stdout", "--", text]
            done = subprocess.run(cmd, capture_output=True, timeout=RENDER_TIMEOUT_S, check=True)
            return _read_wav(io.BytesIO(done.stdout))
        with tempfile.TemporaryDirectory(prefix="shelfsight-tts-") as folder:
            out = Path(folder) / "status.wav"
            if self.engine.name == "say":
                cmd = [self.engine.path, "-o", str(out), "--file-format=WAVE"]
                cmd += ["-v", self.voice] if self.voice else []
                cmd += [f"--data-format=LEI16@{SPEAKER_RATE_HZ}", "--", text]
            else:  # pico2wave
                cmd = [self.engine.path, "-l", self.voice, "-w", str(out), "--", text]
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
