"""How often a frame goes out: full rate while someone talks or an answer plays, slower otherwise.

Every frame sent costs tokens on later turns, and a picture of an idle shelf adds nothing; the
first words of a question already go out with a fresh frame because the sampler wakes at once
when its interval shrinks. Pure policy: the conversation applies it to a `RateControl`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

IDLE_AFTER_S = 3.0  # frames slow down this long after the last speech


class RateControl(Protocol):
    """A frame source whose pace (seconds between frames) and weight (`light`: small
    pictures, for a slow upload) can change while it runs (`FrameSampler`)."""

    interval_s: float
    light: bool


@dataclass(frozen=True)
class FrameRatePolicy:
    fps: float = 1.0
    idle_fps: float | None = None  # None: always `fps`
    idle_after_s: float = IDLE_AFTER_S

    def interval_s(self, *, busy: bool, t_last_speech: float | None, now: float) -> float:
        """Seconds between frames; `busy`: an answer plays or the talk key is down."""
        if self.idle_fps is None:
            return 1.0 / self.fps
        recent = t_last_speech is not None and now - t_last_speech < self.idle_after_s
        return 1.0 / (self.fps if busy or recent else self.idle_fps)
