"""Following a marked box from frame to frame: multi-scale template matching, nothing to
download.

opencv-python (no contrib) ships TrackerMIL (slow, and it never says it has lost the target)
and TrackerNano/Vit/DaSiamRPN, which need model files fetched separately; CSRT and KCF need
opencv-contrib. Normalised cross-correlation of the marked patch does what guidance needs: it
follows pan, tilt and walking closer (three sizes a frame, around the size its recent growth
predicts, of the patch the model marked: a template refreshed from the tracked patch every
frame takes in the zoom and never grows; it is cut again only where the model has just agreed
with the followed box, `refresh`), and its score says when the item is gone
(occluded, out of view), which is when the guide must stop steering and re-find it: then the
whole frame is searched at several sizes.

Look-alikes (issue 23; bench/trackers.py): a pack of the same colour and size next to the item
scores nearly as well as the item itself (0.92 against 0.98-1.0 on the rendered shelf).
So the tracker keeps to the item: a frame's match must lie within half the template of the
last one (the window reaches past the frame's edges, so an item leaving the view keeps
matching there instead of the template jumping to a neighbour that fits; less than half of
it in view counts as lost); it learns how well look-alikes match (the best match away from
the item in the first frame, and once every LOOKALIKE_EVERY frames while tracking); and a
re-find must beat that by LOOKALIKE_MARGIN and stand out from the second-best place by as
much. Where it cannot tell them apart it stays lost and the guide asks the model again.

Cost: one resize plus a few colour matchTemplate calls on a 320 px wide image, a few ms a
frame (bench/guide.py prints it). Not thread-safe: one tracker per guide worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from shelfsight.guide.box import PixelBox

WORK_WIDTH = 320  # px: frames are tracked at this width, in colour
TRACK_SCALES = (0.96, 1.0, 1.04)  # around the size predicted from the last frames' growth
GROWTH = (0.9, 1.12)  # the predicted growth a frame is kept within this (walking closer at
# the hand's limit doubles the item's size a second: 1.047 a frame at 15 frames tracked a second)
FIND_SCALES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4)
TRACK_SCORE = 0.55  # below this the item is taken as lost
FIND_SCORE = 0.7  # a re-found item must match this well (a whole-frame search)
MIN_SIDE_PX = 8  # at work width
CONTEXT = 0.15  # the template takes this much of the box's size around it on every side: a
# plain-coloured pack matches itself at any smaller size; its edges fix the size and place
NEAR = 0.5  # of the template's size: how far the item may move between two frames...
STEP_PX = (12.0, 40.0)  # ...but at least and at most this far (work px; 40 a frame at 30 fps
# crosses the view 3.7 times a second)
REFINE_SCALES = (0.94, 0.97, 1.0, 1.03, 1.06)  # a re-found item's size, finer
LOOKALIKE_EVERY = 15  # frames between whole-frame looks for look-alikes while tracking
LOOKALIKE_MARGIN = 0.03  # a re-found item beats look-alikes and the second-best place by this


@dataclass(frozen=True)
class _Match:
    box: PixelBox  # work px, with context
    score: float
    size: float  # relative to the marked patch
    runner_up: float  # the best score at that size more than NEAR of a template away


@dataclass(frozen=True)
class Fix:
    """Where the item is against where it was followed: centre offset in the followed box's
    widths and heights, and how much wider and taller it is."""

    dx: float = 0.0
    dy: float = 0.0
    w: float = 1.0
    h: float = 1.0


@dataclass(frozen=True)
class Track:
    """The tracker's answer for one frame (box in that frame's pixels)."""

    box: PixelBox
    score: float
    lost: bool


class TemplateTracker:
    def __init__(self) -> None:
        self._scale = 1.0  # work px per frame px
        self._frame = (1, 1)  # work image height, width
        self._box = PixelBox(0, 0, 0, 0)  # work px, with context; may reach past the frame
        self._inner = (0.0, 0.0, 1.0, 1.0)  # the item within the template: x, y, w, h fractions
        self._template: np.ndarray = np.zeros((1, 1), np.uint8)  # the marked patch, work px
        self._size = 1.0  # how large the item is now, relative to the marked patch
        self._growth = 1.0  # how much it grew a frame, lately (smoothed; walking closer > 1)
        self._lost = True
        self._lookalike = 0.0  # the best score seen of a match away from the item
        self._frames = 0
        self._settle = False  # the next frame searches all sizes near the box (a fresh mark
        # is about a picture up to a second old: the camera may have come closer since)

    def start(self, image: np.ndarray, box: PixelBox) -> None:
        """Begin following `box` (frame pixels) in BGR `image`."""
        gray = self._gray(image)
        self._anchor(gray, box.scaled(self._scale))
        self._growth = 1.0
        self._lost, self._frames, self._settle = False, 0, True
        self._lookalike = self._away_score(gray)

    def _anchor(self, gray: np.ndarray, inner: PixelBox) -> None:
        """Take the template of the item at `inner` (work px) in `gray`, with CONTEXT around
        it cut where the frame ends, at size 1."""
        b = _clamp(_grow(inner, CONTEXT), gray.shape)
        self._box = b
        self._inner = ((inner.x - b.x) / b.w, (inner.y - b.y) / b.h, inner.w / b.w, inner.h / b.h)
        self._template, self._size = _cut(gray, b), 1.0

    def _item(self) -> PixelBox:
        """The item's box within the template's (work px; may reach past the frame)."""
        b, (fx, fy, fw, fh) = self._box, self._inner
        return PixelBox(b.x + fx * b.w, b.y + fy * b.h, fw * b.w, fh * b.h)

    @property
    def size(self) -> float:
        """How large the item is now against the patch it was marked with (2: twice as wide)."""
        return self._size

    def refresh(self, image: np.ndarray, fix: Fix | None = None) -> None:
        """Cut the template again where the item is followed now in `image` (the frame of the
        last `update`), at the size it has now, moved and resized by `fix` (where the model
        put it against where it was followed, in a picture of a moment ago): a template marked
        far away and enlarged with the approach loses the detail that tells the item from its
        neighbours, and a followed box that lags the item's growth makes the chime late. Only
        when that place is trusted (the model has just agreed with it); nothing while lost."""
        if self._lost:
            return
        inner = self._item()
        if fix is not None:
            w, h = inner.w * fix.w, inner.h * fix.h
            cx, cy = inner.cx + fix.dx * inner.w, inner.cy + fix.dy * inner.h
            inner = PixelBox(cx - w / 2, cy - h / 2, w, h)
        self._anchor(self._gray(image), inner)

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
        self._frames += 1
        b = self._box
        self._box = PixelBox(b.x + moved[0] * self._scale, b.y + moved[1] * self._scale, b.w, b.h)
        if self._settle and not self._lost:
            self._settle = False
            b = self._box  # room for the largest size, and a little movement
            dx, dy = 0.8 * b.w + STEP_PX[0], 0.8 * b.h + STEP_PX[0]
            near = PixelBox(b.cx - dx, b.cy - dy, 2 * dx, 2 * dy)
            found = self._search(gray, near, FIND_SCALES)
            if found is not None and found.score >= TRACK_SCORE:
                found = self._refine(gray, found)
                self._box, self._size = found.box, found.size
                self._lost = self._mostly_out()
                return self._track(found.score, lost=self._lost)
        if not self._lost:
            found = self._search(gray, self._near(), TRACK_SCALES, self._size * self._growth)
            if found is not None and found.score >= TRACK_SCORE:
                step = min(max(found.size / self._size, GROWTH[0]), GROWTH[1])
                self._growth = min(max((self._growth * step) ** 0.5, GROWTH[0]), GROWTH[1])
                self._box, self._size = found.box, found.size
                if self._frames % LOOKALIKE_EVERY == 0:
                    self._lookalike = max(self._lookalike, self._away_score(gray))
                self._lost = self._mostly_out()
                return self._track(found.score, lost=self._lost)
            self._lost = True
        regions = [self._around(gray.shape)] if self._overlaps(gray.shape) else []
        if anywhere:
            regions.append(PixelBox(0, 0, gray.shape[1], gray.shape[0]))
        best = 0.0
        for region in regions:
            refound, score = self._refind(gray, region)
            if refound:
                return self._track(score, lost=False)
            best = max(best, score)
        return self._track(best, lost=True)

    def _refind(self, gray: np.ndarray, region: PixelBox) -> tuple[bool, float]:
        """Look for the lost item in `region` at several sizes, then finer around the best
        place; take it only if it beats the look-alikes seen and the second-best place by
        LOOKALIKE_MARGIN. Whether it was taken, and the best score."""
        found = self._search(gray, region, FIND_SCALES)
        if found is None or found.score < FIND_SCORE:
            return False, found.score if found is not None else 0.0
        last_size, self._size = self._size, found.size
        self._growth = 1.0
        fine = self._refine(gray, found)
        bar = max(FIND_SCORE, self._lookalike + LOOKALIKE_MARGIN)
        if fine.score >= bar and fine.score - found.runner_up >= LOOKALIKE_MARGIN:
            self._lost = False
            self._box, self._size = fine.box, fine.size
            return True, fine.score
        self._size = last_size
        return False, fine.score

    def _refine(self, gray: np.ndarray, found: _Match) -> _Match:
        """`found` again, at sizes REFINE_SCALES apart around its own, near its place."""
        b = found.box
        around = PixelBox(b.x - b.w / 4, b.y - b.h / 4, 1.5 * b.w, 1.5 * b.h)
        return self._search(gray, around, REFINE_SCALES, found.size) or found

    def _overlaps(self, shape: tuple[int, ...]) -> bool:
        b = self._box
        return b.x + b.w > 0 and b.y + b.h > 0 and b.x < shape[1] and b.y < shape[0]

    def _track(self, score: float, lost: bool) -> Track:
        """The item's box in frame pixels: its part in the frame while found; where it must
        be while lost (even out of the picture)."""
        inner = self._item()
        if not lost:
            x0, y0 = max(0.0, inner.x), max(0.0, inner.y)
            x1 = min(self._frame[1], inner.x + inner.w)
            y1 = min(self._frame[0], inner.y + inner.h)
            inner = PixelBox(x0, y0, max(1.0, x1 - x0), max(1.0, y1 - y0))
        return Track(inner.scaled(1 / self._scale), score, lost)

    def _mostly_out(self) -> bool:
        """Less than half of the item's width or height in the frame: taken as out of view."""
        item = self._item()
        seen_w = min(self._frame[1], item.x + item.w) - max(0.0, item.x)
        seen_h = min(self._frame[0], item.y + item.h) - max(0.0, item.y)
        return seen_w < item.w / 2 or seen_h < item.h / 2

    def _away_score(self, gray: np.ndarray) -> float:
        """How well the best match away from the item scores now (a look-alike, if any)."""
        whole = PixelBox(0, 0, gray.shape[1], gray.shape[0])
        found = self._search(gray, whole, (1.0,))
        if found is None:
            return 0.0
        b = found.box
        here = abs(b.cx - self._box.cx) < NEAR * b.w and abs(b.cy - self._box.cy) < NEAR * b.h
        return found.runner_up if here else found.score

    def _gray(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        self._scale = WORK_WIDTH / width
        size = (WORK_WIDTH, max(1, round(height * self._scale)))
        self._frame = (size[1], size[0])
        # Colour, not grey: packs of one shelf often differ mostly in colour.
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def _near(self) -> PixelBox:
        """Where a followed item can be now: NEAR of a template (within STEP_PX) around the
        last place, reaching past the frame's edges by half a template at most."""
        b, (height, width) = self._box, self._frame
        dx, dy = (min(max(NEAR * side, STEP_PX[0]), STEP_PX[1]) for side in (b.w, b.h))
        x0, y0 = max(-b.w / 2, b.x - dx), max(-b.h / 2, b.y - dy)
        x1 = min(width + b.w / 2, b.x + b.w + dx)
        y1 = min(height + b.h / 2, b.y + b.h + dy)
        return PixelBox(round(x0), round(y0), round(x1 - x0), round(y1 - y0))

    def _around(self, shape: tuple[int, ...]) -> PixelBox:
        """Where to look for a lost item near the place kept for it."""
        b, margin = self._box, max(self._box.w, self._box.h, 24.0)
        grown = PixelBox(b.x - margin, b.y - margin, b.w + 2 * margin, b.h + 2 * margin)
        return _clamp(grown, shape)

    def _search(
        self,
        gray: np.ndarray,
        region: PixelBox,
        scales: tuple[float, ...],
        around: float | None = None,
    ) -> _Match | None:
        """The best match inside `region` (work px; past the frame's edges the edge pixels
        are repeated) at `around` (default: the current size) times each of `scales`."""
        window = _window(gray, region)
        if window is None:
            return None
        best: _Match | None = None
        for s in scales:
            size = (self._size if around is None else around) * s
            th, tw = round(self._template.shape[0] * size), round(self._template.shape[1] * size)
            if min(th, tw) < MIN_SIDE_PX or th > window.shape[0] or tw > window.shape[1]:
                continue
            scaled = cv2.resize(self._template, (tw, th), interpolation=cv2.INTER_LINEAR)
            result = cv2.matchTemplate(window, scaled, cv2.TM_CCOEFF_NORMED)
            _, score, _, (mx, my) = cv2.minMaxLoc(result)
            if best is None or score > best.score:
                box = PixelBox(region.x + mx, region.y + my, tw, th)
                best = _Match(box, float(score), size, _runner_up(result, mx, my, tw, th))
        return best


def _window(gray: np.ndarray, region: PixelBox) -> np.ndarray | None:
    """`region` of `gray`, its part past the edges filled with the edge pixels; None if no
    part of it is in the picture."""
    height, width = gray.shape[:2]
    x0, y0 = int(region.x), int(region.y)
    x1, y1 = x0 + int(region.w), y0 + int(region.h)
    window = gray[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)]
    if window.size == 0:
        return None
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        return window
    pads = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    return cv2.copyMakeBorder(window, *pads, cv2.BORDER_REPLICATE)


def _runner_up(result: np.ndarray, mx: int, my: int, tw: int, th: int) -> float:
    """The best score in `result` more than NEAR of a template away from (mx, my)."""
    rest = result.copy()
    dx, dy = int(NEAR * tw), int(NEAR * th)
    rest[max(0, my - dy) : my + dy + 1, max(0, mx - dx) : mx + dx + 1] = -1.0
    return float(rest.max())


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
