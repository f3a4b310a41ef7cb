"""The conversation's small parts, driven directly: no network, no devices, no clock waits.

`Conversation` runs here against a scripted link (our own `Link` contract, not the SDK: the
end-to-end tests run the real SDK against the stand-in) and in-memory mic and speaker, so
barge-in, push-to-talk and the `ask` lifecycle are checked in milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shelfsight.guide.worker import GUIDE_ME, AskAgain, GuideNews, ask_again_text
from shelfsight.live.events import (
    AnswerAudio,
    AnswerCut,
    Connected,
    Reconnecting,
    SlowLink,
    TurnComplete,
    UserTranscript,
)
from shelfsight.live.link import LinkStats
from shelfsight.media.camera import CameraStatus
from shelfsight.media.frames import EncodedFrame
from shelfsight.session.conversation import Conversation, Options
from shelfsight.session.frame_rate import FrameRatePolicy
from shelfsight.session.status import camera_notice, link_notice
from shelfsight.session.summary import SessionSummary
from shelfsight.session.turns import TurnTracker
from shelfsight.ui.controls import Control, GuideKey, TalkPressed, TypedQuestion
from shelfsight.ui.watch import ViewObserver
from tests.support.doubles import LOUD, QUIET, MemorySpeaker, QueueMic, Screen, ScriptedLink, until

pytestmark = pytest.mark.anyio


# ---- pure parts ------------------------------------------------------------------------------


def test_reconnect_notices_say_what_happened_and_when_it_gives_up() -> None:
    failed = Reconnecting("connection lost", attempt=1, delay_s=0.5, outage_s=0.1)
    assert link_notice(failed, first_connection=False) == "connection lost; retrying in 0.5 s"
    long = Reconnecting("no network", attempt=3, delay_s=2, outage_s=12, gives_up_in_s=48)
    assert link_notice(long, first_connection=False) == (
        "still no connection after 12 s (no network); giving up in 48 s"
    )
    assert link_notice(Reconnecting("goAway", 1, 0.0, planned=True), first_connection=False) is None
    quick_switch = Connected(attempt=1, resumed=True, outage_s=0.05, planned=True)
    assert link_notice(quick_switch, first_connection=False) is None
    back = Connected(attempt=2, resumed=True, outage_s=3.2)
    assert link_notice(back, first_connection=False) == "reconnected after 3.2 s"
    assert link_notice(Connected(1, False, 0.0), first_connection=True) is None
    assert "asking again" in (link_notice(AnswerCut(0.0), first_connection=False) or "")
    # Just said "reconnected", then that connection failed before anything came back: the
    # next line says so, not "still no connection", which would contradict it.
    again = Reconnecting("connection closed (1011)", 4, 1.5, outage_s=7.4, again=True)
    line = link_notice(again, first_connection=False) or ""
    assert line.startswith("the new connection failed at once") and "still" not in line


def test_camera_notices_promise_answers_go_on() -> None:
    assert "answers go on" in camera_notice(CameraStatus("cam", stalled=True))
    assert (
        camera_notice(CameraStatus("cam", stalled=False, outage_s=4.4)) == "camera back after 4 s"
    )


def test_frames_slow_down_only_when_nobody_talks() -> None:
    policy = FrameRatePolicy(fps=1.0, idle_fps=0.2, idle_after_s=3.0)
    assert policy.interval_s(busy=True, t_last_speech=None, now=100.0) == 1.0
    assert policy.interval_s(busy=False, t_last_speech=98.0, now=100.0) == 1.0
    assert policy.interval_s(busy=False, t_last_speech=90.0, now=100.0) == 5.0
    assert FrameRatePolicy(fps=2.0).interval_s(busy=False, t_last_speech=None, now=0) == 0.5


def test_barge_in_needs_unbroken_speech_for_the_hold_time() -> None:
    turn = TurnTracker()
    for _ in range(4):
        turn.on_mic(True, 0.0)
    assert not turn.barge_in_due(0.1)
    turn.on_mic(False, 0.0)
    for _ in range(5):
        turn.on_mic(True, 0.0)
    assert turn.barge_in_due(0.1)
    assert not turn.barge_in_due(0.0)  # 0 turns it off


def test_summary_names_losses_only_when_there_are_some() -> None:
    stats = LinkStats(2, 500, 0.0, 0.0, frames_sent=9, frames_skipped=1)
    clean = SessionSummary(stats, speaker_underruns=0, mic_dropped_chunks=0, echo=None).line()
    assert clean == (
        "session: 2 connections, 9 frames sent (1 replaced by newer ones), 10 s of mic audio sent"
    )
    lossy = SessionSummary(
        LinkStats(3, 500, 1.5, 2.25, 9, 1), speaker_underruns=2, mic_dropped_chunks=3, echo=None
    )
    assert lossy.line().endswith(
        "1.5 s re-sent after a dropped connection, 2.2 s of what you said was lost, "
        "2 gaps in answer playback, 60 ms of microphone audio dropped"
    )
    assert lossy.as_dict()["audio_dropped_s"] == 2.25
    one_each = LinkStats(1, 50, 0.0, 0.0, 1, 0)
    one = SessionSummary(one_each, 1, mic_dropped_chunks=0, echo=None).line()
    assert "1 connection, 1 frame sent" in one and "1 gap in answer playback" in one


# ---- the conversation against a scripted link ------------------------------------------------


class OneFrame:
    async def frames(self) -> AsyncIterator[EncodedFrame]:
        yield EncodedFrame(jpeg=b"jpeg", width=4, height=3, t_capture=0, t_encoded=0, seq=7)
        await asyncio.Event().wait()


async def test_ask_waits_for_the_connection_and_a_frame_then_ends_after_the_answer() -> None:
    link, speaker = ScriptedLink(), MemorySpeaker()
    conversation = Conversation(
        link=link, mic=None, speaker=speaker, frames=OneFrame(), observers=[ViewObserver(Screen())],
        options=Options(ask="where is the bread?"),
    )  # fmt: skip
    run = asyncio.create_task(conversation.run())
    await until(lambda: link.kinds() == ["frame"])
    await asyncio.sleep(0.01)
    assert "text" not in link.kinds()  # not connected yet
    link.queue.put_nowait(Connected(1, False, 0.0))
    await until(lambda: "text" in link.kinds())
    assert link.sent[-1] == ("text", "where is the bread?")
    assert speaker.answers_ended == 1, "connected: no answer under way"
    link.queue.put_nowait(AnswerAudio(bytes(4800), 0.0))
    await asyncio.sleep(0.02)
    assert speaker.answers_ended == 1, "an answer under way has not ended"
    link.queue.put_nowait(TurnComplete(0.0))
    await asyncio.sleep(0.05)
    assert speaker.answers_ended == 2, "its turn is complete: the speaker is told"
    assert not run.done()  # the answer is still playing
    speaker.play_all()
    await asyncio.wait_for(run, 2.0)


async def test_talking_over_a_received_answer_stops_it_and_the_next_answer_plays() -> None:
    link, speaker, mic = ScriptedLink(), MemorySpeaker(), QueueMic()
    conversation = Conversation(
        link=link, mic=mic, speaker=speaker, frames=None, observers=[ViewObserver(Screen())],
        options=Options(barge_in_s=0.1),
    )  # fmt: skip
    run = asyncio.create_task(conversation.run())
    link.queue.put_nowait(Connected(1, False, 0.0))
    link.queue.put_nowait(AnswerAudio(bytes(48000), 0.0))
    await until(lambda: speaker.pending_s > 0)
    mic.say(LOUD, 4)  # 80 ms: not yet
    await until(lambda: link.kinds().count("audio") == 4)
    assert speaker.pending_s > 0
    mic.say(LOUD, 1)  # 100 ms of speech
    await until(lambda: speaker.pending_s == 0)
    assert ("audio", True) in link.sent  # the link was told it is speech
    link.queue.put_nowait(TurnComplete(0.0))
    link.queue.put_nowait(AnswerAudio(bytes(960), 0.0))  # the reply to what was said
    await until(lambda: speaker.pending_s > 0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_push_to_talk_sends_nothing_until_the_key_then_preroll_then_a_tail() -> None:
    link, speaker, mic = ScriptedLink(), MemorySpeaker(), QueueMic()
    controls: asyncio.Queue[Control] = asyncio.Queue()
    conversation = Conversation(
        link=link, mic=mic, speaker=speaker, frames=None, observers=[ViewObserver(Screen())],
        options=Options(push_to_talk=True), controls=controls,
    )  # fmt: skip
    run = asyncio.create_task(conversation.run())
    mic.say(QUIET, 15)
    await until(lambda: mic.chunks.empty())
    await asyncio.sleep(0.01)
    assert link.kinds() == []
    controls.put_nowait(TalkPressed(1.0))
    await until(lambda: "activity_start" in link.kinds())
    assert link.kinds() == ["activity_start"] + ["audio"] * 10  # 200 ms of pre-roll
    mic.say(LOUD, 3)
    controls.put_nowait(TalkPressed(mic._n * 0.02))  # the key again: the tail follows
    await until(lambda: controls.empty())
    mic.say(QUIET, 20)
    await until(lambda: "activity_end" in link.kinds())
    after_start = link.kinds()[11:]
    assert after_start[:3] == ["audio"] * 3
    tail = after_start[3 : after_start.index("activity_end")]
    assert len(tail) == 15  # 300 ms
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


class LateFrame:
    """A camera still opening: its first frame comes when the test says."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()

    async def frames(self) -> AsyncIterator[EncodedFrame]:
        await self.ready.wait()
        yield EncodedFrame(jpeg=b"jpeg", width=4, height=3, t_capture=0, t_encoded=0, seq=1)
        await asyncio.Event().wait()


