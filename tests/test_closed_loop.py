"""Guided to the item by ear, in a closed loop (the short version of `bench.closed_loop`).

A virtual phone camera streams a large rendered shelf into `shelfsight run`; the stand-in's
model marks the item in the pictures it gets; a simulated shopper hears only the real stereo
mix of a PulseAudio sink and moves the camera with a person's reaction time and hand limits,
while a hand passes in front of the item. The shopper must end centred on the item, within
reach, at the chime. Timing figures are the bench's, not asserted here.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.closed_loop import Rig, make_scene, run_scene
from tests.support.pulse import missing_tools


@pytest.mark.skipif(
    sys.platform != "linux" or bool(missing_tools()),
    reason=f"PulseAudio cannot run here (missing: {', '.join(missing_tools()) or 'Linux'})",
)
def test_a_shopper_reaches_the_item_by_ear_while_a_hand_passes_in_front(tmp_path: Path) -> None:
    # A hand crosses the picture a second after the question, while the shopper turns to the
    # item (a third of a picture to the side, 1.1 m away).
    scene = replace(make_scene("passer-by", 0), pan=0.45, tilt=-0.2, width=1500)
    assert scene.passer is not None and scene.passer.kind == "hand"
    scene = replace(scene, passer=replace(scene.passer, t0_s=0.9, cross_s=0.9, y=0.5))
    with Rig.start() as rig:
        result = run_scene(scene, rig, tmp_path / "scene")
    assert result.covered_s > 0.1, "the hand never hid the item: not the hard case"
    assert result.outcome == "reached", (result.outcome, result.marks, result.lost)
    assert result.marks >= 1 and result.ticks_heard >= 3
