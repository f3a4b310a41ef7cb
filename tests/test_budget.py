"""A trip's budget (`--budget USD`): told on screen and aloud at 80 %, and at 100 % told and
dropped to the cheapest settings that still answer every question; the end-of-session line
and `shelfsight sessions` show the trip's cost against it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from shelfsight.core.frames import EncodedFrame
from shelfsight.live.events import Connected, Usage
from shelfsight.session.announcer import Announcer, AnnouncerOptions
from shelfsight.session.conversation import Conversation, Options
from shelfsight.session.cost import CostMeter
from shelfsight.session.events import BudgetCrossed, SessionEvent
from shelfsight.session.pictures import PicturePolicy
from shelfsight.session.recording import Recorder
from shelfsight.session.status import State
from shelfsight.ui.controls import Control, TypedQuestion
from shelfsight.ui.watch import ViewObserver
from tests.conftest import run_cli
from tests.support.doubles import MemorySpeaker, Screen, ScriptedLink, until

pytestmark = pytest.mark.anyio


class Camera:
    """Pictures when the test says; a frame-rate control nobody needs to change."""

    interval_s = 1.0
    light = False

    def __init__(self) -> None:
        self.queue: asyncio.Queue[EncodedFrame] = asyncio.Queue()
        self.seq = 0

    def shoot(self) -> None:
        self.seq += 1
        self.queue.put_nowait(EncodedFrame(b"jpeg", 8, 8, 0.0, 0.0, self.seq, bytes(768)))

    async def frames(self) -> AsyncIterator[EncodedFrame]:
        while True:
            yield await self.queue.get()


class Heard:
    def __init__(self) -> None:
        self.events: list[SessionEvent] = []

    def on_event(self, event: SessionEvent) -> None:
        self.events.append(event)


def _bill(text_tokens: int) -> Usage:
    """An answer billed `text_tokens` of context (text in: $0.75 per 1M tokens)."""
    return Usage(text_tokens, 0, text_tokens, prompt_by_modality={"text": text_tokens})


async def test_a_spent_budget_is_told_and_the_trip_goes_on_at_the_cheapest_settings() -> None:
    link, camera, screen, heard = ScriptedLink(), Camera(), Screen(), Heard()
    controls: asyncio.Queue[Control] = asyncio.Queue()
    conversation = Conversation(
        link=link, mic=None, speaker=MemorySpeaker(), frames=camera, frame_rate=camera,
        observers=[heard, ViewObserver(screen)], controls=controls,
        options=Options(pictures=PicturePolicy("needed")), cost=CostMeter(budget_usd=0.01),
    )  # fmt: skip
    run = asyncio.create_task(conversation.run())
    link.queue.put_nowait(Connected(1, False, 0.0))
    camera.shoot()
    await until(lambda: link.kinds() == ["frame"])  # the first picture goes
    link.queue.put_nowait(_bill(11_000))  # $0.00825: 82 %
    await until(lambda: any("80 percent" in n for n in screen.notices))
    assert "80 percent of this trip's $0.0100 budget is spent ($0.0083 so far)." in screen.notices
    assert not link.speech_only
    link.queue.put_nowait(_bill(3_000))  # $0.0105: spent
    await until(lambda: any(n.startswith("This trip's") for n in screen.notices))
    crossed = [e for e in heard.events if isinstance(e, BudgetCrossed)]
    assert [c.percent for c in crossed] == [80, 100], "each told once, the announcer says it"
    assert "I'll keep answering, more cheaply: only your voice goes up" in screen.notices[-1]
    assert link.speech_only
    # The cheapest pictures: none for a changed scene, one with each question.
    camera.queue.put_nowait(EncodedFrame(b"jpeg", 8, 8, 0.0, 0.0, 99, bytes([255]) * 768))
    await asyncio.sleep(0.05)
    assert link.kinds() == ["frame"]
    controls.put_nowait(TypedQuestion("where is the rice?"))
    await until(lambda: "text" in link.kinds())
    assert link.sent[-2:] == [("frame", 99), ("text", "where is the rice?")]
    link.queue.put_nowait(_bill(1_000))
    await asyncio.sleep(0.05)
    assert len([e for e in heard.events if isinstance(e, BudgetCrossed)]) == 2
    assert "of the $0.0100 budget" in conversation.cost.line()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


def test_the_sessions_list_shows_each_trips_cost_against_its_budget(tmp_path: Path) -> None:
    meter = CostMeter(budget_usd=0.5)
    meter.add(_bill(400_000))  # $0.30
    recorder = Recorder(tmp_path / "trip", {"model": "gemini-3.8-live"})
    recorder.close(**meter.as_dict())
    listed = run_cli("sessions", str(tmp_path), env={"COLUMNS": "200"})
    assert listed.code == 0, listed.stderr
    assert "$0.30 of $0.50" in listed.stdout
    assert meter.line().endswith("≈ $0.30 (prices of 2026-09-15), 60 % of the $0.50 budget")


class _Voice:
    """A speech engine that renders every sentence as 0.3 s of a quiet tone."""

    def render(self, text: str) -> bytes:
        return (np.sin(np.arange(7200) / 5) * 3000).astype("<i2").tobytes()


class _Record:
    def __init__(self) -> None:
        self.cues: list[dict[str, object]] = []

    def event(self, kind: str, **fields: object) -> None:
        if kind == "cue":
            self.cues.append(fields)


async def test_the_budget_is_heard_too_once_the_speaker_is_free() -> None:
    speaker, record = MemorySpeaker(), _Record()
    announcer = Announcer(speaker, record, AnnouncerOptions(), _Voice())  # type: ignore[arg-type]
    ticking = asyncio.create_task(announcer.run())
    announcer.state(State.LISTENING)
    announcer.on_event(BudgetCrossed(80, 0.41, 0.5))
    await until(lambda: any(str(c.get("text", "")).startswith("80 percent") for c in record.cues))
    assert speaker.pending_s > 0, "the sentence went to the speaker"
    ticking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ticking
