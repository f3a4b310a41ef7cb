"""A still picture as the camera: it is sent as the frame, so `ask` can be about a photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from shelfsight.standin import StandInThread
from tests.conftest import run_cli, standin_env
from tests.support.scene import draw_shelf, read_frame_number


def test_asking_about_a_photo_sends_the_photo_and_answers(
    standin: StandInThread, tmp_path: Path
) -> None:
    photo = tmp_path / "shelf.png"
    cv2.imwrite(str(photo), draw_shelf(640, 480, frame_number=42))
    result = run_cli(
        "ask", "where is the gluten-free bread?", "--camera", str(photo),
        "--speaker", str(tmp_path / "answer.wav"), env=standin_env(standin),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert result.stdout.strip(), "the answer's text is printed"
    conn = standin.server.connections[-1]
    received = [e for e in conn.received() if e.kind != "audio"]
    asked = [i for i, e in enumerate(received) if e.kind == "client_content"]
    assert len(asked) == 1, "the question came as one client-content turn"
    picture = received[asked[0] - 1]
    assert (picture.kind, picture.text) == ("video", "client_content"), "the photo goes with it"
    jpeg = picture.data
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (480, 640) and read_frame_number(image) == 42
    assert "reconnecting" not in result.stderr


def test_a_picture_that_cannot_be_read_is_refused_in_one_line(tmp_path: Path) -> None:
    photo = tmp_path / "broken.jpg"
    photo.write_bytes(b"not a jpeg")
    result = run_cli(
        "ask", "what is this?", "--camera", str(photo), "--speaker", "a.wav",
        env={"GEMINI_API_KEY": "x"},
    )  # fmt: skip
    assert result.code == 2
    assert "Cannot read picture" in result.stderr and "Traceback" not in result.stderr
