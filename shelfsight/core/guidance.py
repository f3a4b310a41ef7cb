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
