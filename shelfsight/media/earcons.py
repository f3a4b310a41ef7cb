"""Earcons: short tones that tell a listener what happened without words.

Generated here (no sound files to ship), as 24 kHz mono PCM16 for the speaker sink, so a cue
goes through the same jitter buffer and echo-canceller reference as an answer. Each cue is a
few soft sine notes (with a quieter octave above for warmth) under a raised-cosine attack and
an exponential decay, under 300 ms, peaking at `peak_dbfs` (default -20 dBFS: well below the
answer's speech, which peaks near -6). Pitch contour tells cues apart: rising means something
started or came back, falling means something stopped or was lost. Pure; any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from shelfsight.media.pcm import SPEAKER_RATE_HZ, float_to_pcm16

DEFAULT_PEAK_DBFS = -20.0
MAX_CUE_S = 0.3


class Earcon(StrEnum):
    READY = "ready"  # connected and listening
    TALK_DOWN = "talk_down"  # push-to-talk: the key started a turn
    TALK_UP = "talk_up"  # push-to-talk: the key ended it
    HEARD = "heard"  # the end of the user's question was heard
    THINKING = "thinking"  # no answer yet: a soft tick, repeated
    RECONNECTING = "reconnecting"
    BACK = "back"  # the connection is back
    CAMERA_LOST = "camera_lost"
    CAMERA_BACK = "camera_back"
    ERROR = "error"  # the session is ending with an error


@dataclass(frozen=True)
class Note:
    hz: tuple[float, ...]  # one frequency, or several sounded together (a chord)
    ms: float
    gain: float = 1.0  # relative to the cue's peak


def _n(ms: float, *hz: float, gain: float = 1.0) -> Note:
    return Note(hz, ms, gain)


# Notes play one after another; every cue's total stays under 300 ms.
NOTES: dict[Earcon, tuple[Note, ...]] = {
    Earcon.READY: (_n(90, 659.3), _n(150, 987.8)),  # E5 -> B5, a rising fifth
    Earcon.TALK_DOWN: (_n(70, 880.0),),  # one high blip
    Earcon.TALK_UP: (_n(70, 587.3),),  # one lower blip
    Earcon.HEARD: (_n(60, 784.0), _n(110, 1046.5)),  # G5 -> C6, quick and bright
    Earcon.THINKING: (_n(30, 1318.5, gain=0.35),),  # a faint tick
    Earcon.RECONNECTING: (_n(80, 784.0), _n(80, 659.3), _n(110, 523.3)),  # falling
    Earcon.BACK: (_n(70, 523.3), _n(70, 659.3), _n(130, 784.0)),  # rising
    Earcon.CAMERA_LOST: (_n(110, 440.0), _n(160, 329.6)),  # low, a falling fourth
    Earcon.CAMERA_BACK: (_n(90, 329.6), _n(150, 440.0)),  # low, a rising fourth
    Earcon.ERROR: (_n(280, 233.1, 246.9, 349.2),),  # low and dissonant
}


def peak_dbfs_for(volume: float) -> float:
    """`--cue-volume` 0-1 as a peak level: 1 is -6 dBFS (as loud as speech peaks), the default
    0.2 about -20 dBFS, 0 silence."""
    if volume <= 0:
        return -120.0
    return -6.0 + 20 * float(np.log10(min(volume, 1.0)))


def synth(cue: Earcon, peak_dbfs: float = DEFAULT_PEAK_DBFS) -> bytes:
    """The cue as 24 kHz mono PCM16; its loudest note peaks at `peak_dbfs`."""
    notes = NOTES[cue]
    x = np.concatenate([_note(n) for n in notes])
    loudest = max(n.gain for n in notes)
    x *= 10 ** (peak_dbfs / 20) * loudest / (float(np.max(np.abs(x))) or 1.0)
    return float_to_pcm16(x.astype(np.float32))


def _note(note: Note) -> np.ndarray:
    """Sines with a soft octave above, a 5 ms raised-cosine attack, an exponential decay and a
    4 ms release (no click at either end)."""
    n = int(SPEAKER_RATE_HZ * note.ms / 1000)
    t = np.arange(n) / SPEAKER_RATE_HZ
    tone = np.zeros(n)
    for f in note.hz:
        tone += np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t)
    envelope = np.exp(-t / (note.ms / 1000 / 3))  # about 26 dB down by the note's end
    attack = min(n, int(0.005 * SPEAKER_RATE_HZ))
    envelope[:attack] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    release = min(n, int(0.004 * SPEAKER_RATE_HZ))
    envelope[n - release :] *= np.linspace(1, 0, release)
    return tone * envelope * note.gain


class EarconBank:
    """Every cue rendered once at one level; `pcm(cue)` is then a dictionary lookup."""

    def __init__(self, peak_dbfs: float = DEFAULT_PEAK_DBFS) -> None:
        self.peak_dbfs = peak_dbfs
        self._pcm = {cue: synth(cue, peak_dbfs) for cue in Earcon}

    def pcm(self, cue: Earcon) -> bytes:
        return self._pcm[cue]
