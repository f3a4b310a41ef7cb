"""Following a marked box from frame to frame: multi-scale template matching, nothing to
download.

opencv-python (no contrib) ships TrackerMIL (slow, and it never says it has lost the target)
and TrackerNano/Vit/DaSiamRPN, which need model files fetched separately; CSRT and KCF need
opencv-contrib. Normalised cross-correlation of the marked patch does what guidance needs: it
follows pan, tilt and walking closer (three sizes a frame, around the size it had in the
last frame, always of the patch the model marked: a template refreshed from the tracked
patch takes in the zoom and never grows), and its score says when the item is gone
(occluded, out of view), which is when the guide must stop steering and re-find it: then the
whole frame is searched at several sizes.

Cost: one resize plus a few colour matchTemplate calls on a 320 px wide image, a few ms a
frame (bench/guide.py prints it). Not thread-safe: one tracker per guide worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from shelfsight.guide.box import PixelBox

WORK_WIDTH = 320  # px: frames are tracked at this width, in colour
TRACK_SCALES = (0.97, 1.0, 1.03)
FIND_SCALES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4)
TRACK_SCORE = 0.55  # below this the item is taken as lost
FIND_SCORE = 0.7  # a re-found item must match this well (a whole-frame search)
MIN_SIDE_PX = 8  # at work width
CONTEXT = 0.15  # the template takes this much of the box's size around it on every side: a
# plain-coloured pack matches itself at any smaller size; its edges fix the size and place


@dataclass(frozen=True)
class Track:
    """The tracker's answer for one frame (box in that frame's pixels)."""

    box: PixelBox
    score: float
    lost: bool


class TemplateTracker:
    def __init__(self) -> None:
        self._scale = 1.0  # work px per frame px
        self._box = PixelBox(0, 0, 0, 0)  # work px
        self._template: np.ndarray = np.zeros((1, 1), np.uint8)  # the marked patch, work px
        self._size = 1.0  # how large the item is now, relative to the marked patch
        self._lost = True

    def start(self, image: np.ndarray, box: PixelBox) -> None:
        """Begin following `box` (frame pixels) in BGR `image`."""
        gray = self._gray(image)
        b = _clamp(_grow(box.scaled(self._scale), CONTEXT), gray.shape)
        self._box = b
        self._template, self._size = _cut(gray, b), 1.0
        self._lost = False

    def shift(self, dx: float, dy: float) -> None:
        """The scene moved (dx, dy) frame px since the frame the box is about (a mark given
        for an older picture): look for the item there."""
        b = self._box
        self._box = PixelBox(b.x + dx * self._scale, b.y + dy * self._scale, b.w, b.h)

    def update(
        self, image: np.ndarray, moved: tuple[float, float] = (0.0, 0.0), *, anywhere: bool = True
    ) -> Track:
        """Find the item in BGR `image`. `moved`: how far the scene shifted since the last frame
        (frame px, `guide.motion`), so the search starts where the item must now be, and a lost
        item's box (returned with `lost=True`) stays in place with the scene, even out of the
        picture. A lost item is looked for near that place, and with `anywhere` in the whole
        picture too (where a look-alike may win: the guide asks for it only when that place is
        no longer trusted)."""
        gray = self._gray(image)
        b = self._box
        self._box = PixelBox(b.x + moved[0] * self._scale, b.y + moved[1] * self._scale, b.w, b.h)
        if not self._lost:
            found = self._search(gray, self._around(gray.shape), TRACK_SCALES)
            if found is not None and found[1] >= TRACK_SCORE:
                self._accept(gray, *found)
                return self._track(found[1], lost=False)
            self._lost = True
        regions = [self._around(gray.shape)] if self._overlaps(gray.shape) else []
        if anywhere:
            regions.append(PixelBox(0, 0, gray.shape[1], gray.shape[0]))
        best = 0.0
        for region in regions:
            found = self._search(gray, region, FIND_SCALES)
            if found is not None and found[1] >= FIND_SCORE:
                self._lost = False
                self._accept(gray, *found)
                return self._track(found[1], lost=False)
            best = max(best, found[1] if found is not None else 0.0)
        return self._track(best, lost=True)

    def _overlaps(self, shape: tuple[int, ...]) -> bool:
        b = self._box
        return b.x + b.w > 0 and b.y + b.h > 0 and b.x < shape[1] and b.y < shape[0]

    def _track(self, score: float, lost: bool) -> Track:
        inner = _grow(self._box, -CONTEXT / (1 + 2 * CONTEXT))
        return Track(inner.scaled(1 / self._scale), score, lost)

    def _gray(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        self._scale = WORK_WIDTH / width
        size = (WORK_WIDTH, max(1, round(height * self._scale)))
        # Colour, not grey: packs of one shelf often differ mostly in colour.
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def _around(self, shape: tuple[int, ...]) -> PixelBox:
        b, margin = self._box, max(self._box.w, self._box.h, 24.0)
        grown = PixelBox(b.x - margin, b.y - margin, b.w + 2 * margin, b.h + 2 * margin)
        return _clamp(grown, shape)

    def _search(
        self,
        gray: np.ndarray,
        region: PixelBox,
        scales: tuple[float, ...],
    ) -> tuple[PixelBox, float, float] | None:
        """The best match inside `region` (work px) at the current size times each of
        `scales`: (box, score, size)."""
        x0, y0 = int(region.x), int(region.y)
        window = gray[y0 : y0 + int(region.h), x0 : x0 + int(region.w)]
        best: tuple[PixelBox, float, float] | None = None
        for s in scales:
            size = self._size * s
            th, tw = round(self._template.shape[0] * size), round(self._template.shape[1] * size)
            if min(th, tw) < MIN_SIDE_PX or th > window.shape[0] or tw > window.shape[1]:
                continue
            scaled = cv2.resize(self._template, (tw, th), interpolation=cv2.INTER_LINEAR)
            result = cv2.matchTemplate(window, scaled, cv2.TM_CCOEFF_NORMED)
            _, score, _, (mx, my) = cv2.minMaxLoc(result)
            if best is None or score > best[1]:
                best = (PixelBox(x0 + mx, y0 + my, tw, th), float(score), size)
        return best

    def _accept(self, gray: np.ndarray, box: PixelBox, score: float, size: float) -> None:
        self._box, self._size = box, size


def _clamp(box: PixelBox, shape: tuple[int, ...]) -> PixelBox:
    height, width = shape[0], shape[1]
    x = min(max(0.0, box.x), width - MIN_SIDE_PX)
    y = min(max(0.0, box.y), height - MIN_SIDE_PX)
    w = max(float(MIN_SIDE_PX), min(box.w, width - x))
    h = max(float(MIN_SIDE_PX), min(box.h, height - y))
    return PixelBox(round(x), round(y), round(w), round(h))


def _cut(gray: np.ndarray, box: PixelBox) -> np.ndarray:
    x, y, w, h = int(box.x), int(box.y), int(box.w), int(box.h)
    return np.ascontiguousarray(gray[y : y + h, x : x + w])


def _grow(box: PixelBox, fraction: float) -> PixelBox:
    """`box` grown by `fraction` of its size on every side (negative: shrunk)."""
    dx, dy = box.w * fraction, box.h * fraction
    return PixelBox(box.x - dx, box.y - dy, box.w + 2 * dx, box.h + 2 * dy)
