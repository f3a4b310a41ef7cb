"""Asking each case through the same pipeline as `run` and `ask`.

A picture case is `shelfsight ask` with a camera that always shows the picture (sampled,
resized and encoded by the same FrameSampler); a session case is `shelfsight replay` of a
recording (its mic audio in real time, its frames at their recorded times). Only the speaker is
different: answers are collected, not played, so their length is counted, not waited for. Each
case opens its own connection: no case hears another's conversation.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shelfsight.app import Devices, run_conversation
from shelfsight.core.pcm import SPEAKER_BYTES_PER_S
from shelfsight.errors import UserError
from shelfsight.eval.cases import Case
from shelfsight.eval.score import Reading, Score, read_answer, score
from shelfsight.live.setup import Endpoint
from shelfsight.media.camera import Frame
from shelfsight.media.echo import EchoCanceller
from shelfsight.media.frames import FrameSampler
from shelfsight.media.mic import WavMic
from shelfsight.media.speaker import PlayedCallback
from shelfsight.session.cost import Tokens
from shelfsight.session.recording import load_session
from shelfsight.session.replay import RecordedFrames
from shelfsight.settings import Settings
from shelfsight.ui.view import PlainView


@dataclass(frozen=True)
class CaseResult:
    case: Case
    heard: str  # the question as the server transcribed it (typed: the question itself)
    answer: str  # the answer's transcript
    answer_s: float  # seconds of answer audio
    latency_s: float | None
    tokens: Tokens
    usd: float
    reading: Reading
    score: Score


class StillPicture:
    """A camera that always shows one picture (FrameSource for the FrameSampler)."""

    def __init__(self, path: Path) -> None:
        image = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"{path} is not a picture OpenCV can read (JPEG or PNG).")
        image.setflags(write=False)
        self._image = image
        self._seq = 0

    async def frame(self, timeout_s: float = 2.0) -> Frame | None:
        self._seq += 1
        return Frame(self._image, time.monotonic(), self._seq)


class CollectingSpeaker:
    """A speaker that keeps the answer instead of playing it (SpeakerSink, loop thread)."""

    name = "eval"

    def __init__(self) -> None:
        self.on_played: PlayedCallback | None = None
        self.underruns = self.xruns = 0
        self.playout_margin_s = 0.0
        self.bytes_played = 0

    def start(self) -> None:
        pass

    def play(self, pcm24k: bytes) -> None:
        self.bytes_played += len(pcm24k)

    def clear(self) -> None:
        pass

    @property
    def pending_s(self) -> float:
        return 0.0

    @property
    def slow_wait_s(self) -> float:
        return 0.0

    def expect_slow_link(self) -> None:
        pass

    def answer_ended(self) -> None:
        pass

    async def drained(self) -> None:
        pass

    def keep(self) -> None:
        pass

    def discard(self) -> None:
        pass

    def close(self) -> None:
        pass


class EvalView(PlainView):
    """Keeps what was said instead of printing it."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.heard: list[str] = []
        self.said: list[str] = []

    def user_said(self, text: str) -> None:
        self.heard.append(text)
        super().user_said(text)

    def answer_said(self, text: str) -> None:
        self.said.append(text)
        super().answer_said(text)


def _join(pieces: list[str]) -> str:
    """Transcript fragments (each with its own leading space) as one clean line."""
    return " ".join("".join(pieces).split())


async def run_case(
    case: Case, settings: Settings, api_key: str, endpoint: Endpoint | None = None
) -> CaseResult:
    view, speaker = EvalView(), CollectingSpeaker()
    mic = None
    if case.session is not None:
        mic = WavMic(case.session / "mic.wav")
        await mic.start()
        frames: RecordedFrames | FrameSampler = RecordedFrames(load_session(case.session))
    else:
        assert case.picture is not None
        frames = FrameSampler(
            StillPicture(case.picture),
            fps=settings.fps,
            max_side=settings.max_side,
            jpeg_quality=settings.jpeg_quality,
        )
    devices = Devices(camera=None, mic=mic, speaker=speaker)
    try:
        summary = await run_conversation(
            # No cues or spoken status: the answer's own audio is what is measured.
            dataclasses.replace(
                settings,
                mic="none" if mic is None else settings.mic,
                cues=False,
                speak_status=False,
            ),
            api_key,
            view,
            endpoint,
            frames=frames,
            ask=case.question if case.picture is not None else None,
            devices=devices,
            echo=EchoCanceller(enabled=False),
        )
    finally:
        devices.close()
    answer = _join(view.said)
    reading = read_answer(answer, case.truth.shelves)
    cost = summary.cost
    return CaseResult(
        case=case,
        heard=_join(view.heard) or case.question,
        answer=answer,
        answer_s=round(speaker.bytes_played / SPEAKER_BYTES_PER_S, 2),
        latency_s=view.last_latency_s,
        tokens=cost.tokens if cost else Tokens(),
        usd=cost.usd if cost else 0.0,
        reading=reading,
        score=score(case.truth, reading),
    )


async def run_suite(
    cases: list[Case],
    settings: Settings,
    api_key: str,
    endpoint: Endpoint | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Every case in order, one connection each; `on_result` hears each as it is scored."""
    results = []
    for case in cases:
        result = await run_case(case, settings, api_key, endpoint)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
