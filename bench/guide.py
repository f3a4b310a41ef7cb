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

Run: .venv/bin/python -m bench.guide
"""

from __future__ import annotations

import asyncio

from bench._common import ms3, pct, table
from tests.support.guide_run import GuideRun, cue_directions, guided_run
from tests.support.guide_scene import OUT, PATHS


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


if __name__ == "__main__":
    asyncio.run(main())
