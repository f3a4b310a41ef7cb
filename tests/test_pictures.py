"""Which camera pictures the model gets (and is billed for again on every later answer): one
as each question begins, some while an answer plays, one when the scene changes a lot, and
none while the user is silent and the shelf is the same."""

from __future__ import annotations

import cv2
import numpy as np

from shelfsight.core.frames import EncodedFrame
from shelfsight.media.frames import thumbnail
from shelfsight.session.pictures import PictureGate, PicturePolicy
from tests.support.scene import draw_shelf


def _frame(seq: int, image: np.ndarray) -> EncodedFrame:
    return EncodedFrame(b"jpeg", 640, 360, 0.0, 0.0, seq, thumbnail(image))


def _walk(
    gate: PictureGate,
    seconds: int,
    *,
    start: int,
    question_at: int = -1,
    answer_at: int = -100,
    new_shelf_at: int = 10**9,
) -> list[int]:
    """One sampled picture a second (the shelf sways as a hand-held phone does), a 5 s answer
    from `answer_at`; returns the seconds whose picture was sent."""
    sent = []
    for t in range(start, start + seconds):
        image = draw_shelf(640, 360, t * 30)
        if t >= new_shelf_at:
            image = cv2.flip(image, 0)  # another shelf
        frame = _frame(t, image)
        if t == question_at and (now := gate.question_began()) is not None:
            gate.sent(now, t)
            sent.append(now.seq)
        if gate.offer(frame, float(t), answering=answer_at <= t < answer_at + 5):
            gate.sent(frame, float(t))
            sent.append(t)
    return sent


def test_pictures_go_with_questions_answers_and_new_scenes_never_on_a_timer() -> None:
    gate = PictureGate(PicturePolicy("needed"))
    assert _walk(gate, 30, start=0) == [0], "the first picture, then none of the same shelf"
    # A question at 40 s: the newest picture (sampled at 39 s) goes at once; its 5 s answer
    # (from 42 s) gets one every 2 s; then nothing again.
    sent = _walk(gate, 20, start=30, question_at=40, answer_at=42)
    assert sent[0] == 39 and sent[1:] == [42, 44, 46], sent
    sent = _walk(gate, 10, start=50, new_shelf_at=55)
    assert sent == [55], "the camera turned to another shelf: one picture of it"


def test_a_spent_budget_keeps_only_the_picture_of_each_question() -> None:
    gate = PictureGate(PicturePolicy("question"))
    assert _walk(gate, 5, start=0) == []
    assert _walk(gate, 10, start=5, question_at=8, answer_at=8, new_shelf_at=9) == [7]
