"""Guide mode, measured: tracking a marked item on shelf videos seen by a moving camera.

Each scenario (tests/support/guide_scene.py: pan, tilt, walking closer, a brief occlusion,
turning away for ~1.5 s) is rendered with the true position of the target in every frame. The
stand-in's scripted `mark_item` call (box of the target in the first frame) reaches the guide
through the real SDK over TLS; then the frames are fed at 30 fps, as a camera delivers them, to
the guide's worker thread (track, cue, 20 ms of cue sound). Printed per scenario: tracking
error (px and % of the 640 px width, frames where the target is in view), time to lock (call
received -> first cue on the target, IoU >= 0.5), dropouts / recovered by the tracker / lost
long enough to tell the user / fresh boxes asked, cue direction agreement (left/right and
up/down of the cue vs the truth, where the target is off-centre by >10 %), guidance latency
(frame capture -> its cue's sound rendered), false locks (frames where the target is hidden or
out of view but the tracker claims it) and the worker's CPU (% of one core).

Then whole runs as a user makes them (tests/support/guide_cli.py): `shelfsight run` in a child
process on a rendered video, the question typed, the stand-in marking the bag: from the
recording and the manifest, the recorded cues' direction against the truth of the frame each
is about, frame capture -> cue mixed by the speaker's audio thread, and the worker's CPU.

Run: .venv/bin/python -m bench.guide
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

from bench._common import ms3, pct, table
from shelfsight.guide.worker import ask_again_text
from shelfsight.standin import ScriptedAnswer, StandIn
from tests.support.guide_cli import (
    ANSWER_PCM,
    ITEM,
    GuidedRun,
    cue_seen_at,
    directions,
    guide_config,
)
from tests.support.guide_run import GuideRun, cue_directions, guided_run
from tests.support.guide_scene import OUT, PATHS, write_video


def figures(run: GuideRun) -> list[str]:
    errors = [
        float(
            (
                (r.step.track.box.cx - r.frame.truth.cx) ** 2
                + (r.step.track.box.cy - r.frame.truth.cy) ** 2
            )
            ** 0.5
        )
        for r in run.results
        if r.step.track is not None and not r.step.track.lost and r.frame.visible
    ]
    lock = next(
        (
            r.t_cue - run.t_call
            for r in run.results
            if r.step.track is not None
            and not r.step.track.lost
            and r.step.track.box.iou(r.frame.truth) >= 0.5
        ),
        float("nan"),
    )
    latency = [r.t_cue - r.t_capture for r in run.results if r.step.cue is not None]
    agree, judged = cue_directions(run)
    false_locks = sum(
        r.step.track is not None and not r.step.track.lost and not r.frame.visible
        for r in run.results
    )
    s = run.guide.stats
    return [
        run.scenario,
        f"{pct(errors, 50):.1f} / {pct(errors, 95):.1f}",
        f"{pct(errors, 50) / OUT[0] * 100:.1f} / {pct(errors, 95) / OUT[0] * 100:.1f}",
        f"{lock * 1000:.0f}",
        f"{s.dropouts} / {s.recovered} / {s.lost} / {s.asks}",
        f"{agree}/{judged} ({agree / judged * 100 if judged else float('nan'):.0f} %)",
        str(false_locks),
        ms3(latency),
        f"{run.worker_cpu_s / run.wall_s * 100:.0f} %",
    ]


async def main() -> None:
    rows = [
        [
            "scenario",
            "error px p50/p95",
            "% width p50/p95",
            "lock ms",
            "dropouts/recovered/lost/asks",
            "direction right",
            "false locks",
            "capture->cue ms p50/p95/max",
            "CPU",
        ]
    ]
    for scenario in PATHS:
        rows.append(figures(await guided_run(scenario, paced=True)))
    table(f"Guide on rendered shelf videos ({OUT[0]}x{OUT[1]}, 30 fps, template tracker)", rows)
    runs = [["video", "direction right", "marks/lost/asks", "capture->sound ms p50/p95", "CPU"]]
    for scenario in ("ask_and_pan", "ask_then_away"):
        runs.append(whole_run(scenario))
    table("Whole runs: shelfsight run, WAV speaker, typed question", runs)


def whole_run(scenario: str) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        frames = write_video(scenario, tmp / "shelf.avi")
        where = ScriptedAnswer("(re-ask)", "Turn back to the right.", ANSWER_PCM)
        config = guide_config(frames[0], (ask_again_text(ITEM), where))
        with StandIn.start_in_thread(config) as standin:
            run = GuidedRun(standin, tmp / "shelf.avi", str(tmp / "out.wav"), tmp, {})
            t0 = run.ask_once_connected()
            run.wait_for("the end of the video", lambda ev: cue_seen_at(ev, len(frames) - 15))
            wall_s = time.monotonic() - t0
            _, events = run.finish()
        guide = json.loads((run.record / "manifest.json").read_text())["guide"]
    right, judged = directions(events, frames)
    p50, p95 = guide["capture_to_sound_ms"] or (float("nan"), float("nan"))
    return [
        scenario,
        f"{right}/{judged}",
        f"{guide['marks']}/{guide['lost']}/{guide['asks']}",
        f"{p50:.0f} / {p95:.0f}",
        f"{guide['cpu_s'] / wall_s * 100:.0f} %",
    ]


if __name__ == "__main__":
    asyncio.run(main())
