"""Where the guide's item is, as its sound says it: the guide makes it, the speaker's mix
plays it (so neither stage needs the other)."""

from __future__ import annotations

from dataclasses import dataclass

from shelfsight.core.phrases import Phrase


@dataclass(frozen=True)
class Guidance:
    t_capture: float  # the frame this cue is about (time.monotonic())
    pan: float  # -1 .. 1: item left .. right of centre
    tilt: float  # -1 .. 1: item above .. below centre
    width: float  # item width / picture width
    pitch_hz: float
    tick_hz: float
    on_target: bool
    hint: Phrase  # the few words for it ("a bit lower")


# The ways the model can point the camera to an item out of view (`point_camera`), as the
# (pan, tilt) a cue from that side has: -1 left / above, +1 right / below.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "up-left": (-0.7, -0.7),
    "up-right": (0.7, -0.7),
    "down-left": (-0.7, 0.7),
    "down-right": (0.7, 0.7),
}
