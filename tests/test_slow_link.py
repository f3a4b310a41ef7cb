"""A slow link: audio first; one fresh picture with each question, never a stale one; an
answer that arrives slower than it plays waits and plays whole.

The link (real SDK, real TLS, the stand-in) with its slow mode already on, as once a slow
upload has been measured (when it switches on: test_upload_pace and bench.tether); the slow
downlink through the real CLI, the stand-in sending its answer slower than real time."""

from __future__ import annotations

import asyncio
import re
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from shelfsight.live.link import Connected, TurnComplete
from shelfsight.live.slow import UploadPace
from shelfsight.media.wav import write_wav
from shelfsight.settings import DEFAULT_MODEL, Settings
from shelfsight.standin import ScriptedAnswer, StandIn, StandInConfig, synth_speech_pcm16
from tests.conftest import TEST_KEY, run_cli, standin_env
from tests.support.link_run import LinkRun, jpeg_frame, noise, question
from tests.support.listen import plays_of

pytestmark = pytest.mark.anyio


def _slow() -> UploadPace:
    pace = UploadPace()
    pace.slow = True
    return pace


async def _camera(run: LinkRun, every_s: float = 0.25) -> None:
    """A camera at 4 fps; each picture names the moment it was taken."""
    while True:
        run.link.send_frame(jpeg_frame(f"taken at {time.monotonic():.3f}".encode()))
        await asyncio.sleep(every_s)


@pytest.mark.parametrize("mode", ["handsfree", "ptt"])
async def test_on_a_slow_link_each_spoken_question_takes_one_fresh_picture(
    mode: str, tasks: list[asyncio.Task[Any]]
) -> None:
    config = StandInConfig(api_keys=frozenset({TEST_KEY}), models=frozenset({DEFAULT_MODEL}))
    async with StandIn(config) as server:
        run = LinkRun(server, settings=Settings(mode=mode), pace=_slow())
        tasks += [asyncio.create_task(run.link.run()), asyncio.create_task(run.collect())]
        await run.until(lambda: bool(run.of(Connected)))
        tasks.append(asyncio.create_task(_camera(run)))
        t_asked = []
        for k in range(2):
            if mode == "ptt":
                await asyncio.sleep(1.5)
                t_asked.append(time.monotonic())
                await run.ask(question())
            else:
                await run.stream(noise(1.5, seed=k))
                t_asked.append(time.monotonic())
                await run.stream(question() + noise(1.5, seed=10 + k))
            await run.until(lambda k=k: len(run.of(TurnComplete)) > k, 15.0)
    (conn,) = server.connections
    pictures = [e for e in conn.received("video")]
    taken = [float(e.data.decode().split()[-1]) for e in pictures]
    assert len(pictures) == 2, taken  # none while nobody asks: the link is kept for audio
    for t_question, t_taken, event in zip(t_asked, taken, pictures, strict=True):
        assert t_question - 0.5 <= t_taken, "a fresh picture, not one from before"
        assert event.t_monotonic - t_question < 1.5, "sent as the question began"


def test_an_answer_arriving_slower_than_it_plays_waits_and_plays_whole_and_says_so_once(
    tmp_path: Path,
) -> None:
    """A slow downlink: the 3 s answer arrives at 0.6x real time (twice, to two questions).
    It is held back until it can play through (at most one gap an answer: the first on a link
    not yet known slow can have an early one), and the user is told once why it lags."""
    answer = ScriptedAnswer("q", "a long answer", synth_speech_pcm16(3.0, 24_000))
    config = StandInConfig(
        api_keys=frozenset({TEST_KEY}),
        models=frozenset({DEFAULT_MODEL}),
        answers=(answer,),
        speed=0.6,
    )
    spoken = question()
    mic = write_wav(
        tmp_path / "mic.wav",
        # The second question once the first answer (5 s in coming) has played.
        noise(0.5, seed=1) + spoken + noise(7.5, seed=2) + spoken + noise(3.0, seed=3),
    )
    out = tmp_path / "out.wav"
    with StandIn.start_in_thread(config) as server:
        args = ["run", "--camera", "none", "--mic", str(mic), "--speaker", str(out), "--plain"]
        result = run_cli(*args, env=standin_env(server), timeout_s=90)
    printed = result.stdout + result.stderr
    assert result.code == 0, printed
    assert printed.count("slow connection: answers may lag") == 1, printed
    with wave.open(str(out), "rb") as played:
        pcm = played.readframes(played.getnframes())
    assert plays_of(pcm, answer.answer_pcm24k, holes=20) == 2, "both answers, played through"
    gaps = re.search(r"(\d+) gaps? in answer playback", printed)
    assert gaps is None or int(gaps.group(1)) <= 2, "at most one gap an answer"
