"""Shelf videos seen by a moving camera, with the true position of one product in every frame.

The shelf of `tests.support.scene` is drawn once, large; each frame is a crop of it (the
camera's view: pan, tilt, walking closer) resized to the output size, so the target's box in
the frame follows exactly from the crop. An occlusion (a hand-sized dark patch over the item)
can be drawn for part of a clip. Used by the guide's tests and `bench.guide`.

Look-alike scenes (`LOOKALIKES`, for `bench.trackers`): a second green bag of the same size
and colour, with another name on its yellow label, stands right next to the target; the
camera pans across both, a shopper passes right in front of the target, or the pair is far
away, small in a wall of shelves. Their frames also carry the look-alike's box.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shelfsight.guide.box import PixelBox
from tests.support.scene import SHELVES, _draw_bag, draw_shelf

CANVAS = (1920, 1080)
OUT = (640, 360)
FPS = 30.0
TARGET = (2, 2)  # shelf (from the top), slot: the green "GLUTEN FREE" bag


@dataclass(frozen=True)
class SceneFrame:
    image: np.ndarray  # BGR, OUT size
    truth: PixelBox  # the target's part in view, in this frame's pixels
    visible: bool  # False while occluded or out of view
    lookalike: PixelBox | None = None  # the look-alike's part in view (look-alike scenes)


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
    # walking up to the item from far (under a tenth of the view wide) to within reach
    "approach": (4.0, lambda t: (1600, 626, _lerp(5000, 1400, t / 3.0))),
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


@dataclass(frozen=True)
class LookalikeScene:
    """A look-alike scenario: camera path over the shelf with the twin bag (canvas pixels of
    the twin shelf; in a far scene of the wall, whose middle tile is that shelf)."""

    seconds: float
    path: CameraPath
    far: bool = False  # the twin shelf is the middle of a 3x3 wall of shelves
    passer_s: tuple[float, float] | None = None  # a shopper crosses the view, right to left


TWIN_GAP = 16  # canvas px between the look-alike (left) and the target
WALL = (3, 3)  # tiles across, down: the far scene's wall of shelves
_MID = (CANVAS[0], CANVAS[1])  # the wall's middle tile starts here (canvas px)
_T = product_box(*TARGET)  # the target on the twin shelf, canvas px
_TCX, _TCY = _T.x + _T.w / 2, _T.y + _T.h / 2

LOOKALIKES: dict[str, LookalikeScene] = {
    # both in view, the item right of centre; the camera pans right to left until the item
    # leaves the view on the right with its twin where it was, holds, and comes back
    "twin_pan": LookalikeScene(
        6.0, lambda t: (_TCX - 150 - 600 * _hump(t, 0.0, 2.5, 3.5, 6.0), _TCY, 1400)
    ),
    # held (a slow drift) while a shopper walks right in front of the item, then its twin
    "twin_pass": LookalikeScene(
        4.0, lambda t: (_lerp(_TCX - 200, _TCX - 300, t / 4.0), _TCY, 1400), passer_s=(0.8, 2.6)
    ),
    # turned away for ~1.5 s and back: the whole-frame search sees both bags
    "twin_away": LookalikeScene(
        5.0, lambda t: (_TCX - 250 - 1100 * _hump(t, 1.0, 1.6, 3.0, 3.6), _TCY, 1400)
    ),
    # far away: the item ~75 px wide at 640 px in a wall of shelves; a slow pan and tilt
    "twin_far": LookalikeScene(
        5.0,
        lambda t: (
            _MID[0] + _lerp(_TCX + 150, _TCX - 1150, t / 5.0),
            _MID[1] + _lerp(_TCY - 150, _TCY + 100, t / 5.0),
            4000,
        ),
        far=True,
    ),
}


def render(name: str, fps: float = FPS, size: tuple[int, int] = OUT) -> Iterator[SceneFrame]:
    """The frames of scenario `name` (a key of PATHS or LOOKALIKES) at `size`, with the
    truth for each."""
    if name in LOOKALIKES:
        yield from _render_twins(LOOKALIKES[name], fps, size)
        return
    seconds, path = PATHS[name]
    canvas = draw_shelf(*CANVAS, 0)
    target = product_box(*TARGET)
    covered = OCCLUDED_S.get(name)
    for n in range(int(seconds * fps)):
        t = n / fps
        image, [(truth, in_view)] = _view(canvas, path(t), size, target)
        hidden = covered is not None and covered[0] <= t < covered[1]
        if hidden:
            pad = 0.15 * truth.w
            p0 = (round(truth.x - pad), round(truth.y - pad))
            p1 = (round(truth.x + truth.w + pad), round(truth.y + truth.h + pad))
            cv2.rectangle(image, p0, p1, (60, 70, 95), -1)  # a hand, skin in shadow
        yield SceneFrame(image, truth, in_view and not hidden)


def _view(
    canvas: np.ndarray, where: tuple[float, float, float], size: tuple[int, int], *boxes: PixelBox
) -> tuple[np.ndarray, list[tuple[PixelBox, bool]]]:
    """The camera's view centred at `where` (cx, cy, crop width; canvas px) at `size`, and
    for each of `boxes` (canvas px): its part in view (frame px), and whether most of it is."""
    cx, cy, cw = where
    ch = cw * size[1] / size[0]
    x0, y0 = cx - cw / 2, cy - ch / 2
    crop = cv2.getRectSubPix(canvas, (round(cw), round(ch)), (cx, cy))
    image = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    k = size[0] / round(cw)
    seen = []
    for box in boxes:
        whole = PixelBox((box.x - x0) * k, (box.y - y0) * k, box.w * k, box.h * k)
        part = _in_view(whole, size)
        seen.append((part, part.w > 0.5 * whole.w and part.h > 0.5 * whole.h))
    return image, seen


def _render_twins(scene: LookalikeScene, fps: float, size: tuple[int, int]) -> Iterator[SceneFrame]:
    canvas = twin_canvas()
    target, twin = _T, lookalike_box()
    if scene.far:
        canvas = _wall(canvas)
        target = PixelBox(target.x + _MID[0], target.y + _MID[1], target.w, target.h)
        twin = PixelBox(twin.x + _MID[0], twin.y + _MID[1], twin.w, twin.h)
    for n in range(int(scene.seconds * fps)):
        t = n / fps
        image, [(truth, in_view), (other, _)] = _view(canvas, scene.path(t), size, target, twin)
        hidden = False
        if scene.passer_s is not None:
            hidden = _pass(
                image, truth, (t - scene.passer_s[0]) / (scene.passer_s[1] - scene.passer_s[0])
            )
        yield SceneFrame(image, truth, in_view and not hidden, other)


def _pass(image: np.ndarray, truth: PixelBox, f: float) -> bool:
    """A shopper's coat (full height, 45 % of the width) `f` of the way across the view from
    the right; True if it covers most of `truth`."""
    if not 0.0 <= f <= 1.0:
        return False
    width, height = image.shape[1], image.shape[0]
    band = 0.45 * width
    x0 = width - f * (width + band)
    cv2.rectangle(image, (round(x0), 0), (round(x0 + band), height), (70, 45, 35), -1)
    covered = max(0.0, min(x0 + band, truth.x + truth.w) - max(x0, truth.x))
    return covered > 0.5 * truth.w


def lookalike_box() -> PixelBox:
    """The look-alike on the twin shelf (canvas px): the target's size, TWIN_GAP to its left."""
    return PixelBox(_T.x - TWIN_GAP - _T.w, _T.y, _T.w, _T.h)


