"""A slow upload: audio first; one fresh picture with each question, never a stale one.

The link (real SDK, real TLS, the stand-in) with its slow mode already on, as once a slow
upload has been measured (when it switches on: test_upload_pace and bench.tether)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from shelfsight.live.link import Connected, TurnComplete
from shelfsight.live.slow import UploadPace
from shelfsight.settings import DEFAULT_MODEL, Settings
from shelfsight.standin import StandIn, StandInConfig
from tests.conftest import TEST_KEY
from tests.support.link_run import LinkRun, jpeg_frame, noise, question

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
