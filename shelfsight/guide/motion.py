"""How far the camera moved between two frames: the whole picture's shift, by phase
correlation of small grey images.

The guide keeps a lost item's place with it (dead reckoning): an item that left the picture on
the left stays on the left until the user turns back, and one hidden by a passing hand stays
where it was, so the ticks keep leading the right way while the tracker cannot see it. Only
translation is measured (walking closer is not); a weak correlation peak (a blank wall, heavy
blur, a hand filling the picture) counts as no measure, never as a jump.

A shelf repeats itself (facings of one product side by side), so a picture can match another
one shifted by a whole pack: against a key frame far back, or after walking closer, phase
correlation sometimes picks that peak (the closed loop saw jumps of 200 px in one frame, which
threw the tracker off the item). So each frame is also measured against the one before (a
small shift, where no such mistake is likely, and more than a hand can turn in a frame is
taken as no measure); where the two disagree the key frame is taken as stale and the
frame-to-frame measure is used.

Cost: one resize and two `phaseCorrelate` on 160 px wide images, about a millisecond.
Not thread-safe: one per guide (its worker thread).
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_WIDTH = 160  # px
MIN_RESPONSE = 0.08  # phase correlation peak below this: no reliable measure
REKEY = 0.15  # of the picture's size: moved this far from the key frame, take a new one...
KEY_FRAMES = 30  # ...or after this many frames (walking closer changes the picture's scale)
AGREE_PX = 1.5  # work px: the key frame's measure and the last frame's differ more: stale key
MAX_STEP = 0.15  # of the picture's size between two frames (4.5 picture widths a second at
# 30 fps, past the quickest turn of a hand): a larger measure is the scene's repeat, not motion


class CameraMotion:
    """Shifts are measured against a key frame, not frame to frame: slow pans move a fraction
    of a pixel a frame at this size, where phase correlation's error would add up; a new key
    frame is taken once the picture has moved `REKEY` of its size from the last one."""

    def __init__(self) -> None:
        self._key: np.ndarray | None = None
        self._key_at = (0.0, 0.0)  # where the key frame is, in work px from the first frame
        self._key_age = 0  # frames since the key frame was taken
        self._last: np.ndarray | None = None  # the last frame
        self._at = (0.0, 0.0)  # where the last frame was
        self._window: np.ndarray | None = None
        self._scale = 1.0  # work px per frame px

    def reset(self) -> None:
        self._key = self._last = None

    def shift(self, image: np.ndarray) -> tuple[float, float]:
        """How far the scene moved in the picture since the last call, in this frame's pixels
        (dx > 0: the scene moved right, as when the camera turns left); (0, 0) at the first
        frame or when the measure is unreliable."""
        small = self._small(image)
        last, self._last = self._last, small
        if self._key is None or last is None or {last.shape, self._key.shape} != {small.shape}:
            self._rekey(small)
            return 0.0, 0.0
        if self._window is None or self._window.shape != small.shape:
            self._window = cv2.createHanningWindow(small.shape[::-1], cv2.CV_32F)
        (fx, fy), near = cv2.phaseCorrelate(last, small, self._window)
        too_far = abs(fx) > MAX_STEP * small.shape[1] or abs(fy) > MAX_STEP * small.shape[0]
        if near < MIN_RESPONSE or too_far:
            self._rekey(small)
            return 0.0, 0.0
        (dx, dy), response = cv2.phaseCorrelate(self._key, small, self._window)
        at = (self._key_at[0] + dx, self._key_at[1] + dy)
        stale = (
            response < MIN_RESPONSE
            or np.hypot(at[0] - self._at[0] - fx, at[1] - self._at[1] - fy) > AGREE_PX
        )
        if stale:
            at = (self._at[0] + fx, self._at[1] + fy)
        step = (at[0] - self._at[0]) / self._scale, (at[1] - self._at[1]) / self._scale
        self._at = at
        self._key_age += 1
        moved_far = abs(at[0] - self._key_at[0]) > REKEY * small.shape[1]
        moved_far |= abs(at[1] - self._key_at[1]) > REKEY * small.shape[0]
        if stale or moved_far or self._key_age >= KEY_FRAMES:
            self._rekey(small)
        return step

    def _rekey(self, small: np.ndarray) -> None:
        self._key, self._key_at, self._key_age = small, self._at, 0

    def _small(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        self._scale = WORK_WIDTH / width
        size = (WORK_WIDTH, max(8, round(height * self._scale)))
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)
