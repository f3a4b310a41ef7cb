"""`shelfsight demo --guide`: guide mode with no key, camera or network.

A shelf video is rendered on the spot (deterministic, into the cache folder: a few MB of
MJPG that OpenCV plays everywhere) as a phone camera would film it: held still with the bag
right of the centre, panned past it so it goes left, brought back, walked up to. The
built-in stand-in answers the guide key ("Guide me to it.") with the bag's box in that held
picture (`mark_item`), and the guide's checks before the chime with the bag's box in the
picture they send (found by its colour: the stand-in's stand-in for sight); from then on
everything is the real guide: the tracker on every frame, the stereo ticks mixed into the
speaker, the words, the chime.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np

from shelfsight.core.controls import GuideKey, Quit
from shelfsight.guide.box import PixelBox, to_box_2d
from shelfsight.guide.worker import GUIDE_ME
from shelfsight.standin import (
    SILENT_PCM,
    ScriptedAnswer,
    ScriptedCall,
    StandInConfig,
    synth_speech_pcm16,
)

SIZE = (640, 360)  # the video's frame, px
FPS = 15.0
CANVAS = (2400, 1200)  # the shelf, px
ITEM = PixelBox(1500, 520, 300, 170)  # the green bag on the canvas
ITEM_NAME = "gluten-free bread"
ANSWER_TEXT = "Follow the ticks to the green bag."
SECONDS = 14.0
# The camera, by time (s): held with the bag right of centre while the guide key is pressed,
# panned right (the bag goes left), back, then walked up to it.
KEYS: tuple[tuple[float, float, float], ...] = (  # (t, centre x, crop width), canvas px
    (0.0, 1250.0, 1300.0),
    (4.5, 1250.0, 1300.0),
    (7.0, 2000.0, 1300.0),
    (9.0, 1650.0, 1300.0),
    (11.5, 1650.0, 900.0),
    (SECONDS, 1650.0, 900.0),
)
CENTRE_Y = 605.0


def camera_at(t: float) -> tuple[float, float]:
    """(centre x, crop width) of the camera's view at `t` seconds, eased between keys."""
    for (t0, x0, w0), (t1, x1, w1) in zip(KEYS, KEYS[1:], strict=False):
        if t <= t1:
            f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
            f = f * f * (3 - 2 * f)  # a hand eases in and out
            return x0 + (x1 - x0) * f, w0 + (w1 - w0) * f
    return KEYS[-1][1], KEYS[-1][2]


def draw_shelf() -> np.ndarray:
    rng = np.random.default_rng(7)
    width, height = CANVAS
    canvas = np.full((height, width, 3), (60, 70, 82), np.uint8)
    for row, top in enumerate((120, 520, 900)):
        cv2.rectangle(canvas, (0, top + 200), (width, top + 225), (140, 150, 160), -1)  # shelf
        for x in range(40, width - 250, 330):
            if row == 1 and x <= ITEM.x < x + 330:
                continue
            colour = tuple(int(c) for c in rng.integers(40, 230, 3))
            cv2.rectangle(canvas, (x, top), (x + 260, top + 190), colour, -1)
            cv2.putText(
                canvas, ("OATS", "RICE", "TEA", "JAM")[x % 4], (x + 20, top + 110),
                cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 5, cv2.LINE_AA,
            )  # fmt: skip
    x, y, w, h = (int(v) for v in (ITEM.x, ITEM.y, ITEM.w, ITEM.h))
    cv2.rectangle(canvas, (x, y), (x + w, y + h), (50, 160, 60), -1)
    cv2.rectangle(canvas, (x + 20, y + 100), (x + w - 20, y + 150), (0, 220, 255), -1)
    cv2.putText(
        canvas, "GLUTEN FREE", (x + 30, y + 135), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2
    )
    return canvas


def view(canvas: np.ndarray, t: float) -> tuple[np.ndarray, PixelBox]:
    """The camera's frame at `t` and where the bag is in it."""
    cx, cw = camera_at(t)
    ch = cw * SIZE[1] / SIZE[0]
    crop = cv2.getRectSubPix(canvas, (round(cw), round(ch)), (cx, CENTRE_Y))
    frame = cv2.resize(crop, SIZE, interpolation=cv2.INTER_AREA)
    k = SIZE[0] / round(cw)
    x0, y0 = cx - round(cw) / 2, CENTRE_Y - round(ch) / 2
    return frame, PixelBox((ITEM.x - x0) * k, (ITEM.y - y0) * k, ITEM.w * k, ITEM.h * k)


def write_video(path: Path) -> list[int]:
    """Render the video to `path` (replaced whole); the bag's box_2d in its held start."""
    canvas = draw_shelf()
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")  # OpenCV goes by the suffix
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter.fourcc(*"MJPG"), FPS, SIZE)
    if not writer.isOpened():
        raise OSError(f"cannot write {partial}")
    try:
        for n in range(int(SECONDS * FPS)):
            writer.write(view(canvas, n / FPS)[0])
    finally:
        writer.release()
    partial.replace(path)
    return to_box_2d(view(canvas, 0.0)[1], *SIZE)


BAG_BGR = ((35, 140, 40), (70, 185, 85))  # the bag's green, low and high, in any picture


def find_bag(jpeg: bytes) -> list[int] | None:
    """The bag's box_2d in a picture, by its colour; None when it is not in it."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    mask = cv2.inRange(image, np.array(BAG_BGR[0]), np.array(BAG_BGR[1]))
    ys, xs = np.nonzero(mask)
    if len(xs) < 50:
        return None
    height, width = mask.shape
    box = PixelBox(xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    return to_box_2d(box, width, height)


def standin_config(box_2d: list[int], answer_pcm: bytes | None = None) -> StandInConfig:
    """The guide key's question is answered with the bag's box, as the model would, and so
    is each of the guide's own questions, from the picture that came with it."""
    pcm = answer_pcm or synth_speech_pcm16(1.0, 24000)
    mark = ScriptedCall("mark_item", {"box_2d": box_2d, "name": ITEM_NAME})
    answer = ScriptedAnswer(GUIDE_ME, ANSWER_TEXT, pcm, tool_calls=(mark,))

    def model(text: str | None, picture: bytes | None) -> ScriptedAnswer | None:
        if text is None or not text.startswith(("Guide", "The guide")) or picture is None:
            return None  # the script: the guide key's question
        found = find_bag(picture)
        call = (
            ScriptedCall("mark_item", {"box_2d": found, "name": ITEM_NAME})
            if found is not None
            else ScriptedCall("point_camera", {"direction": "right", "name": ITEM_NAME})
        )
        return ScriptedAnswer(text, "", SILENT_PCM, tool_calls=(call,))

    return StandInConfig(answers=(answer,), typed_answers=((GUIDE_ME, answer),), model=model)


async def press_keys(controls: asyncio.Queue[GuideKey | Quit]) -> None:
    """The user: the guide key at once (it waits for the first picture), quit at the end."""
    controls.put_nowait(GuideKey())
    await asyncio.sleep(SECONDS - 0.5)
    controls.put_nowait(Quit())
