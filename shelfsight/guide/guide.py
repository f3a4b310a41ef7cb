"""The guide: a marked item followed frame by frame, turned into cues and a few words.

`Guide.mark` starts (or restarts) guiding from a box the model gave for a frame; `step` takes
each following camera frame and says what to play and say. When the tracker has lost the item
for `LOST_S` the guide says so and asks for a fresh box (`ask_again`), never more than once
every `ASK_EVERY_S`; `stop` ends guiding. Words come at most every `WORDS_EVERY_S`, when the
advice changes. One thread: a live run calls it from the guide's worker thread (tracking is
CPU work that must not run on the event loop); `mark` and `stop` are handed to that thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shelfsight.core.guidance import Guidance
from shelfsight.core.phrases import Phrase
from shelfsight.guide.box import PixelBox, to_pixels
from shelfsight.guide.guidance import guidance_for
from shelfsight.guide.tracker import TemplateTracker, Track

LOST_S = 1.0
ASK_EVERY_S = 5.0
WORDS_EVERY_S = 3.0


@dataclass(frozen=True)
class Step:
    cue: Guidance | None  # None: nothing to play (not guiding, or the item is lost)
    track: Track | None
    say: Phrase | None = None
    ask_again: bool = False  # send the model a fresh frame and ask where the item is


@dataclass
class GuideStats:
    marks: int = 0
    dropouts: int = 0  # times the tracker lost the item, however briefly
    recovered: int = 0  # times the tracker found it again by itself after a dropout
    lost: int = 0  # dropouts that lasted LOST_S or more (the user is told)
    asks: int = 0  # fresh boxes asked of the model


class Guide:
    def __init__(self) -> None:
        self._tracker = TemplateTracker()
        self.name: str | None = None  # None: not guiding
        self.stats = GuideStats()
        self._lost_since: float | None = None
        self._lost_told = False
        self._t_asked = -1e9
        self._t_words = -1e9
        self._last_words: Phrase | None = None

    @property
    def active(self) -> bool:
        return self.name is not None

    def mark(self, box_2d: tuple[float, float, float, float], name: str, image: np.ndarray) -> None:
        """Follow the item at `box_2d` (checked, see guide.box) in `image`."""
        height, width = image.shape[:2]
        self._tracker.start(image, to_pixels(box_2d, width, height))
        self.name = name
        self.stats.marks += 1
        self._lost_since, self._lost_told, self._last_words = None, False, None

    def stop(self) -> None:
        self.name = None

    def step(self, image: np.ndarray, t_capture: float, now: float) -> Step:
        if self.name is None:
            return Step(None, None)
        track = self._tracker.update(image)
        if track.lost:
            return self._while_lost(track, now)
        if self._lost_since is not None:
            self.stats.recovered += 1
            self._lost_since, self._lost_told = None, False
        height, width = image.shape[:2]
        cue = guidance_for(track.box, width, height, t_capture)
        return Step(cue, track, say=self._words(cue.hint, now))

    def _while_lost(self, track: Track, now: float) -> Step:
        if self._lost_since is None:
            self._lost_since = now
            self.stats.dropouts += 1
        if self._lost_told or now - self._lost_since < LOST_S:
            return Step(None, track)
        self._lost_told = True
        self.stats.lost += 1
        ask = now - self._t_asked >= ASK_EVERY_S
        if ask:
            self._t_asked = now
            self.stats.asks += 1
        lost = Phrase("guide_lost", {"item": self.name})
        return Step(None, track, say=lost, ask_again=ask)

    def _words(self, hint: Phrase, now: float) -> Phrase | None:
        if hint == self._last_words or now - self._t_words < WORDS_EVERY_S:
            return None
        self._last_words, self._t_words = hint, now
        return hint


def truth_error_px(track: Track, truth: PixelBox) -> float:
    """Distance between tracked and true centres, in pixels (benchmarks, tests)."""
    return float(np.hypot(track.box.cx - truth.cx, track.box.cy - truth.cy))
