"""Guide mode, closed loop: a simulated shopper finds the item by ear, in real time.

Per scene (tests/support/closed_loop.py): a large rendered shelf, a virtual phone camera
streaming it as live MJPEG (960x540, 30 fps, shake, noise, motion blur, lighting, passers-by)
into `shelfsight run --camera http://... --mic none --speaker default` in a child process,
whose speaker is a private PulseAudio server's stereo null sink; the stand-in's model marks
what a vision model would mark in the pictures it gets (the item's box, or the way to turn);
the question is typed; the shopper hears only the sink's monitor (parec, 24 kHz stereo),
follows the README's rules with a person's reaction time and hand limits, and stops at the
chime. The oracle is the same hand moving straight to the item from the question on.

Printed per kind of scene and overall: success (the camera centred on the item, within reach,
at the chime), time from the question to the chime (median, p90, of the scenes reached)
against the oracle's (median of all), the ratio (median of per-scene ratios, and ratio of
medians, both over the scenes reached), chimes on the look-alike, the guide's losses ("I've
lost it"), questions to the model after the first, and the model's boxes on the look-alike.
With `--ideal`, also the same shopper's time with a perfect guide (tests/support/ideal_guide:
the README's sounds made from the truth, no model, no tracker) and its ratio to the oracle:
how much of the gap is the guide's and how much the shopper's way of following sound.
`--scenes N` runs the first N scenes (the kinds take turns), `--seed S` shifts every scene's
seed, `--kind K` runs one kind only, `--trace failed|all` prints a timeline per scene (the
truth, the guide's recorded cue and what the shopper heard, every 0.5 s).

Run: .venv/bin/python -m bench.closed_loop [--scenes 60] [--seed 0] [--latency 0.5] [--ideal]
(7-35 s a scene: 3 s to start, the walk, 30 s at most; ~10 min for 60 on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench._common import pct, table
from tests.support.closed_loop import KINDS, Rig, SceneResult, make_scene, run_scene
from tests.support.guide_cli import events_of
from tests.support.ideal_guide import ideal_times
from tests.support.pulse import missing_tools


def scenes(n: int, seed: int, kinds: Sequence[str]) -> list[tuple[str, int]]:
    """The first `n` scenes: the kinds take turns, seeds count up from `seed`."""
    return [(kinds[k % len(kinds)], seed + k // len(kinds)) for k in range(n)]


def row(name: str, results: list[SceneResult], ideal: bool = False) -> list[str]:
    done = [r for r in results if r.success and r.t_reach_s is not None]
    times = [r.t_reach_s for r in done if r.t_reach_s is not None]
    oracle = [r.t_oracle_s for r in results]
    ratios = [r.t_reach_s / r.t_oracle_s for r in done if r.t_reach_s is not None]
    reached_oracle = [r.t_oracle_s for r in done]
    of_medians = statistics.median(times) / statistics.median(reached_oracle) if times else 0.0
    return [
        name,
        str(len(results)),
        f"{len(done)} ({len(done) / len(results) * 100:.0f} %)",
        f"{pct(times, 50):.1f} / {pct(times, 90):.1f}" if times else "-",
        f"{pct(oracle, 50):.1f}",
        f"{pct(ratios, 50):.2f} / {of_medians:.2f}" if ratios else "-",
        str(sum(r.false_on_lookalike for r in results)),
        str(sum(r.lost for r in results)),
        str(sum(r.asks for r in results)),
        str(sum(r.lookalike_boxes for r in results)),
    ] + (_ideal_cells(results) if ideal else [])


def _ideal_cells(results: list[SceneResult]) -> list[str]:
    """The perfect guide's time p50 and its ratio to the oracle (median of per-scene)."""
    pairs = [(r.t_ideal_s, r.t_oracle_s) for r in results if r.t_ideal_s is not None]
    if not pairs:
        return ["-", "-"]
    return [
        f"{pct([t for t, _ in pairs], 50):.1f}",
        f"{pct([t / o for t, o in pairs], 50):.2f}",
    ]


def report(results: list[SceneResult], title: str) -> None:
    rows = [
        [
            "scenes",
            "n",
            "success",
            "to reach s p50/p90",
            "oracle s p50",
            "ratio p50 / of p50s",
            "on look-alike",
            "losses",
            "re-asks",
            "model boxed look-alike",
        ]
    ]
    ideal = any(r.t_ideal_s is not None for r in results)
    if ideal:
        rows[0] += ["ideal guide s p50", "ideal / oracle p50"]
    for kind in KINDS:
        mine = [r for r in results if r.scene.kind == kind]
        if mine:
            rows.append(row(kind, mine, ideal))
    rows.append(row("all", results, ideal))
    table(title, rows)
    failed = [r for r in results if not r.success]
    if failed:
        print("\n  not reached:")
        for r in failed:
            print(f"    {r.scene.label}: {r.outcome} (item {r.item_px:.0f} px, {r.marks} marks)")


