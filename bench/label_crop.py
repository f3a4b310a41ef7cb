"""The label's small print, as the model gets it: the whole picture sent today against the
close-up of the item in reach (issue 23, "read the label once there").

A shelf video (the camera held still, the item centred and within reach: a quarter to a third
of the picture wide) at 720p, 1080p and 4K goes through `shelfsight run` (a child process,
typed questions on its standard input, the stand-in over TLS): "guide me to it" (the stand-in
marks the item; the question's own picture is the whole frame, shrunk to 768 px as every
picture is), then, once the chime plays, "what does the small print say?" (its picture is the
close-up). `shelfsight ask` on the same video sends the whole frame too. The cap height of
the label's small print (one line of capitals on a yellow patch) is measured in the JPEGs the
stand-in received: the yellow patch is found by colour, the rows of dark ink inside it counted.

Run: .venv/bin/python -m bench.label_crop
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from bench._common import table
from shelfsight.guide.box import PixelBox, to_box_2d
from shelfsight.standin import (
    ScriptedAnswer,
    ScriptedCall,
    StandIn,
    StandInConfig,
    synth_speech_pcm16,
)
from tests.conftest import TEST_KEY, standin_env
from tests.support.guide_cli import GuidedRun

GUIDE = "guide me to the gluten-free bread"
READ = "what does the small print say?"
FPS = 10.0
SECONDS = 12.0
ITEM_WIDTH = 0.3  # of the picture: within reach (the chime needs 0.25)
PRINT = "GLUTEN FREE - MAY CONTAIN OATS - BEST BEFORE 2027"


def shelf_frame(width: int, height: int) -> tuple[np.ndarray, PixelBox]:
    """One still frame: packs on a shelf, the bread pack centred with a yellow patch of
    small print; drawn at the camera's own resolution (a sharp lens), so every size has the
    detail a camera of that size would."""
    rng = np.random.default_rng(3)
    image = np.full((height, width, 3), (70, 80, 95), np.uint8)
    k = width / 1920
    pack_w, pack_h = int(ITEM_WIDTH * width), int(0.45 * height)
    for i in range(-2, 3):
        x = int(width / 2 - pack_w / 2 + i * pack_w * 1.1)
        colour = (60, 150, 60) if i == 0 else tuple(int(c) for c in rng.integers(40, 220, 3))
        cv2.rectangle(image, (x, height // 4), (x + pack_w, height // 4 + pack_h), colour, -1)
        cv2.putText(
            image, "BREAD" if i == 0 else "SNACK", (x + int(20 * k), height // 4 + int(90 * k)),
            cv2.FONT_HERSHEY_SIMPLEX, 2.2 * k, (255, 255, 255), max(1, int(5 * k)), cv2.LINE_AA,
        )  # fmt: skip
    box = PixelBox(width / 2 - pack_w / 2, height / 4, pack_w, pack_h)
    # The small print: capitals ~9 px tall on a 1080p frame (a pack's ingredients line).
    px0, py0 = int(box.x + 0.06 * pack_w), int(box.y + 0.6 * pack_h)
    px1, py1 = int(box.x + 0.94 * pack_w), int(py0 + 28 * k)
    cv2.rectangle(image, (px0, py0), (px1, py1), (0, 230, 255), -1)  # yellow (BGR)
    scale = 0.3 * k
    cv2.putText(
        image, PRINT, (px0 + int(6 * k), py1 - int(9 * k)), cv2.FONT_HERSHEY_SIMPLEX, scale,
        (20, 20, 20), max(1, int(round(1.0 * k))), cv2.LINE_AA,
    )  # fmt: skip
    return image, box


def cap_height_px(jpeg_or_image: bytes | np.ndarray) -> tuple[int, int]:
    """(cap height of the small print in px, the picture's width): rows inside the yellow
    patch where ink (30 % darker than the patch) covers a few per cent of the row."""
    if isinstance(jpeg_or_image, bytes):
        image = cv2.imdecode(np.frombuffer(jpeg_or_image, np.uint8), cv2.IMREAD_COLOR)
    else:
        image = jpeg_or_image
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    yellow = cv2.inRange(hsv, (20, 120, 150), (35, 255, 255))
    ys, xs = np.nonzero(yellow)
    if len(xs) == 0:
        return 0, image.shape[1]
    patch = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(float)
    ink = grey < 0.7 * np.median(grey)  # blurred print is grey, not black
    rows = ink.mean(axis=1)
    return int((rows > 0.02).sum()), image.shape[1]


def write_video(path: Path, width: int, height: int) -> tuple[np.ndarray, PixelBox]:
    image, box = shelf_frame(width, height)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    for _ in range(int(SECONDS * FPS)):
        writer.write(image)
    writer.release()
    return image, box


def via_run(video: Path, box: PixelBox, width: int, height: int, tmp: Path) -> list[bytes]:
    """The pictures that went with the two typed questions, as the stand-in received them."""
    pcm = synth_speech_pcm16(0.3, 24000)
    mark = ScriptedCall(
        "mark_item", {"box_2d": to_box_2d(box, width, height), "name": "gluten-free bread"}
    )
    guide = ScriptedAnswer(GUIDE, "Follow the ticks.", pcm, tool_calls=(mark,))
    read = ScriptedAnswer(READ, "It says gluten free.", pcm)
    typed = ((GUIDE, guide), (READ, read))
    config = StandInConfig(api_keys=frozenset({TEST_KEY}), typed_answers=typed)
    with StandIn.start_in_thread(config) as standin:
        run = GuidedRun(standin, video, str(tmp / "out.wav"), tmp, {})
        run.ask_once_connected(GUIDE)
        run.wait_for(
            "the chime",
            lambda ev: any(e["type"] == "guide_cue" and e.get("on_target") for e in ev),
        )
        run.type(READ)
        run.wait_for("the answer", lambda ev: sum(e["type"] == "turn_complete" for e in ev) >= 2)
        run.finish()
        received = standin.server.connections[0].received("video")
    return [e.data for e in received if e.text == "client_content"]


def via_ask(video: Path, tmp: Path) -> bytes:
    pcm = synth_speech_pcm16(0.3, 24000)
    read = ScriptedAnswer(READ, "It says gluten free.", pcm)
    config = StandInConfig(api_keys=frozenset({TEST_KEY}), typed_answers=((READ, read),))
    with StandIn.start_in_thread(config) as standin:
        args = ["ask", READ, "--camera", str(video), "--speaker", str(tmp / "ask.wav")]
        done = subprocess.run(
            [sys.executable, "-m", "shelfsight", *args],
            env={**os.environ, **standin_env(standin)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise SystemExit(f"shelfsight ask failed: {done.stderr[-600:]}")
        received = standin.server.connections[0].received("video")
    return [e.data for e in received if e.text == "client_content"][-1]


def main() -> None:
    rows = [
        [
            "camera",
            "cap px in the camera",
            "whole picture sent (run)",
            "whole picture sent (ask)",
            "close-up sent",
            "close-up / whole",
        ]
    ]
    for width, height in ((1280, 720), (1920, 1080), (3840, 2160)):
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            video = tmp / "shelf.avi"
            image, box = write_video(video, width, height)
            source, _ = cap_height_px(image)
            whole, close_up = via_run(video, box, width, height, tmp)
            asked = via_ask(video, tmp)
        (w_cap, w_px), (c_cap, c_px), (a_cap, a_px) = (
            cap_height_px(whole),
            cap_height_px(close_up),
            cap_height_px(asked),
        )
        rows.append(
            [
                f"{width}x{height}",
                f"{source}",
                f"{w_cap} px ({w_px} px wide)",
                f"{a_cap} px ({a_px} px wide)",
                f"{c_cap} px ({c_px} px wide)",
                f"{c_cap / w_cap:.1f}x" if w_cap else "unreadable whole",
            ]
        )
    table("Small print's cap height in the picture the model gets (item 30 % of the width)", rows)


if __name__ == "__main__":
    main()
