"""Shelf videos seen by a moving camera, with the true position of one product in every frame.

The shelf of `tests.support.scene` is drawn once, large; each frame is a crop of it (the
camera's view: pan, tilt, walking closer) resized to the output size, so the target's box in
the frame follows exactly from the crop. An occlusion (a hand-sized dark patch over the item)
can be drawn for part of a clip. Used by the guide's tests and `bench.guide`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shelfsight.guide.box import PixelBox
from tests.support.scene import SHELVES, draw_shelf

CANVAS = (1920, 1080)
OUT = (640, 360)
FPS = 30.0
TARGET = (2, 2)  # shelf (from the top), slot: the green "GLUTEN FREE" bag


@dataclass(frozen=True)
class SceneFrame:
    image: np.ndarray  # BGR, OUT size
    truth: PixelBox  # the target's part in view, in this frame's pixels
    visible: bool  # False while occluded or out of view


def product_box(shelf: int, slot: int, size: tuple[int, int] = CANVAS) -> PixelBox:
    """Where `draw_shelf` (frame 0, no pan) puts a product, in canvas pixels."""
    width, height = size
    shelf_h = (height - height // 10) // len(SHELVES)
    slot_w = width // len(SHELVES[shelf])
    x0 = slot * slot_w + slot_w // 8
    top = shelf * shelf_h
    return PixelBox(x0, top + shelf_h // 5, slot_w * 3 // 4, shelf_h - 10 - shelf_h // 5)


# A camera path: time (s) -> (centre x, centre y, crop width), canvas pixels.
CameraPath = Callable[[float], tuple[float, float, float]]


def _lerp(a: float, b: float, f: float) -> float:
    return a + (b - a) * max(0.0, min(1.0, f))


PATHS: dict[str, tuple[float, CameraPath]] = {
    # item from the right of the view, through the centre, to the left
    "pan": (4.0, lambda t: (_lerp(1400, 1850, t / 4.0), 640, 960)),
    # item from below the centre to above it
    "tilt": (4.0, lambda t: (1600, _lerp(480, 780, t / 4.0), 960)),
    # walking closer: the item grows from a quarter to most of the view
    "closer": (4.0, lambda t: (_lerp(1450, 1600, t / 4.0), 630, _lerp(1200, 560, t / 4.0))),
    # a slow pan with the item covered from 1.5 s to 2.0 s
    "occlusion": (4.0, lambda t: (_lerp(1450, 1750, t / 4.0), 620, 960)),
    # turned away: the item leaves the view for ~1.5 s, then the camera comes back to it
    "away": (5.0, lambda t: (1600 - 1100 * _hump(t, 1.0, 1.6, 3.0, 3.6), 630, 960)),
    # a run as a user makes it (tests/test_guide_run.py): held with the item to the right
    # while asking, a pan that brings it across to the left, held again
    "ask_and_pan": (9.0, lambda t: (_lerp(1400, 1850, (t - 2.5) / 3.0), 640, 960)),
    # held while asking, then turned away for ~1.5 s (the guide tells, asks again), and back
    "ask_then_away": (7.0, lambda t: (1600 - 1100 * _hump(t, 2.5, 3.0, 4.5, 5.0), 630, 960)),
    # walking up to the item from far (an eighth of the view wide) to within reach
    "approach": (4.0, lambda t: (1600, 626, _lerp(3600, 1400, t / 3.0))),
    # held while asking, then a hand covers the item for 2 s (the guide tells, asks again)
    "ask_then_hidden": (7.0, lambda t: (1600, 630, 960)),
    # held on the item while a hand covers it for 2 s (longer than the guide waits)
    "hidden": (4.0, lambda t: (_lerp(1600, 1640, t / 4.0), 630, 960)),
}
OCCLUDED_S = {"occlusion": (1.5, 2.0), "hidden": (1.0, 3.0), "ask_then_hidden": (3.5, 5.5)}


def _hump(t: float, up0: float, up1: float, down0: float, down1: float) -> float:
    """0 before up0, rising to 1 by up1, 1 until down0, back to 0 by down1."""
    if t < down0:
        return _lerp(0.0, 1.0, (t - up0) / (up1 - up0))
    return _lerp(1.0, 0.0, (t - down0) / (down1 - down0))


def render(name: str, fps: float = FPS) -> Iterator[SceneFrame]:
    """The frames of scenario `name` (a key of PATHS), with the truth for each."""
    seconds, path = PATHS[name]
    canvas = draw_shelf(*CANVAS, 0)
    target = product_box(*TARGET)
    covered = OCCLUDED_S.get(name)
    for n in range(int(seconds * fps)):
        t = n / fps
        cx, cy, cw = path(t)
        ch = cw * OUT[1] / OUT[0]
        x0, y0 = cx - cw / 2, cy - ch / 2
        crop = cv2.getRectSubPix(canvas, (round(cw), round(ch)), (cx, cy))
        image = cv2.resize(crop, OUT, interpolation=cv2.INTER_AREA)
        k = OUT[0] / round(cw)
        whole = PixelBox((target.x - x0) * k, (target.y - y0) * k, target.w * k, target.h * k)
        truth = _in_view(whole)
        in_view = truth.w > 0.5 * whole.w and truth.h > 0.5 * whole.h
        hidden = covered is not None and covered[0] <= t < covered[1]
        if hidden:
            pad = 0.15 * truth.w
            p0 = (round(truth.x - pad), round(truth.y - pad))
            p1 = (round(truth.x + truth.w + pad), round(truth.y + truth.h + pad))
            cv2.rectangle(image, p0, p1, (60, 70, 95), -1)  # a hand, skin in shadow
        yield SceneFrame(image, truth, in_view and not hidden)


def _in_view(box: PixelBox) -> PixelBox:
    x0, y0 = max(0.0, box.x), max(0.0, box.y)
    x1, y1 = min(float(OUT[0]), box.x + box.w), min(float(OUT[1]), box.y + box.h)
    return PixelBox(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))


def write_video(name: str, path: Path) -> list[SceneFrame]:
    """Scenario `name` as an MJPG AVI at FPS (what `--camera FILE` plays); its frames."""
    frames = list(render(name))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, OUT)
    for frame in frames:
        writer.write(frame.image)
    writer.release()
    return frames
