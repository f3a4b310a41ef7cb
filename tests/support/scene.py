"""A synthetic store shelf, drawn with OpenCV: the demo's camera and the tests' fixture.

Each frame carries its own number twice: printed large for people, and as a row of black and
white blocks along the bottom edge (`read_frame_number`) so tests can tell which frame a
camera handed out even after JPEG compression and resizing.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CODE_BITS = 16
YELLOW = (0, 215, 255)  # BGR
YELLOW_LABELLED = frozenset({"GLUTEN FREE"})  # drawn as a bag with a yellow label

# (label, BGR colour) for each product, shelf by shelf from the top. The demo's answer is about
# the right end of the third shelf: a green bag of gluten-free bread with a yellow label.
SHELVES: list[list[tuple[str, tuple[int, int, int]]]] = [
    [("OATS", (40, 120, 200)), ("RICE", (230, 230, 230)), ("PASTA", (30, 200, 230))],
    [("FLOUR", (200, 200, 240)), ("SUGAR", (250, 250, 250)), ("COCOA", (40, 60, 110))],
    [("RYE", (60, 110, 160)), ("WHITE", (220, 220, 220)), ("GLUTEN FREE", (50, 150, 40))],
    [("CRACKERS", (50, 160, 220)), ("WRAPS", (180, 200, 210)), ("BAGELS", (80, 140, 200))],
]


def draw_shelf(width: int, height: int, frame_number: int = 0) -> np.ndarray:
    """One BGR frame of the shelf, with the frame number burnt in; the view pans slightly."""
    image = np.full((height, width, 3), (70, 80, 90), np.uint8)
    pan = int(0.02 * width * np.sin(frame_number / 15.0))
    shelf_h = (height - height // 10) // len(SHELVES)
    for row, products in enumerate(SHELVES):
        top = row * shelf_h
        cv2.rectangle(image, (0, top + shelf_h - 8), (width, top + shelf_h), (40, 50, 60), -1)
        slot = width // len(products)
        for col, (label, colour) in enumerate(products):
            x0 = col * slot + slot // 8 + pan
            x1 = x0 + slot * 3 // 4
            y0, y1 = top + shelf_h // 5, top + shelf_h - 10
            scale = max(0.4, width / 1600)
            thickness = max(1, int(scale * 2))
            if label in YELLOW_LABELLED:
                _draw_bag(image, (x0, y0, x1, y1), colour, label, scale, thickness)
                continue
            cv2.rectangle(image, (x0, y0), (x1, y1), colour, -1)
            cv2.putText(
                image,
                label,
                (x0 + 6, top + shelf_h // 2),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (20, 20, 20),
                thickness,
                cv2.LINE_AA,
            )
    cv2.putText(
        image,
        f"#{frame_number}",
        (width - width // 5, height - height // 7),
        cv2.FONT_HERSHEY_SIMPLEX,
        max(0.5, width / 1000),
        (255, 255, 255),
        2,
        cv2.LINE_AA,
    )
    _write_code(image, frame_number)
    return image


def _draw_bag(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    colour: tuple[int, int, int],
    label: str,
    scale: float,
    thickness: int,
) -> None:
    """A bag (crimped top, rounded bottom) with a yellow label saying `label` and BREAD."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    body = np.array(
        [
            (x0 + w // 10, y0),
            (x1 - w // 10, y0),
            (x1 - w // 10, y0 + h // 8),
            (x1, y0 + h // 4),
            (x1, y1 - h // 10),
            (x1 - w // 12, y1),
            (x0 + w // 12, y1),
            (x0, y1 - h // 10),
            (x0, y0 + h // 4),
            (x0 + w // 10, y0 + h // 8),
        ],
        np.int32,
    )
    cv2.fillPoly(image, [body], colour, cv2.LINE_AA)
    cv2.line(image, (x0 + w // 10, y0 + h // 8), (x1 - w // 10, y0 + h // 8), (20, 90, 20), 2)
    lx0, ly0, lx1, ly1 = x0 + w // 8, y0 + h * 3 // 10, x1 - w // 8, y1 - h // 5
    cv2.rectangle(image, (lx0, ly0), (lx1, ly1), YELLOW, -1)
    for i, text in enumerate((label, "BREAD")):
        y = ly0 + (ly1 - ly0) * (i + 1) // 3 + int(8 * scale)
        cv2.putText(
            image,
            text,
            (lx0 + 6, y),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale * 0.9,
            (20, 20, 20),
            thickness,
            cv2.LINE_AA,
        )


def write_shelf_video(
    path: Path, *, seconds: float, fps: float = 30.0, size: tuple[int, int] = (640, 360)
) -> Path:
    """A video file of the shelf (MJPEG in AVI, which every OpenCV build can write and read)."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path}")
    try:
        for n in range(int(round(seconds * fps))):
            writer.write(draw_shelf(width, height, n))
    finally:
        writer.release()
    return path


def read_frame_number(image: np.ndarray) -> int:
    """Decode the block code drawn by `draw_shelf` (works on resized and JPEG'd frames)."""
    height, width = image.shape[:2]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    band = gray[height - _block(height) :, :]
    step = width / CODE_BITS
    value = 0
    for bit in range(CODE_BITS):
        x = int((bit + 0.5) * step)
        patch = band[:, max(0, x - 2) : x + 3]
        value |= int(patch.mean() > 127) << bit
    return value


def _block(height: int) -> int:
    return max(4, height // 40)


def _write_code(image: np.ndarray, number: int) -> None:
    height, width = image.shape[:2]
    size = _block(height)
    step = width / CODE_BITS
    for bit in range(CODE_BITS):
        shade = 255 if (number >> bit) & 1 else 0
        x0, x1 = int(bit * step), int((bit + 1) * step)
        image[height - size :, x0:x1] = shade
