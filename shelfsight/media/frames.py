"""FrameSampler: the camera's freshest frame as a JPEG every `interval_s`, ready to send.

Ticks follow absolute deadlines (start + k * interval) so the rate does not drift with encode
time; a tick whose camera is stalled yields nothing and the next tick tries again. Resizing and
JPEG encoding run in `asyncio.to_thread`, never on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Protocol

import cv2
import numpy as np

from shelfsight.core.frames import THUMB_SIZE, EncodedFrame
from shelfsight.media.camera import Frame


class FrameSource(Protocol):
    """What the sampler needs from a camera (Camera implements it)."""

    async def frame(self, timeout_s: float = 2.0) -> Frame | None: ...


LIGHT_MAX_SIDE = 384  # a slow link's pictures: about 8-12 KB instead of 30-40 KB
LIGHT_QUALITY = 55


class FrameSampler:
    """Turns a FrameSource into JPEGs at `fps`; the rate can be changed while running.

    Owned by one task: iterate `frames()` from a single consumer. `interval_s` may be set from
    the same event loop at any time (e.g. a slower rate while the user is silent); a sleeping
    tick is woken and rescheduled from the previous tick. `light` (set likewise) makes small
    pictures, for an upload that has little room left after the audio.
    """

    def __init__(
        self,
        source: FrameSource,
        *,
        fps: float = 1.0,
        max_side: int = 1024,
        jpeg_quality: int = 80,
    ) -> None:
        if fps <= 0 or max_side <= 0 or not 1 <= jpeg_quality <= 100:
            raise ValueError("fps and max_side must be > 0 and jpeg_quality in 1..100")
        self._source = source
        self._interval_s = 1.0 / fps
        self._max_side = max_side
        self._jpeg_quality = jpeg_quality
        self._rate_changed = asyncio.Event()
        self.light = False

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @interval_s.setter
    def interval_s(self, value: float) -> None:
        if value <= 0:
            raise ValueError("interval_s must be > 0")
        self._interval_s = value
        self._rate_changed.set()

    async def frames(self) -> AsyncIterator[EncodedFrame]:
        """Yield one EncodedFrame per tick, skipping ticks where the camera has no frame."""
        t_tick = time.monotonic()
        while True:
            timeout_s = max(0.1, min(2.0, 0.8 * self._interval_s))
            frame = await self._source.frame(timeout_s=timeout_s)
            if frame is not None:
                yield await self._encode(frame)
            t_tick = await self._sleep_until_next_tick(t_tick)

    async def _sleep_until_next_tick(self, t_previous: float) -> float:
        """Sleep to t_previous + interval (re-read if the rate changes); returns the tick time."""
        while True:
            self._rate_changed.clear()
            t_next = t_previous + self._interval_s
            now = time.monotonic()
            if now >= t_next:
                # Late (slow consumer or encode): skip missed ticks instead of bursting.
                return t_next if now - t_next < self._interval_s else now
            try:
                async with asyncio.timeout(t_next - now):
                    await self._rate_changed.wait()
            except TimeoutError:
                return t_next

    async def _encode(self, frame: Frame) -> EncodedFrame:
        max_side, quality = self._max_side, self._jpeg_quality
        if self.light:
            max_side, quality = min(max_side, LIGHT_MAX_SIDE), min(quality, LIGHT_QUALITY)
        jpeg, width, height, thumb = await asyncio.to_thread(
            _encode_with_thumb, frame.image, max_side, quality
        )
        return EncodedFrame(
            jpeg=jpeg,
            width=width,
            height=height,
            t_capture=frame.t_capture,
            t_encoded=time.monotonic(),
            seq=frame.seq,
            thumb=thumb,
        )


def _encode_with_thumb(
    image: np.ndarray, max_side: int, quality: int
) -> tuple[bytes, int, int, bytes]:
    jpeg, width, height = encode_jpeg(image, max_side, quality)
    return jpeg, width, height, thumbnail(image)


def thumbnail(image: np.ndarray) -> bytes:
    """The picture at THUMB_SIZE in grey (uint8 bytes): enough to tell a changed scene from
    camera noise, ~0.1 ms. Worker thread."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small: np.ndarray = cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA)
    return small.astype(np.uint8).tobytes()


def encode_jpeg(image: np.ndarray, max_side: int, quality: int) -> tuple[bytes, int, int]:
    """Shrink so the long side is at most max_side (never enlarge) and JPEG-encode.

    Runs on a worker thread; returns (jpeg bytes, width, height).
    """
    height, width = image.shape[:2]
    scale = max_side / max(width, height)
    if scale < 1.0:
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for a {width}x{height} frame")
    return buffer.tobytes(), width, height
