"""Guide mode as a user runs it: `shelfsight run` on a rendered shelf video, the question typed,
the stand-in's model marking the bag over the real SDK and TLS, and the guidance heard.

The video's camera path is known frame by frame (tests/support/guide_scene.py), and the
recording's `guide_cue` events carry the camera frame each cue is about, so every recorded
cue is checked against where the bag really was in that frame.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from shelfsight.guide.box import to_box_2d
from shelfsight.guide.worker import ask_again_text
from shelfsight.standin import SILENT_PCM, ScriptedAnswer, ScriptedCall, StandIn
from tests.support.guide_cli import (
    ANSWER_PCM,
    ITEM,
    QUESTION,
    GuidedRun,
    cue_seen_at,
    directions,
    guide_config,
    sides_cued,
)
from tests.support.guide_scene import OUT, write_video
from tests.support.pulse import missing_tools, pulse_server


@pytest.mark.skipif(
    sys.platform != "linux" or bool(missing_tools()),
    reason=f"PulseAudio cannot run here (missing: {', '.join(missing_tools()) or 'Linux'})",
)
def test_guided_to_the_bag_by_ear_through_a_real_sound_server(tmp_path: Path) -> None:
    frames = write_video("ask_and_pan", tmp_path / "shelf.avi")
    with pulse_server() as pa, StandIn.start_in_thread(guide_config(frames[0])) as standin:
        heard = pa.start_record("answer.monitor", 24000, channels=2)
        run = GuidedRun(standin, tmp_path / "shelf.avi", "default", tmp_path, pa.env)
        run.ask_once_connected()
        run.wait_for("guiding start", lambda ev: any(e["type"] == "guide" for e in ev))
        # 6.3 s: 0.8 s after the pan ends, 2.7 s before the video loops back to its start
        run.wait_for("the end of the pan", lambda ev: cue_seen_at(ev, 190))
        out, events = run.finish()
        played = heard.stop()
    responses = [r for c in standin.server.connections for r in c.tool_responses()]
    assert [r["response"]["status"] for r in responses] == ["guiding"]
    right, judged = directions(events, frames)
    assert judged >= 10 and right == judged, f"{right} of {judged} cue directions right"
    assert sides_cued(events, frames) == {"left", "right"}, "cues on both sides of the pan"
    # What came out of the loudspeaker: ticks from the right while the bag was right of the
    # picture's centre, from the left at the end of the pan (it ends left of centre).
    left, right_ch = played[:, 0], played[:, 1]
    block = 2400  # 100 ms
    n = len(left) // block
    l_energy = (left[: n * block].reshape(n, block) ** 2).sum(axis=1)
    r_energy = (right_ch[: n * block].reshape(n, block) ** 2).sum(axis=1)
    ticking = np.flatnonzero(np.abs(l_energy - r_energy) > 0.2 * (l_energy + r_energy) + 1e-3)
    assert len(ticking) >= 20, "no panned guidance heard"
    first, last = ticking[: len(ticking) // 5], ticking[-len(ticking) // 5 :]
    assert (r_energy[first] > l_energy[first]).all(), "the first ticks were not on the right"
    assert (l_energy[last] > r_energy[last]).all(), "the last ticks were not on the left"
    assert "guiding you to the gluten-free bread" in out


def test_a_lost_bag_is_told_asked_for_again_with_a_new_picture_and_stop_ends_guiding(
    tmp_path: Path,
) -> None:
    frames = write_video("ask_then_hidden", tmp_path / "shelf.avi")
    where = ScriptedAnswer("(re-ask)", "Turn back to the right.", ANSWER_PCM)
    mark = ScriptedCall("mark_item", {"box_2d": to_box_2d(frames[0].truth, *OUT), "name": ITEM})

    def model(text: str | None, picture: bytes | None) -> ScriptedAnswer | None:
        """The check before the chime: the camera is held still, so the bag is where it was."""
        if text is not None and text.startswith("Guide check"):
            return ScriptedAnswer(text, "", SILENT_PCM, tool_calls=(mark,))
        return None

    config = replace(guide_config(frames[0], (ask_again_text(ITEM), where)), model=model)
    with StandIn.start_in_thread(config) as standin:
        run = GuidedRun(standin, tmp_path / "shelf.avi", str(tmp_path / "out.wav"), tmp_path, {})
        run.ask_once_connected()
        back = next(n for n, f in enumerate(frames) if n > 110 and f.visible) + 30
        run.wait_for("the camera back on the bag", lambda ev: cue_seen_at(ev, back))
        run.type("stop")
        run.wait_for("guiding stopped", lambda ev: any(e.get("action") == "stop" for e in ev))
        out, events = run.finish()
    guide = [e for e in events if e["type"] == "guide"]
    told = [(e["action"], e.get("why")) for e in guide]
    # Checked and confirmed before the chime; lost (confirmation taken back); checked again.
    assert told[:3] == [("start", None), ("ask_again", "confirm"), ("confirmed", None)]
    assert ("ask_again", "lost") in told and told[-1] == ("stop", "you typed stop")
    assert ("ask_again", "confirm") in told[told.index(("ask_again", "lost")) :], told
    assert "I've lost the gluten-free bread; hold still" in out
    connection = standin.server.connections[0]
    asked = [q for q in connection.questions() if not q.startswith("Guide check")]
    assert asked == [QUESTION, ask_again_text(ITEM)], "'stop' stayed local"
    pictures = [e.data for e in connection.received("video") if e.text == "client_content"]
    questions = connection.questions()  # each went with its picture, in order
    assert len(pictures) == len(questions)
    lost = questions.index(ask_again_text(ITEM))
    assert pictures[lost] != pictures[0], "the re-ask went with a fresh picture (the hand)"
    cues = [e for e in events if e["type"] == "guide_cue"]
    assert any(e["lost"] for e in cues) and not cues[-1]["lost"], "lost, then found again"
    right, judged = directions(events, frames)  # the bag is near the centre when in view here
    assert right == judged
    stopped_at = next(e["t"] for e in guide if e["action"] == "stop")
    assert not [e for e in cues if e["t"] > stopped_at + 0.5], "no cue after stop"
