"""The template tracker keeps to the marked item when a look-alike (same colour, same size,
another name on the label) stands right next to it (issue 23; figures in bench.trackers)."""

from __future__ import annotations

import pytest

from shelfsight.guide.box import PixelBox
from shelfsight.guide.tracker import TemplateTracker
from tests.support.guide_scene import render


def centred_in(box: PixelBox, area: PixelBox | None) -> bool:
    return (
        area is not None
        and area.x <= box.cx <= area.x + area.w
        and area.y <= box.cy <= area.y + area.h
    )


@pytest.mark.parametrize("scenario", ["twin_pan", "twin_pass"])
def test_the_tracker_never_claims_the_look_alike(scenario: str) -> None:
    # twin_pan: the item leaves the view with its twin where it was, then comes back;
    # twin_pass: a shopper walks right in front of the item, then of its twin. 10 fps: quicker.
    frames = list(render(scenario, fps=10))
    tracker = TemplateTracker()
    tracker.start(frames[0].image, frames[0].truth)
    claimed = [(f, tracker.update(f.image)) for f in frames[1:]]
    claimed = [(f, t.box) for f, t in claimed if not t.lost]
    assert not [f for f, box in claimed if centred_in(box, f.lookalike)]  # main's: 17-117
    on_item = sum(f.visible and centred_in(box, f.truth) for f, box in claimed)
    assert on_item >= 0.7 * sum(f.visible for f in frames[1:])  # it still follows the item
    assert claimed[-1][0] is frames[-1]  # and has it again at the end, after losing it
