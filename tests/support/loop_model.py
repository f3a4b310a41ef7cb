"""The stand-in's model for the closed-loop bench: it marks what a vision model would mark.

Every turn (the question, a re-ask, a "is it in view?" or a re-confirm: the texts do not
matter) is answered from the last picture the stand-in got. The picture's corner code names
the camera frame, so the camera's log says where the camera pointed and what passed in front;
from that the item's box in THAT picture follows. Then, as a model would:

- the item at least half in the picture (or filling a quarter of it), at least 5 px wide in
  it (the picture the model got, 768 px wide) and not half covered: `mark_item` with its box,
  off by a few percent of the box's size and a pixel or two at each edge; below 12 px wide,
  with a look-alike beside it, it boxes the look-alike instead one time in three (both are a
  few pixels of the same colour);
- in the picture but covered, or a speck under 5 px: no call, and nothing said (the guide's
  instruction: answer its messages only with a function call, never aloud);
- out of the picture: `point_camera` with the direction towards it (left, up-right, ...).

The answer comes `latency_s` after the turn (0.5 s: a function call from a Live model on a
short turn; the bench can set it). Runs on the stand-in's worker thread (see
shelfsight.standin.config.ModelHook).
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from shelfsight.guide.box import PixelBox
from shelfsight.standin import SILENT_PCM, ScriptedAnswer, ScriptedCall
from tests.support.shelf_camera import FrameInfo, FrameLog, read_code
from tests.support.shelf_world import Pack, Shelf

MIN_PX, CONFUSE_PX, CONFUSE_P = 5.0, 12.0, 1 / 3
BOX_ERROR, EDGE_PX = 0.03, 1.5
DIRECTIONS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")


@dataclass(frozen=True)
class ModelTurn:
    """One answer, for the bench's record."""

    t: float
    seq: int | None  # the camera frame the picture was (None: its code did not read)
    call: str  # "mark_item", "point_camera", "none"
    marked: str  # "target", "lookalike", ""


class LoopModel:
    def __init__(self, shelf: Shelf, log: FrameLog, seed: int, latency_s: float = 0.5) -> None:
        self.shelf, self.log, self.latency_s = shelf, log, latency_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.turns: list[ModelTurn] = []

    def __call__(self, text: str | None, picture: bytes | None) -> ScriptedAnswer:
        t0 = time.monotonic()
        image = None if picture is None else cv2.imdecode(np.frombuffer(picture, np.uint8), 1)
        code = None if image is None else read_code(image)
        info = None if code is None else self.log.get(code)
        with self._lock:  # one rng, and turns may overlap
            call, marked = self._answer(info, image.shape[1] if image is not None else 768)
            self.turns.append(
                ModelTurn(t0, info.seq if info else None, call.name if call else "none", marked)
            )
        time.sleep(max(0.0, t0 + self.latency_s - time.monotonic()))
        if call is None:  # nothing to call: silent, as the guide's instruction asks
            return ScriptedAnswer(text or "", "", SILENT_PCM)
        return ScriptedAnswer(text or "", "", SILENT_PCM, tool_calls=(call,))

    def _answer(self, info: FrameInfo | None, width_px: int) -> tuple[ScriptedCall | None, str]:
        if info is None:
            return None, ""
        name = self.shelf.name
        target = _nearest(info, self.shelf.facings(self.shelf.target))
        seen = _seen(info, target)
        if seen is None:
            view = info.pose.view_of(target)
            if 0 <= view.cx <= 1 and 0 <= view.cy <= 1:
                return None, ""  # there, but covered
            return ScriptedCall("point_camera", {"direction": _direction(view), "name": name}), ""
        marked, box = "target", seen
        if seen.w * width_px < CONFUSE_PX and self._rng.random() < CONFUSE_P:
            twins = self.shelf.facings(self.shelf.lookalike)
            other = _seen(info, _nearest(info, twins)) if twins else None
            if other is not None:
                marked, box = "lookalike", other
        if box.w * width_px < MIN_PX:
            return None, ""  # a speck: "too small to make out from here"
        box_2d = self._box_2d(box, width_px)
        return ScriptedCall("mark_item", {"box_2d": box_2d, "name": name}), marked

    def _box_2d(self, box: PixelBox, width_px: int) -> list[int]:
        """[ymin, xmin, ymax, xmax] on 0-1000 with a model's error."""
        height_px = width_px * 9 / 16

        def edge(v: float, size: float, px: float) -> int:
            err = self._rng.gauss(0, BOX_ERROR) * size + self._rng.gauss(0, EDGE_PX) / px
            return round(min(1.0, max(0.0, v + err)) * 1000)

        ymin, xmin = edge(box.y, box.h, height_px), edge(box.x, box.w, width_px)
        ymax, xmax = edge(box.y + box.h, box.h, height_px), edge(box.x + box.w, box.w, width_px)
        return [ymin, xmin, max(ymax, ymin + 5), max(xmax, xmin + 5)]


def _nearest(info: FrameInfo, packs: list[Pack]) -> PixelBox:
    """The facing nearest the picture's centre."""

    def off_centre(pack: Pack) -> float:
        view = info.pose.view_of(pack.box)
        return math.hypot(view.cx - 0.5, view.cy - 0.5)

    return min(packs, key=off_centre).box


def covered(info: FrameInfo, box: PixelBox) -> bool:
    """Something passing in front hides at least half of `box` (shelf px) in this frame."""
    view = info.pose.view_of(box)
    if info.passer is None or view.w <= 0 or view.h <= 0:
        return False
    px0, py0, px1, py1 = info.passer
    ix = max(0.0, min(view.x + view.w, px1) - max(view.x, px0))
    iy = max(0.0, min(view.y + view.h, py1) - max(view.y, py0))
    return ix * iy >= 0.5 * view.w * view.h


def _seen(info: FrameInfo, box: PixelBox) -> PixelBox | None:
    """`box`'s part in the picture (fractions) if a model would see the item, else None."""
    view = info.pose.view_of(box)
    x0, y0 = max(0.0, view.x), max(0.0, view.y)
    x1, y1 = min(1.0, view.x + view.w), min(1.0, view.y + view.h)
    if x1 <= x0 or y1 <= y0:
        return None
    large = x1 - x0 >= 0.25 and y1 - y0 >= 0.25  # close up: more than the picture holds
    if (x1 - x0) * (y1 - y0) < 0.5 * view.w * view.h and not large:
        return None
    part = PixelBox(x0, y0, x1 - x0, y1 - y0)
    if info.passer is not None:
        px0, py0, px1, py1 = info.passer
        ix = max(0.0, min(x1, px1) - max(x0, px0))
        iy = max(0.0, min(y1, py1) - max(y0, py0))
        if ix * iy >= 0.5 * part.w * part.h:
            return None
    return part


def _direction(view: PixelBox) -> str:
    """One of eight directions from the picture's centre towards the item."""
    angle = math.atan2(view.cy - 0.5, (view.cx - 0.5) * 16 / 9)  # y down, in square units
    return DIRECTIONS[round(angle / (math.pi / 4)) % 8]
