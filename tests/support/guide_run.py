"""The guide driven end to end on a rendered video: the stand-in's scripted `mark_item` call
arrives over the real SDK and TLS, the box is answered and handed to the guide, and every
following frame is tracked on a worker thread and turned into a cue and its sound.

For `tests/test_guide.py` and `bench.guide`: one run per scenario of `guide_scene.PATHS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shelfsight.core.guidance import Guidance
from shelfsight.guide.box import to_box_2d
from shelfsight.guide.guide import Guide, Step
from shelfsight.live.link import LiveLink, ToolCall
from shelfsight.live.setup import Endpoint, live_config, make_client
from shelfsight.media.camera import Frame
from shelfsight.media.guidance_audio import CueRenderer
from shelfsight.settings import Settings
from shelfsight.standin import (
    ScriptedAnswer,
    ScriptedCall,
    StandIn,
    StandInConfig,
    synth_speech_pcm16,
)
from shelfsight.tools.calls import ToolBox
from shelfsight.tools.guide_tools import guide_tools
from tests.support.guide_scene import FPS, OUT, SceneFrame, render

KEY = "guide-key-not-secret"
ITEM = "gluten-free bread"
AUDIO_BLOCK_S = 0.02


@dataclass
class FrameResult:
    frame: SceneFrame
    step: Step
    t_capture: float
    t_cue: float  # the cue's first audio block was rendered


@dataclass
class GuideRun:
    scenario: str
    t_call: float = 0.0  # the mark_item call arrived
    responses: list[dict[str, Any]] = field(default_factory=list)
    results: list[FrameResult] = field(default_factory=list)
    guide: Guide = field(default_factory=Guide)
    connections: int = 0  # the stand-in's count: 1 unless something broke the session
    worker_cpu_s: float = 0.0
    wall_s: float = 0.0


async def guided_run(
    scenario: str, *, calls: Sequence[ScriptedCall] | None = None, paced: bool = False
) -> GuideRun:
    """Ask to be guided, answer the scripted call(s), then track the scenario's frames
    (`paced`: at the video's frame rate, as a camera delivers them; else back to back)."""
    frames = list(render(scenario))
    run = GuideRun(scenario)
    box_2d = to_box_2d(frames[0].truth, *OUT)
    if calls is None:
        calls = [ScriptedCall("mark_item", {"box_2d": box_2d, "name": "gluten-free bread"})]
    pcm = synth_speech_pcm16(0.3, 24000)
    answer = ScriptedAnswer("guide me", "Follow the ticks.", pcm, tool_calls=tuple(calls))
    config = StandInConfig(api_keys=frozenset({KEY}), answers=(answer,))
    marked = asyncio.Event()

    class Target:
        def mark(self, box_2d: tuple[float, float, float, float], name: str) -> None:
            run.guide.mark(box_2d, name, frames[0].image)  # the frame the model saw
            marked.set()

        def stop(self, why: str) -> bool:
            run.guide.stop()
            return True

    box = ToolBox(guide_tools(Target()))
    async with StandIn(config) as server:
        client = make_client(KEY, Endpoint(server.base_url, server.client_ssl_context()))
        settings = Settings()
        link = LiveLink(
            connect=client.aio.live.connect,
            model=settings.model,
            config_for=lambda h: live_config(settings, "Guide.", h, tools=box.declarations()),
        )
        async with asyncio.TaskGroup() as tg:
            link_task = tg.create_task(link.run())
            answering = tg.create_task(_answer_calls(link, box, run, len(calls)))
            link.send_text("guide me to the gluten-free bread")
            await answering
            await server.wait_until(
                lambda: (
                    sum(len(c.tool_responses()) for c in server.connections)
                    >= sum(c.call_id is not None for c in calls)
                ),
                timeout_s=10,
            )
            run.responses = [r for c in server.connections for r in c.tool_responses()]
            run.connections = len(server.connections)
            if marked.is_set():
                await asyncio.to_thread(_track, run, frames[1:], paced)
            link_task.cancel()
    return run


async def _answer_calls(link: LiveLink, box: ToolBox, run: GuideRun, n_calls: int) -> None:
    seen = 0
    async for event in link.events():
        if isinstance(event, ToolCall):
            run.t_call = run.t_call or time.monotonic()
            reply = box.answer(event.call_id, event.name, event.args)
            if event.call_id is not None:
                link.send_tool_response(event.call_id, event.name, reply.response, reply.scheduling)
            seen += 1
            if seen >= n_calls:
                return


def _track(run: GuideRun, frames: list[SceneFrame], paced: bool) -> None:
    """The guide's worker thread: each frame to a step, a cue and 20 ms of its sound."""
    renderer = CueRenderer()
    cpu0, t0 = time.thread_time(), time.monotonic()
    for n, frame in enumerate(frames):
        if paced:
            with contextlib.suppress(ValueError):
                time.sleep(max(0.0, t0 + n / FPS - time.monotonic()))
        t_capture = time.monotonic()
        # The guide's clock is the video's (frame n at n / FPS), so its one-second rules hold
        # however fast or slow a loaded machine tracks; latency is measured on the real clock.
        step = run.guide.step(frame.image, t_capture, t0 + n / FPS, seq=n)
        if step.ask is not None and step.ask.why == "confirm" and frame.visible:
            # The model checks the followed box before the chime: it marks the item there.
            box = to_box_2d(frame.truth, *OUT)
            run.guide.mark((box[0], box[1], box[2], box[3]), ITEM, frame.image, seq=n)
        renderer.render(step.cue, AUDIO_BLOCK_S)
        run.results.append(FrameResult(frame, step, t_capture, time.monotonic()))
    run.worker_cpu_s = time.thread_time() - cpu0
    run.wall_s = time.monotonic() - t0


def cue_directions(run: GuideRun) -> tuple[int, int]:
    """(right, judged): frames where the item is visibly off-centre (over 10 % of the half
    width or height) and a cue played; right when the cue's pan/tilt points the same way."""
    right = judged = 0
    for r in run.results:
        cue, truth = r.step.cue, r.frame.truth
        if cue is None or not r.frame.visible:
            continue
        dx = (truth.cx - OUT[0] / 2) / (OUT[0] / 2)
        dy = (truth.cy - OUT[1] / 2) / (OUT[1] / 2)
        for true_offset, cue_offset in ((dx, cue.pan), (dy, cue.tilt)):
            if abs(true_offset) > 0.1:
                judged += 1
                right += (true_offset > 0) == (cue_offset > 0)
    return right, judged


# -- the guide's worker thread driven directly (tests/test_guide*.py) ---------------------------


class SceneCamera:
    """The camera as the guide's worker sees it (follow / next_frame), serving a rendered
    scenario frame by frame, as fast as the worker takes them; the last frame repeats."""

    def __init__(self, frames: list[SceneFrame]) -> None:
        self.frames, self.following, self.served = frames, 0, 0
        self.closed = threading.Event()

    def follow(self, on: bool) -> None:
        self.following += 1 if on else -1

    def next_frame(self, after_seq: int, timeout_s: float) -> Frame | None:
        assert self.following > 0, "frames taken while not following: the camera decodes none"
        seq = min(after_seq + 1, len(self.frames) - 1)
        self.served += 1
        time.sleep(1 / FPS)  # a camera's pace, so the worker's one-second rules see real time
        return Frame(self.frames[seq].image, time.monotonic(), seq)


class CueLog:
    """Where the worker's cues go (the speaker's guide sound, as a list)."""

    def __init__(self) -> None:
        self.cues: list[Guidance | None] = []

    def set(self, cue: Guidance | None) -> None:
        self.cues.append(cue)
