"""Gemini's `box_2d`: [ymin, xmin, ymax, xmax], integers on a 0-1000 grid over the image,
origin top left. Checked here, so a malformed box from the model becomes an answer it can act
on (see shelfsight.tools.calls), never an exception in the tracker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shelfsight.errors import BadArgs

GRID = 1000
MIN_SIDE = 5  # grid units: a box smaller than 0.5 % of the picture cannot be followed


@dataclass(frozen=True)
class PixelBox:
    """A box in pixels of one frame: left, top, width, height (floats)."""

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def scaled(self, factor: float) -> PixelBox:
        return PixelBox(self.x * factor, self.y * factor, self.w * factor, self.h * factor)

    def iou(self, other: PixelBox) -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


def parse_box_2d(value: Any) -> tuple[float, float, float, float]:
    """[ymin, xmin, ymax, xmax] checked; BadArgs saying what is wrong otherwise."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 4:
        raise BadArgs("'box_2d' must be [ymin, xmin, ymax, xmax] on a 0-1000 grid.")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise BadArgs("'box_2d' must hold four numbers.")
    ymin, xmin, ymax, xmax = (float(v) for v in value)
    if not all(0 <= v <= GRID for v in (ymin, xmin, ymax, xmax)):
        raise BadArgs("'box_2d' values must be between 0 and 1000.")
    if ymax - ymin < MIN_SIDE or xmax - xmin < MIN_SIDE:
        raise BadArgs("'box_2d' is empty or too small: ymin < ymax and xmin < xmax.")
    return ymin, xmin, ymax, xmax


def to_pixels(box_2d: tuple[float, float, float, float], width: int, height: int) -> PixelBox:
    ymin, xmin, ymax, xmax = box_2d
    return PixelBox(
        xmin / GRID * width,
        ymin / GRID * height,
        (xmax - xmin) / GRID * width,
        (ymax - ymin) / GRID * height,
    )


def to_box_2d(box: PixelBox, width: int, height: int) -> list[int]:
    """The other way (for scripted calls in tests and benchmarks)."""
    return [
        round(box.y / height * GRID),
        round(box.x / width * GRID),
        round((box.y + box.h) / height * GRID),
        round((box.x + box.w) / width * GRID),
    ]