def twin_canvas() -> np.ndarray:
    """The shelf with a second green bag ("MULTIGRAIN" on its yellow label) in place of the
    white pack, right left of the target ("GLUTEN FREE")."""
    canvas = draw_shelf(*CANVAS, 0)
    slot = product_box(TARGET[0], 1)
    x0, y0, x1, y1 = int(slot.x), int(slot.y), int(_T.x) - 1, int(slot.y + slot.h)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), (70, 80, 90), -1)  # the white pack gone
    twin = lookalike_box()
    corners = (int(twin.x), int(twin.y), int(twin.x + twin.w), int(twin.y + twin.h))
    scale = max(0.4, CANVAS[0] / 1600)
    _draw_bag(
        canvas,
        corners,
        SHELVES[TARGET[0]][TARGET[1]][1],
        "MULTIGRAIN",
        scale,
        max(1, int(scale * 2)),
    )
    return canvas


def _wall(middle: np.ndarray) -> np.ndarray:
    """WALL tiles of shelves with `middle` in the middle; elsewhere the green bag's slot holds
    an orange box, so the only green bags are the target and its twin."""
    other = draw_shelf(*CANVAS, 0)
    slot = product_box(*TARGET)
    x0, y0 = int(slot.x), int(slot.y)
    x1, y1 = int(slot.x + slot.w), int(slot.y + slot.h)
    cv2.rectangle(other, (x0, y0), (x1, y1), (70, 80, 90), -1)
    cv2.rectangle(other, (x0 + 40, y0), (x1 - 40, y1), (30, 140, 240), -1)
    rows = [[middle if (i, j) == (1, 1) else other for i in range(WALL[0])] for j in range(WALL[1])]
    return np.vstack([np.hstack(row) for row in rows])


def _in_view(box: PixelBox, size: tuple[int, int] = OUT) -> PixelBox:
    x0, y0 = max(0.0, box.x), max(0.0, box.y)
    x1, y1 = min(float(size[0]), box.x + box.w), min(float(size[1]), box.y + box.h)
    return PixelBox(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))


def write_video(name: str, path: Path) -> list[SceneFrame]:
    """Scenario `name` as an MJPG AVI at FPS (what `--camera FILE` plays); its frames."""
    frames = list(render(name))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, OUT)
    for frame in frames:
        writer.write(frame.image)
    writer.release()
    return frames
