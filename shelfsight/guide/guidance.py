"""Where the item is, as the sound the user hears: a pure mapping, frame by frame.

The sound comes from where the item is, so turning towards the sound centres it: `pan` is the
item's horizontal offset from the picture's centre (-1 left edge, +1 right edge), pitch rises
when the item is above the centre and falls below it, the tick rate rises as the item nears
the centre, and `on_target` (a distinct sound) means centred and large enough to reach for
(its width at least `REACH_WIDTH` of the picture) and confirmed by the model (see guide.guide:
until then a centred, near item plays the fastest ticks). Once on (`was_on`), it stays on while
the item still covers the picture's centre and is `HOLD_WIDTH` wide: a chime that flickers
off after a fifth of a second as the hand moves is not heard as "stop" (the closed loop
caught a shopper walking on past one). `hint` is the few words said now and then (a phrase:
put into the user's language where it is shown and said). An item outside the picture
(remembered, or pointed at) has its offsets clipped to the edge: the ticks come from that
side, slowest.
"""

from __future__ import annotations

from shelfsight.core.guidance import Guidance
from shelfsight.core.phrases import Phrase
from shelfsight.guide.box import PixelBox

BASE_PITCH_HZ = 660.0
PITCH_OCTAVES = 1.0  # item at the top edge: one octave above BASE_PITCH_HZ; bottom: below
SLOW_TICK_HZ = 2.0  # item at a corner
FAST_TICK_HZ = 12.0  # item centred
CENTRE = 0.12  # |offset| under this (fraction of half the picture) counts as centred
REACH_WIDTH = 0.25
HOLD_WIDTH = 0.2


def guidance_for(
    box: PixelBox,
    width: int,
    height: int,
    t_capture: float,
    *,
    confirmed: bool = True,
    was_on: bool = False,
) -> Guidance:
    pan = _clip((box.cx - width / 2) / (width / 2))
    tilt = _clip((box.cy - height / 2) / (height / 2))
    size = box.w / width
    distance = min(1.0, (pan * pan + tilt * tilt) ** 0.5 / 2**0.5)
    tick_hz = FAST_TICK_HZ - (FAST_TICK_HZ - SLOW_TICK_HZ) * distance
    centred = abs(pan) < CENTRE and abs(tilt) < CENTRE
    covers_centre = box.x <= width / 2 <= box.x + box.w and box.y <= height / 2 <= box.y + box.h
    held = was_on and covers_centre and size >= HOLD_WIDTH
    return Guidance(
        t_capture=t_capture,
        pan=pan,
        tilt=tilt,
        width=size,
        pitch_hz=BASE_PITCH_HZ * 2 ** (-tilt * PITCH_OCTAVES),
        tick_hz=tick_hz,
        on_target=confirmed and ((centred and size >= REACH_WIDTH) or held),
        hint=_hint(pan, tilt, centred, size, confirmed),
    )


def _hint(pan: float, tilt: float, centred: bool, size: float, confirmed: bool) -> Phrase:
    if centred and size >= REACH_WIDTH:
        return Phrase("hint_reach" if confirmed else "hint_hold")
    if centred:
        return Phrase("hint_closer")
    if abs(pan) >= abs(tilt):
        side = "right" if pan > 0 else "left"
        return Phrase(f"hint_bit_{side}" if abs(pan) < 0.4 else f"hint_{side}")
    way = "lower" if tilt > 0 else "higher"
    return Phrase(f"hint_bit_{way}" if abs(tilt) < 0.4 else f"hint_{way}")


def _clip(value: float) -> float:
    return max(-1.0, min(1.0, value))