@pytest.mark.parametrize("camera_opens", [True, False], ids=["camera-opens", "camera-never"])
async def test_a_question_typed_before_the_first_picture_waits_for_it(
    monkeypatch: pytest.MonkeyPatch, camera_opens: bool
) -> None:
    """Asked blind the model cannot answer, nor mark a box; a camera that never opens
    delays the question only FIRST_PICTURE_WAIT_S."""
    monkeypatch.setattr("shelfsight.session.conversation.FIRST_PICTURE_WAIT_S", 0.2)
    link, camera = ScriptedLink(), LateFrame()
    controls: asyncio.Queue[Control] = asyncio.Queue()
    conversation = Conversation(
        link=link, mic=None, speaker=MemorySpeaker(), frames=camera,
        observers=[ViewObserver(Screen())],
        options=Options(), controls=controls,
    )  # fmt: skip
    run = asyncio.create_task(conversation.run())
    link.queue.put_nowait(Connected(1, False, 0.0))
    controls.put_nowait(TypedQuestion("where is the bread?"))
    await asyncio.sleep(0.1)
    assert link.kinds() == []
    if camera_opens:
        camera.ready.set()
        await until(lambda: "text" in link.kinds())
        assert link.kinds() == ["frame", "text"]
    else:
        await until(lambda: "text" in link.kinds())
        assert link.kinds() == ["text"]
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