def timeline(result: SceneResult, folder: Path, step_s: float = 0.5) -> None:
    """What happened, every `step_s` from the question: the truth (where the item was in the
    camera's view), the guide's recorded cue, and what the shopper heard; then the guide's and
    the model's events."""
    assert result.hand is not None and result.shelf is not None
    events = events_of(folder / "rec")
    typed = next((e["t"] for e in events if e["type"] == "typed_text"), None)
    if typed is None:
        return
    cues = [(e["t"] - typed, e) for e in events if e["type"] == "guide_cue"]
    targets = result.shelf.facings(result.shelf.target)
    end = (result.t_reach_s or 30.0) + 0.5
    print(f"\n  {result.scene.label}: {result.outcome}")
    for k in range(int(end / step_s) + 1):
        t = k * step_s
        pose = result.hand.pose_at(result.t_question + t)
        v = min((pose.view_of(p.box) for p in targets), key=lambda v: abs(v.cx - 0.5))
        cue = next((e for tc, e in reversed(cues) if tc <= t), None)
        heard = [p for p in result.percepts if t - step_s < p.t_heard - result.t_question <= t]
        said = (
            ""
            if cue is None
            else "lost"
            if cue["lost"]
            else (
                f"pan {cue['pan']:+.2f} tilt {cue['tilt']:+.2f} w {cue['width']:.2f}"
                + (" ON" if cue["on_target"] else "")
            )
        )
        ticks = " ".join(f"{p.kind[0]}{p.pan:+.1f}/{p.tilt:+.1f}" for p in heard[-3:])
        print(
            f"  {t:5.2f} truth pan {2 * (v.cx - 0.5):+.2f} tilt {2 * (v.cy - 0.5):+.2f} "
            f"w {v.w:.2f} | cue {said:32s} | heard {ticks}"
        )
    for e in events:
        if e["type"] in ("guide", "tool_call"):
            what = e.get("action") or e.get("name")
            detail = e.get("why") or e.get("direction") or e.get("args", {}).get("direction", "")
            print(f"  {e['t'] - typed:6.2f} {e['type']} {what} {detail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kind", choices=KINDS, action="append")
    parser.add_argument("--latency", type=float, default=0.5, help="the model's, seconds")
    parser.add_argument("--keep", type=Path, help="keep each scene's recording and log here")
    parser.add_argument(
        "--trace", choices=("failed", "all"), help="print a timeline of these scenes"
    )
    parser.add_argument(
        "--ideal", action="store_true", help="also time the shopper with a perfect guide"
    )
    args = parser.parse_args(argv)
    if missing := missing_tools():
        print(f"PulseAudio cannot run here (missing: {', '.join(missing)})", file=sys.stderr)
        return 2
    todo = scenes(args.scenes, args.seed, args.kind or KINDS)
    results: list[SceneResult] = []
    ideals: list[float | None] = [None] * len(todo)
    if args.ideal:  # side by side in threads, in real time: ~30 s for 60 scenes
        print("  the same shopper with a perfect guide ...", flush=True)
        ideals = [t for t, _ in ideal_times([make_scene(k, s) for k, s in todo])]
    t0 = time.monotonic()
    with Rig.start(args.latency) as rig, tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for k, (kind, seed) in enumerate(todo):
            folder = base / f"{k:03d}-{kind.replace(' ', '-')}-{seed}"
            result = run_scene(make_scene(kind, seed), rig, folder)
            result.t_ideal_s = ideals[k]
            results.append(result)
            if args.trace == "all" or (args.trace == "failed" and not result.success):
                timeline(result, folder)
            took = f"{result.t_reach_s:.1f} s" if result.t_reach_s is not None else "-"
            hidden = f", hidden {result.covered_s:.1f} s" if result.covered_s else ""
            print(
                f"  {k + 1}/{len(todo)} {result.scene.label}: {result.outcome}, {took} "
                f"(oracle {result.t_oracle_s:.1f} s; item {result.item_px:.0f} px{hidden}; "
                f"wall {result.wall_s:.0f} s)",
                flush=True,
            )
    minutes = (time.monotonic() - t0) / 60
    report(
        results,
        f"Guide, closed loop: {len(results)} scenes, model latency {args.latency} s "
        f"({minutes:.0f} min)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
