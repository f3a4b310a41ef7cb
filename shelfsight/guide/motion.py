"""How far the camera moved between two frames: the whole picture's shift, by phase
correlation of small grey images.

The guide keeps a lost item's place with it (dead reckoning): an item that left the picture on
the left stays on the left until the user turns back, and one hidden by a passing hand stays
where it was, so the ticks keep leading the right way while the tracker cannot see it. Only
translation is measured (walking closer is not); a weak correlation peak (a blank wall, heavy
blur, a hand filling the picture) counts as no measure, never as a jump.

Cost: one resize and one `phaseCorrelate` on 160 px wide images, well under a millisecond.
Not thread-safe: one per guide (its worker thread).
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_WIDTH = 160  # px
MIN_RESPONSE = 0.08  # phase correlation peak below this: no reliable measure
REKEY = 0.15  # of the picture's size: moved this far from the key frame, take a new one


class CameraMotion:
    """Shifts are measured against a key frame, not frame to frame: slow pans move a fraction
    of a pixel a frame at this size, where phase correlation's error would add up; a new key
    frame is taken once the picture has moved `REKEY` of its size from the last one."""

    def __init__(self) -> None:
        self._key: np.ndarray | None = None
        self._key_at = (0.0, 0.0)  # where the key frame is, in work px from the first frame
        self._at = (0.0, 0.0)  # where the last frame was
        self._window: np.ndarray | None = None
        self._scale = 1.0  # work px per frame px

    def reset(self) -> None:
        self._key = None

    def shift(self, image: np.ndarray) -> tuple[float, float]:
        """How far the scene moved in the picture since the last call, in this frame's pixels
        (dx > 0: the scene moved right, as when the camera turns left); (0, 0) at the first
        frame or when the measure is unreliable."""
        small = self._small(image)
        if self._key is None or self._key.shape != small.shape:
            self._rekey(small)
            return 0.0, 0.0
        if self._window is None or self._window.shape != small.shape:
            self._window = cv2.createHanningWindow(small.shape[::-1], cv2.CV_32F)
        (dx, dy), response = cv2.phaseCorrelate(self._key, small, self._window)
        if response < MIN_RESPONSE:
            self._rekey(small)
            return 0.0, 0.0
        at = (self._key_at[0] + dx, self._key_at[1] + dy)
        step = (at[0] - self._at[0]) / self._scale, (at[1] - self._at[1]) / self._scale
        self._at = at
        if abs(dx) > REKEY * small.shape[1] or abs(dy) > REKEY * small.shape[0]:
            self._rekey(small)
        return step

    def _rekey(self, small: np.ndarray) -> None:
        self._key, self._key_at = small, self._at

    def _small(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        self._scale = WORK_WIDTH / width
        size = (WORK_WIDTH, max(8, round(height * self._scale)))
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)