class FakeGuide:
    """Guide mode's loop side, recording what the conversation asks of it."""

    def __init__(self) -> None:
        self.active = False
        self.stops: list[str] = []
        self.sent: list[int] = []
        self.queue: asyncio.Queue[GuideNews] = asyncio.Queue()

    def frame_sent(self, frame: EncodedFrame, with_turn: bool = False) -> None:
        self.sent.append(frame.seq)

    def close_up(self) -> EncodedFrame | None:
        return None

    def turn_done(self) -> None:
        pass

    def stop(self, why: str) -> bool:
        was, self.active = self.active, False
        if was:
            self.stops.append(why)
        return was

    async def news(self) -> AsyncIterator[GuideNews]:
        while True:
            yield await self.queue.get()


async def test_guide_key_stop_words_and_a_re_ask_that_waits_for_the_answer() -> None:
    link, speaker, guide = ScriptedLink(), MemorySpeaker(), FakeGuide()
    controls: asyncio.Queue[Control] = asyncio.Queue()
    conversation = Conversation(
        link=link, mic=None, speaker=speaker, frames=None, observers=[ViewObserver(Screen())],
        controls=controls, guide=guide,
    )  # fmt: skip
    run = asyncio.create_task(conversation.run())
    link.queue.put_nowait(Connected(1, False, 0.0))
    controls.put_nowait(GuideKey())  # not guiding: ask to be guided
    await until(lambda: ("text", GUIDE_ME) in link.sent)
    guide.active = True  # the model marked the item
    controls.put_nowait(GuideKey())
    await until(lambda: guide.stops == ["guide key"])
    guide.active = True
    controls.put_nowait(TypedQuestion("stop"))
    await until(lambda: guide.stops == ["guide key", "you typed stop"])
    guide.active = True
    link.queue.put_nowait(UserTranscript("Stop."))
    await until(lambda: len(guide.stops) == 3)
    assert guide.stops[-1] == "you said stop"
    assert [t for k, t in link.sent if k == "text"] == [GUIDE_ME], "stop words never sent"
    guide.active = True
    link.queue.put_nowait(AnswerAudio(bytes(4800), 0.0))  # an answer under way
    await until(lambda: speaker.pending_s > 0)
    picture = EncodedFrame(jpeg=b"new", width=4, height=3, t_capture=0, t_encoded=0, seq=42)
    guide.queue.put_nowait(AskAgain("bread", picture))
    await asyncio.sleep(0.02)
    assert ("frame", 42) not in link.sent, "never asked over an answer"
    link.queue.put_nowait(TurnComplete(0.0))
    await until(lambda: ("text", ask_again_text("bread")) in link.sent)
    assert link.sent[-2:] == [("frame", 42), ("text", ask_again_text("bread"))]
    await until(lambda: 42 in guide.sent)  # the re-ask's picture is what a new box is about
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_a_slow_upload_tells_the_speaker_to_expect_slow_answers_too() -> None:
    link, speaker = ScriptedLink(), MemorySpeaker()
    conversation = Conversation(
        link=link, mic=None, speaker=speaker, frames=None, observers=[ViewObserver(Screen())],
    )  # fmt: skip
    run = asyncio.create_task(conversation.run())
    link.queue.put_nowait(Connected(1, False, 0.0))
    link.queue.put_nowait(SlowLink(slow=False, backlog_s=0.0))
    await asyncio.sleep(0.02)
    assert not speaker.expects_slow
    link.queue.put_nowait(SlowLink(slow=True, backlog_s=1.2))
    await until(lambda: speaker.expects_slow)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
