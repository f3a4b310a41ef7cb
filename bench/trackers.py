"""Trackers compared on look-alikes: the product's template tracker against OpenCV's CSRT and
KCF (issue 23), on every rendered scenario of tests/support/guide_scene.py (PATHS and the
look-alike scenes: a same-colour, same-size bag right next to the target).

Runs in a throwaway venv with opencv-contrib-python (CSRT and KCF live only there) in place of
opencv-python: the two wheels share the `cv2` package and must not be installed together.

    python3 -m venv /tmp/cvc && /tmp/cvc/bin/pip install opencv-contrib-python numpy
    PYTHONPATH=$PWD /tmp/cvc/bin/python -m bench.trackers [TRACKER...] [SCENARIO...]

Each tracker starts from the target's true box in the first frame (what the model marks) and
gets every frame at 30 fps; the template tracker also gets the camera's motion and searches
the whole picture for a lost item only after REFIND_ANYWHERE_S, as the guide drives it (class
Template). Per tracker and scenario, at 640x360: centre error p50 / p95 (px, frames where the
target is in view and the tracker claims it), held (share of those in-view frames it claims
the target at all), frames on the look-alike (claimed centre inside the look-alike's box),
false locks (target hidden or out of view, tracker claims it; on the look-alike in
brackets), recovery (s from the target's return to the first claimed frame with the centre
on it, per hidden stretch; "never" if not by the end), and CPU in ms per frame
(time.thread_time around the update; process CPU in brackets if OpenCV's own threads add
more) at 640x360 and at 1280x720 (the same scenario rendered larger).

"CSRT@320" and "KCF@320" get the frame resized to 320 px wide, as the template tracker works.
CSRT and KCF have no re-find: once they report a failure they keep looking around the last
place (OpenCV's behaviour, kept here), so what comes back elsewhere stays lost for them.
Imports nothing beyond OpenCV, NumPy and the guide package, so the contrib venv needs no more
(hence its own small table, not bench._common's).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from shelfsight.guide.box import PixelBox
from shelfsight.guide.guide import REFIND_ANYWHERE_S
from shelfsight.guide.motion import CameraMotion
from shelfsight.guide.tracker import TemplateTracker
from tests.support.guide_scene import FPS, LOOKALIKES, OUT, PATHS, SceneFrame, render

LARGE = (1280, 720)


class Follower(Protocol):
    def start(self, image: np.ndarray, box: PixelBox) -> None: ...

    def update(self, image: np.ndarray) -> tuple[PixelBox, bool]:
        """The box (frame px) and whether the target is taken as lost."""
        ...


class Template:
    """The product's tracker (shelfsight.guide.tracker) as the guide drives it: told the
    camera's motion each frame (guide.motion, its cost counted here too), and searching the
    whole picture for a lost item only once it has been lost REFIND_ANYWHERE_S."""

    def __init__(self, make: Callable[[], TemplateTracker] = TemplateTracker) -> None:
        self._tracker, self._motion = make(), CameraMotion()
        self._frame, self._lost_at = 0, -1

    def start(self, image: np.ndarray, box: PixelBox) -> None:
        self._tracker.start(image, box)
        self._motion.shift(image)

    def update(self, image: np.ndarray) -> tuple[PixelBox, bool]:
        self._frame += 1
        anywhere = self._lost_at >= 0 and (self._frame - self._lost_at) / FPS >= REFIND_ANYWHERE_S
        track = self._tracker.update(image, self._motion.shift(image), anywhere=anywhere)
        if not track.lost:
            self._lost_at = -1
        elif self._lost_at < 0:
            self._lost_at = self._frame
        return track.box, track.lost


class OpenCV:
    """cv2.TrackerCSRT / cv2.TrackerKCF (opencv-contrib's main namespace, `.create()`; the
    pre-4.5 classes are in `cv2.legacy`), on the frame as it comes or, with `width`, on the
    frame resized to that width (what the product would do to bound its cost). `update` says
    False when its response peak is too weak: taken as lost."""

    def __init__(self, make: Callable[[], cv2.Tracker], width: int | None = None) -> None:
        self._tracker, self._width = make(), width
        self._box, self._k = PixelBox(0, 0, 0, 0), 1.0

    def start(self, image: np.ndarray, box: PixelBox) -> None:
        small = self._resize(image)
        b = box.scaled(self._k)
        self._tracker.init(small, (round(b.x), round(b.y), round(b.w), round(b.h)))
        self._box = box

    def update(self, image: np.ndarray) -> tuple[PixelBox, bool]:
        ok, rect = self._tracker.update(self._resize(image))
        if ok:
            self._box = PixelBox(*(float(v) for v in rect)).scaled(1 / self._k)
        return self._box, not ok

    def _resize(self, image: np.ndarray) -> np.ndarray:
        if self._width is None:
            return image
        height, width = image.shape[:2]
        self._k = self._width / width
        size = (self._width, round(height * self._k))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


TRACKERS: dict[str, Callable[[], Follower]] = {
    "template": Template,
    "CSRT": lambda: OpenCV(cv2.TrackerCSRT.create),
    "KCF": lambda: OpenCV(cv2.TrackerKCF.create),
    "CSRT@320": lambda: OpenCV(cv2.TrackerCSRT.create, 320),
    "KCF@320": lambda: OpenCV(cv2.TrackerKCF.create, 320),
}


@dataclass
class Run:
    boxes: list[tuple[PixelBox, bool]] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # thread CPU per update
    process_s: list[float] = field(default_factory=list)  # process CPU per update


def follow(make: Callable[[], Follower], frames: Sequence[SceneFrame]) -> Run:
    tracker, run = make(), Run()
    tracker.start(frames[0].image, frames[0].truth)
    for frame in frames[1:]:
        t0, p0 = time.thread_time(), time.process_time()
        run.boxes.append(tracker.update(frame.image))
        run.cpu_s.append(time.thread_time() - t0)
        run.process_s.append(time.process_time() - p0)
    return run


def inside(box: PixelBox, area: PixelBox | None) -> bool:
    return (
        area is not None
        and area.w > 0
        and area.x <= box.cx <= area.x + area.w
        and area.y <= box.cy <= area.y + area.h
    )


def recoveries(frames: Sequence[SceneFrame], run: Run) -> str:
    """Seconds from each return of the target to the first claimed frame centred on it."""
    out: list[str] = []
    gone, back = False, -1  # hidden since the last recovery; the frame it came back in
    for i, (frame, (box, lost)) in enumerate(zip(frames, run.boxes, strict=True)):
        if not frame.visible:
            gone, back = True, -1
        elif gone:
            back = i if back < 0 else back
            if not lost and inside(box, frame.truth):
                out.append(f"{(i - back) / FPS:.1f}")
                gone = False
    if gone:
        out.append("never" if back >= 0 else "(ends hidden)")
    return " ".join(out) or "-"


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def cpu_ms(run: Run) -> str:
    thread, process = np.mean(run.cpu_s) * 1000, np.mean(run.process_s) * 1000
    return f"{thread:.1f}" + (f" ({process:.1f})" if process > 1.2 * thread + 0.2 else "")


def row(name: str, scenario: str, frames: Sequence[SceneFrame], run: Run, large: Run) -> list[str]:
    pairs = list(zip(frames, run.boxes, strict=True))
    seen = [(f, b) for f, b in pairs if f.visible]
    claimed = [(f, box) for f, (box, lost) in seen if not lost]
    errors = [np.hypot(box.cx - f.truth.cx, box.cy - f.truth.cy) for f, box in claimed]
    on_twin = sum(not lost and inside(box, f.lookalike) for f, (box, lost) in pairs)
    hidden = [(f, box) for f, (box, lost) in pairs if not f.visible and not lost]
    false_twin = sum(inside(box, f.lookalike) for f, box in hidden)
    twins = any(f.lookalike is not None for f in frames)
    return [
        scenario,
        name,
        f"{pct(errors, 50):.1f} / {pct(errors, 95):.1f}",
        f"{len(claimed) / len(seen) * 100:.0f} %" if seen else "-",
        str(on_twin) if twins else "-",
        f"{len(hidden)} ({false_twin})" if twins else str(len(hidden)),
        recoveries(frames, run),
        cpu_ms(run),
        cpu_ms(large),
    ]


def table(title: str, rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for k, cells in enumerate(rows):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))


def main(names: Sequence[str], scenarios: Sequence[str]) -> None:
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads")
    header = ["scenario", "tracker", "error px p50/p95", "held", "on twin", "false locks"]
    rows = [[*header, "recovery s", "ms/frame 640", "ms/frame 1280"]]
    runs: dict[str, list[tuple[list[SceneFrame], Run, Run]]] = {n: [] for n in names}
    for scenario in scenarios:
        frames = list(render(scenario))
        big = list(render(scenario, size=LARGE))
        for name in names:
            run, large = follow(TRACKERS[name], frames), follow(TRACKERS[name], big)
            rows.append(row(name, scenario, frames[1:], run, large))
            runs[name].append((frames[1:], run, large))
    table(f"Trackers on rendered shelf videos ({OUT[0]}x{OUT[1]}, {FPS:.0f} fps)", rows)
    summary = [["tracker", "scenes", "error px p50/p95", "held", "on twin", "false locks"]]
    summary[0] += ["not recovered", "ms/frame 640", "ms/frame 1280"]
    for name, done in runs.items():
        frames, whole, large_all = [], Run(), Run()
        for seen, run, large in done:
            frames += seen
            whole.boxes += run.boxes
            whole.cpu_s, whole.process_s = whole.cpu_s + run.cpu_s, whole.process_s + run.process_s
            large_all.cpu_s += large.cpu_s
            large_all.process_s += large.process_s
        never = sum(recoveries(seen, run).count("never") for seen, run, _ in done)
        cells = row(name, "", frames, whole, large_all)
        summary.append([name, str(len(done)), *cells[2:6], str(never), *cells[7:]])
    table("All of them together (recovery: hidden stretches never recovered)", summary)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        [a for a in args if a in TRACKERS] or tuple(TRACKERS),
        [a for a in args if a not in TRACKERS] or (*PATHS, *LOOKALIKES),
    )
