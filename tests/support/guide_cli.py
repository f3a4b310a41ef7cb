"""`shelfsight run` in guide mode as a user runs it, for tests/test_guide_run.py and
`bench.guide`: a child process on a rendered shelf video, questions on its standard input,
its recording read as it grows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shelfsight.guide.box import to_box_2d
from shelfsight.standin import (
    ScriptedAnswer,
    ScriptedCall,
    StandInConfig,
    StandInThread,
    synth_speech_pcm16,
)
from tests.conftest import TEST_KEY, standin_env
from tests.support.guide_scene import OUT, SceneFrame

QUESTION = "guide me to the gluten-free bread"
ITEM = "gluten-free bread"
ANSWER_PCM = synth_speech_pcm16(0.4, 24000)


def guide_config(first: SceneFrame, *more: tuple[str, ScriptedAnswer]) -> StandInConfig:
    mark = ScriptedCall("mark_item", {"box_2d": to_box_2d(first.truth, *OUT), "name": ITEM})
    guide = ScriptedAnswer(QUESTION, "Follow the ticks.", ANSWER_PCM, tool_calls=(mark,))
    return StandInConfig(api_keys=frozenset({TEST_KEY}), typed_answers=((QUESTION, guide), *more))


def events_of(record: Path) -> list[dict[str, Any]]:
    path = record / "events.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


class GuidedRun:
    """`shelfsight run` in a child process, questions written to its standard input."""

    def __init__(
        self, standin: StandInThread, video: Path, speaker: str, tmp: Path, env: dict[str, str]
    ):
        self.record = tmp / "rec"
        self._standin = standin
        args = ["--camera", str(video), "--mic", "none", "--speaker", speaker, "--plain"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shelfsight", "run", *args, "--record", str(self.record)],
            env={**os.environ, **standin_env(standin), **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def ask_once_connected(self, question: str = QUESTION) -> float:
        """Type `question` once the run has connected (as a user waits for "ready"); returns
        when it was typed (time.monotonic())."""
        self.wait_for("the connection", lambda ev: any(e["type"] == "connected" for e in ev))
        self.type(question)
        return time.monotonic()

    def wait_for(
        self, what: str, found: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 30
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = events_of(self.record)
            if found(events):
                return events
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.proc.kill()
        out, err = self.proc.communicate()
        calls = [r for c in self._standin.server.connections for r in c.tool_responses()]
        seen = [e["type"] for e in events_of(self.record)][-30:]
        raise AssertionError(
            f"never saw {what}; tool responses: {calls}; last events: {seen}; "
            f"stdout: {out[-800:]} stderr: {err[-800:]}"
        )

    def finish(self) -> tuple[str, list[dict[str, Any]]]:
        """Close standard input (the user is done) and wait for the exit."""
        try:
            out, err = self.proc.communicate(timeout=30)
        finally:
            self.proc.kill()
        assert self.proc.returncode == 0, err[-2000:]
        return out, events_of(self.record)


def cue_seen_at(events: list[dict[str, Any]], seq: int) -> bool:
    return any(e["type"] == "guide_cue" and e["seq"] >= seq for e in events)


def directions(events: list[dict[str, Any]], frames: list[SceneFrame]) -> tuple[int, int]:
    """(right, judged) over recorded cues about frames where the bag is visibly off-centre."""
    right = judged = 0
    for e in events:
        if e["type"] != "guide_cue" or e["lost"] or e["seq"] >= len(frames):
            continue
        frame = frames[e["seq"]]
        if not frame.visible:
            continue
        dx = (frame.truth.cx - OUT[0] / 2) / (OUT[0] / 2)
        dy = (frame.truth.cy - OUT[1] / 2) / (OUT[1] / 2)
        for truth, cue in ((dx, e["pan"]), (dy, e["tilt"])):
            if abs(truth) > 0.1:
                judged += 1
                right += (truth > 0) == (cue > 0)
    return right, judged


def sides_cued(events: list[dict[str, Any]], frames: list[SceneFrame]) -> set[str]:
    """Where the bag was ("left", "right" of the centre) in the frames cues were recorded for."""
    sides = set()
    for e in events:
        if e["type"] == "guide_cue" and not e["lost"] and e["seq"] < len(frames):
            frame = frames[e["seq"]]
            dx = (frame.truth.cx - OUT[0] / 2) / (OUT[0] / 2)
            if frame.visible and abs(dx) > 0.1:
                sides.add("right" if dx > 0 else "left")
    return sides
