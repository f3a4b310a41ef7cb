"""Is the user talking in this mic chunk? One detector decides it for the whole program.

Its answer drives barge-in (stopping an answer the user talks over), the frame rate, the
view's meter and the link's "question pending" state, so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SPEECH_DBFS = -42.0  # local level above which a mic chunk counts as speech


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
