"""One conversation: sources through the Live link to the speaker, the screen and the recorder.

The tasks are fixed and few, all in one TaskGroup so that Ctrl-C, `q`, a fatal error or the
end of the input stops them together:

    mic ──(echo canceller)──(speech detector)──(push-to-talk gate)──▶ link.send_audio
    frames ──(picture gate: the ones the model needs)────────────────▶ link.send_frame
    keys / typed lines ─────────────────────────────────────────────▶ link.activity_* / send_text
    link.events ─▶ speaker / turn state / session events (view, announcer, recording)
    link.run (connect, reconnect)
    guide worker (own thread, camera frames) ─▶ words / re-asks / recording   (guide mode)

It owns no devices: the caller opens and closes them, so tests and replays pass WAV files and
video files through exactly the code a live run uses. Turn state has one owner (`TurnTracker`);
policies live in small modules: `speech` (is the user talking), `frame_rate`, `pictures`
(which pictures go), `status` (what the user is told), `event_log` (what is recorded); the
budget is the cost meter's (`cost`), told through a `BudgetCrossed` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shelfsight.core.controls import (
    Control,
    EndOfInput,
    GuideKey,
    Quit,
    StopAnswer,
    TalkPressed,
    TalkReleased,
    TypedQuestion,
    Typing,
)
from shelfsight.core.frames import EncodedFrame
from shelfsight.core.pcm import MIC_CHUNK_BYTES
from shelfsight.core.phrases import Phrase, phrase
from shelfsight.errors import UserError
from shelfsight.guide.worker import (
    GUIDE_ME,
    AskAgain,
    Confirmed,
    CueSample,
    GuideNews,
    Guiding,
    Leading,
    Say,
    Stopped,
    guide_text,
    says_stop,
)
from shelfsight.live.events import (
    MIC_CHUNK_S,
    AnswerAudio,
    AnswerCut,
    AnswerTranscript,
    AudioLost,
    Connected,
    FrameSent,
    Interrupted,
    PictureSize,
    Reconnecting,
    ServerEvent,
    SlowLink,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    Usage,
    UserTranscript,
)
from shelfsight.live.link import QUESTION_GAP_S, LinkStats
from shelfsight.media.camera import CameraStatus
from shelfsight.media.mic import MicSource
from shelfsight.media.pcm import rms_dbfs
from shelfsight.media.speaker import SLOW_NOTICE_S, SpeakerSink
from shelfsight.session.cost import CostMeter
from shelfsight.session.events import (
    MOMENT_STALE_S,
    NEWS_STALE_S,
    AnswerBilled,
    AnswerEnded,
    AnswerSaid,
    AnswerStopped,
    BudgetCrossed,
    CameraChanged,
    Heard,
    MicLevel,
    MicSent,
    Observer,
    PictureSent,
    SessionEvents,
    Speak,
    StateChanged,
    TypingNow,
    UserSaid,
    UserTyped,
)
from shelfsight.session.frame_rate import FrameRatePolicy, RateControl
from shelfsight.session.pictures import PictureGate, PicturePolicy
from shelfsight.session.speech import LevelDetector, SpeechDetector
from shelfsight.session.status import State, camera_notice, link_notice, missed_sentence
from shelfsight.session.turns import BARGE_IN_S, PushToTalk, TurnTracker
from shelfsight.tools.calls import ToolBox

SILENCE_CHUNK = bytes(MIC_CHUNK_BYTES)
FIRST_PICTURE_WAIT_S = 3.0  # a question typed at start waits this long for the first picture


class Link(Protocol):
    """What the conversation needs of `shelfsight.live.link.LiveLink` (loop thread only)."""

    speech_only: bool  # only the user's speech goes up (and all of it while an answer plays)

    def send_audio(self, pcm: bytes, *, speech: bool = False) -> None: ...
    def send_frame(self, frame: EncodedFrame) -> None: ...
    def send_text(self, text: str) -> None: ...
    def activity_start(self) -> None: ...
    def activity_end(self) -> None: ...
    def send_tool_response(
        self, call_id: str, name: str, response: dict[str, Any], scheduling: str = ...
    ) -> None: ...
    def events(self) -> AsyncIterator[ServerEvent]: ...
    def drain_events(self) -> list[ServerEvent]: ...
    async def run(self) -> None: ...
    def stats(self) -> LinkStats: ...
    @property
    def audio_backlog_s(self) -> float: ...


class FrameFeed(Protocol):
    def frames(self) -> AsyncIterator[EncodedFrame]: ...


class CameraWatch(Protocol):
    def status_changes(self) -> AsyncIterator[CameraStatus]: ...


class GuideControl(Protocol):
    """Guide mode, loop side (`shelfsight.guide.worker.GuideWorker`)."""

    @property
    def active(self) -> bool: ...
    def frame_sent(self, frame: EncodedFrame, with_turn: bool = False) -> None: ...
    def close_up(self) -> EncodedFrame | None: ...
    def turn_done(self) -> None: ...
    def stop(self, why: str) -> bool: ...
    def news(self) -> AsyncIterator[GuideNews]: ...


class EchoFilter(Protocol):
    def process(self, pcm: bytes, t_capture: float) -> bytes: ...


@dataclass(frozen=True)
class Options:
    push_to_talk: bool = False
    answer_wait_s: float = 20.0
    ask: str | None = None  # one typed question, then exit once it is answered (`ask`)
    frame_rate: FrameRatePolicy = FrameRatePolicy()
    barge_in_s: float = BARGE_IN_S  # speech over a queued answer that stops it; 0: never
    pictures: PicturePolicy | None = None  # which sampled pictures go; None: every one
    guide_unavailable: Phrase | None = None  # said when the guide key is pressed: why it can't


class Conversation:
    """Runs until the input ends and the last answer has played, or until stopped."""

    def __init__(
        self,
        *,
        link: Link,
        mic: MicSource | None,
        speaker: SpeakerSink,
        frames: FrameFeed | None,
        observers: Sequence[Observer] = (),
        options: Options = Options(),
        controls: asyncio.Queue[Control] | None = None,
        echo: EchoFilter | None = None,
        camera: CameraWatch | None = None,
        frame_rate: RateControl | None = None,
        speech: SpeechDetector | None = None,
        cost: CostMeter | None = None,
        tools: ToolBox | None = None,
        guide: GuideControl | None = None,
    ) -> None:
        self._link, self._mic, self._speaker, self._frames = link, mic, speaker, frames
        self._options, self._controls, self._echo = options, controls, echo
        # Everyone who tells the user or keeps the record, in order (see session.events).
        self._events = SessionEvents(observers)
        self._voice = next(iter(self._events.voices), None)  # plays sounds of its own
        self._camera, self._frame_rate = camera, frame_rate
        self._speech = speech or LevelDetector()
        self.cost = cost or CostMeter()
        self._tools = tools or ToolBox()  # with none declared, calls still get an answer
        self._turn = TurnTracker()
        self.answer_audio_s = 0.0  # answer audio received, for the summary
        self._ptt = PushToTalk() if options.push_to_talk else None
        self._connected = asyncio.Event()
        self._first_frame_out = asyncio.Event()
        if frames is None:
            self._first_frame_out.set()
        self._waited_for_picture = False  # a typed question waits for the first one only once
        self._done = asyncio.Event()
        self._guide = guide
        self._pending_ask: AskAgain | None = None  # a re-ask waiting for the answer to end
        # Standard input ended with questions: the session ends once they are answered, so
        # the guide asks the model nothing more (its checks would keep an answer pending).
        self._input_ended = False
        self._told_slow_downlink = False
        self._pictures = PictureGate(options.pictures) if options.pictures else None

    async def run(self) -> None:
        try:
            await self._run_tasks()
        except* UserError as group:
            if self._voice is not None:  # heard before the one line on the screen
                await self._voice.last_words(str(_first_leaf(group)))
            raise
        for event in self._link.drain_events():  # sent or heard just before the end
            self._events.emit(Heard(event))

    async def _run_tasks(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._link.run()), tg.create_task(self._pump_events())]
            if self._mic is not None:
                tasks.append(tg.create_task(self._pump_mic(self._mic)))
            if self._frames is not None:
                tasks.append(tg.create_task(self._pump_frames(self._frames)))
            if self._controls is not None:
                tasks.append(tg.create_task(self._pump_controls(self._controls)))
            if self._options.ask is not None:
                tasks.append(tg.create_task(self._ask(self._options.ask)))
            if self._camera is not None:
                tasks.append(tg.create_task(self._watch_camera(self._camera)))
            if self._voice is not None:
                tasks.append(tg.create_task(self._voice.run()))
            if self._guide is not None:
                tasks.append(tg.create_task(self._pump_guide(self._guide)))
            self._state(State.CONNECTING)
            await self._done.wait()
            for task in tasks:
                task.cancel()

    # -- inputs -----------------------------------------------------------------------------

    async def _pump_mic(self, mic: MicSource) -> None:
        while (chunk := await mic.read()) is not None:
            pcm = chunk.pcm
            if self._echo is not None:
                pcm = self._echo.process(pcm, chunk.t_capture)
            self._on_mic(pcm, chunk.t_capture)
        self._events.mark("mic_end")
        if self._options.ask is None:
            await self._finish(keep_mic_alive=True, why=phrase("mic_ended"))

    async def _finish(self, *, keep_mic_alive: bool, why: str) -> None:
        """The input has ended (`why`, in words): once connected, wait for the pending
        answer, then stop."""
        # The link gives up on its own if the connection never comes.
        await self._wait_while(lambda: not self._connected.is_set(), keep_mic_alive)
        await self._until_audio_out(keep_mic_alive=keep_mic_alive, why=why)
        if self._turn.answering or self._turn.speech_since_answer:
            self._events.notice(phrase("waiting_for_answer", why=why))
        await self._wait_for_answer(keep_mic_alive=keep_mic_alive)
        self._done.set()

    async def _until_audio_out(self, *, keep_mic_alive: bool, why: str) -> None:
        """A slow or interrupted link may still hold the end of what was said: let it go out
        (the link keeps it in order and gives up on its own) before waiting for the answer."""
        if self._link.audio_backlog_s > 1.0:
            backlog_s = self._link.audio_backlog_s
            self._events.notice(phrase("sending_last_audio", why=why, seconds=backlog_s))
        deadline = time.monotonic() + self._options.answer_wait_s
        await self._wait_while(
            lambda: self._link.audio_backlog_s > 2 * MIC_CHUNK_S, keep_mic_alive, deadline
        )

    async def _wait_while(
        self, waiting: Callable[[], bool], keep_mic_alive: bool, deadline: float = math.inf
    ) -> bool:
        """Wait in 20 ms steps while `waiting()`, until `deadline` (monotonic s); False if the
        deadline came first. With `keep_mic_alive` silence streams, paced as a live mic's."""
        next_t = time.monotonic()
        while waiting():
            if time.monotonic() >= deadline:
                return False
            if keep_mic_alive:
                self._on_mic(SILENCE_CHUNK, next_t)
            next_t += MIC_CHUNK_S
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        return True

    def _on_mic(self, pcm: bytes, t_capture: float) -> None:
        level = rms_dbfs(pcm)
        speaking = self._speech.is_speech(pcm, level)
        self._events.emit(MicLevel(level, speaking))
        send, end_turn = (True, False) if self._ptt is None else self._ptt.mic(pcm, t_capture)
        if send:
            if speaking and self._ptt is None and self._pause_before(t_capture):
                self._question_began()
            self._turn.on_mic(speaking, t_capture)
            if speaking:
                self._update_frame_rate()
                if self._ptt is None and self._turn.barge_in_due(self._options.barge_in_s):
                    # The server interrupts an answer it is still generating; one already
                    # generated and queued here is ours to stop. Our own cue is not an
                    # answer: talking over "ready" must not cut it off.
                    if self._turn.answering or not (self._voice and self._voice.playing):
                        self._stop_answer("you spoke")
            self._send_audio(pcm, speaking)
        if end_turn:
            self._link.activity_end()
            self._events.mark("activity_end")

    def _pause_before(self, t: float) -> bool:
        """Speech at `t` begins a new question (as the link counts them)."""
        last = self._turn.t_last_speech
        return last is None or t - last >= QUESTION_GAP_S

    def _question_began(self) -> None:
        """The newest picture goes with a question as it begins (session.pictures); with the
        guided item in reach, a close-up of it instead (its label's small print)."""
        if self._guide is not None and (close_up := self._guide.close_up()) is not None:
            self._link.send_frame(close_up)
            self._events.mark("guide", action="close_up", width=close_up.width)
            return
        if self._pictures is not None and (frame := self._pictures.question_began()):
            self._link.send_frame(frame)

    def _send_audio(self, pcm: bytes, speaking: bool) -> None:
        self._link.send_audio(pcm, speech=speaking)
        self._events.emit(MicSent(pcm))

    async def _wait_for_answer(self, *, keep_mic_alive: bool) -> None:
        """Wait until the pending answer has been heard (at most `answer_wait_s`).

        An answer is pending if the user spoke or asked since the last one, or one is under
        way. With `keep_mic_alive` silence keeps streaming, as a live mic would.
        """
        expecting = self._turn.answering or self._turn.speech_since_answer
        completed_before = self._turn.turns_completed
        deadline = time.monotonic() + (self._options.answer_wait_s if expecting else 1.0)

        def pending() -> bool:
            answered = self._turn.turns_completed > completed_before
            return self._turn.answering or (expecting and not answered)

        if not await self._wait_while(pending, keep_mic_alive, deadline) and expecting:
            self._events.notice(phrase("no_answer_within", seconds=self._options.answer_wait_s))
        await self._speaker.drained()

    async def _ask(self, question: str) -> None:
        """`shelfsight ask`: once connected and a frame is out, ask, wait, finish."""
        await self._connected.wait()
        await self._first_frame_out.wait()
        self._typed(question)
        await self._wait_for_answer(keep_mic_alive=False)
        self._done.set()

    async def _pump_frames(self, feed: FrameFeed) -> None:
        async for frame in feed.frames():
            gate = self._pictures
            if gate is None or gate.offer(frame, time.monotonic(), answering=self._playing()):
                self._link.send_frame(frame)
            elif gate is not None:
                self._first_frame_out.set()  # a question now takes this picture with it

    def _playing(self) -> bool:
        """An answer is coming or still playing."""
        return self._turn.answering or self._speaker.pending_s > 0

    async def _watch_camera(self, camera: CameraWatch) -> None:
        """A dropped stream does not end the session: say so, and say when it is back."""
        async for status in camera.status_changes():
            self._events.emit(CameraChanged(status))
            self._events.notice(camera_notice(status))

    def _update_frame_rate(self) -> None:
        """Called on every change of who talks (see `shelfsight.session.frame_rate`)."""
        if self._frame_rate is None:
            return
        busy = self._turn.answering or (self._ptt is not None and self._ptt.talking)
        interval_s = self._options.frame_rate.interval_s(
            busy=busy, t_last_speech=self._turn.t_last_speech, now=time.monotonic()
        )
        if self._frame_rate.interval_s != interval_s:
            self._frame_rate.interval_s = interval_s

    async def _pump_controls(self, controls: asyncio.Queue[Control]) -> None:
        while True:
            match await controls.get():
                case TalkPressed(t_monotonic=t) if self._ptt is not None:
                    self._talk_key(t)
                case TalkReleased(t_monotonic=t) if self._ptt is not None:
                    if self._ptt.release(t):
                        self._turn.on_question_sent(t + self._ptt.tail_s)
                        self._events.mark("key", key="talk", action="release")
                        self._state(State.THINKING)
                case TypedQuestion(text=text) if self._guiding() and says_stop(text):
                    self._stop_guiding("you typed stop")
                case TypedQuestion(text=text):
                    await self._first_picture()
                    self._typed(text)
                case GuideKey() if self._options.guide_unavailable is not None:
                    self._events.notice(self._options.guide_unavailable.text())
                    self._events.emit(Speak(self._options.guide_unavailable, 5.0))
                case GuideKey() if self._guide is not None:
                    if not self._stop_guiding("guide key"):
                        await self._first_picture()
                        self._typed(GUIDE_ME, shown=phrase("guide_me"))
                case Typing(text=text):
                    self._events.emit(TypingNow(text))
                case StopAnswer():
                    self._stop_answer("stop key")
                case Quit():
                    self._events.mark("key", key="quit")
                    self._done.set()
                case EndOfInput() if self._mic is None and self._options.ask is None:
                    # Questions came from a pipe and it ended: answer the last one, then stop.
                    self._input_ended = True
                    await self._finish(keep_mic_alive=False, why=phrase("input_ended"))
                case EndOfInput(questions=questions) if questions:
                    self._input_ended = True  # ui.input_end ends the session after the answer
                case _:
                    pass

    def _talk_key(self, t: float) -> None:
        assert self._ptt is not None
        action, preroll = self._ptt.press(t)
        self._events.mark("key", key="talk", action=action)
        if action == "start":
            self._stop_answer("talk key")
            self._question_began()
            self._link.activity_start()
            self._events.mark("activity_start")
            for pcm in preroll:
                self._send_audio(pcm, False)
            self._state(State.USER_TALKING)
            self._update_frame_rate()
        else:
            self._turn.on_question_sent(t + self._ptt.tail_s)
            self._state(State.THINKING)

    async def _first_picture(self) -> None:
        """A question typed before the camera's first picture went out waits for it, up to
        FIRST_PICTURE_WAIT_S (a camera still opening, the first connection): asked without
        one, the model answers blind, and a box it marks has no picture to be about."""
        if self._waited_for_picture:
            return  # a camera that sent nothing in time does not hold every question
        self._waited_for_picture = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_frame_out.wait(), FIRST_PICTURE_WAIT_S)

    def _typed(self, text: str, *, shown: str = "") -> None:
        """Ask `text` (the user reads `shown` instead, when given: the guide key's question
        in their language; what the model reads stays as written)."""
        self._stop_answer("new question")
        self._question_began()  # the link sends it in the question's own turn
        self._link.send_text(text)
        self._turn.on_question_sent(time.monotonic())
        self._events.emit(UserTyped(text, shown))
        self._state(State.THINKING)

    def _stop_answer(self, why: str) -> None:
        """Barge-in from this side: silence what is queued and drop the rest of this answer."""
        playing = self._speaker.pending_s > 0
        if self._turn.answering and not self._turn.muted:
            self._turn.muted = True
        elif not playing:
            return
        self._speaker.clear()
        self._events.emit(AnswerStopped(why, by_key=why in ("stop key", "talk key")))

    # -- server side ----------------------------------------------------------------------------

    async def _pump_events(self) -> None:
        async for event in self._link.events():
            self._events.emit(Heard(event))
            self._on_event(event)
            if notice := link_notice(event, first_connection=not self._connected.is_set()):
                self._events.notice(notice)
            if isinstance(event, AudioLost) and event.missed_at:
                self._events.emit(Speak(missed_sentence(event.missed_at), NEWS_STALE_S))
            if isinstance(event, Connected):
                self._connected.set()

    def _on_event(self, event: ServerEvent) -> None:
        match event:
            case AnswerAudio(pcm=pcm, t_received=t):
                if self._turn.on_answer_audio(t):
                    self._state(State.ANSWERING)
                    self._update_frame_rate()
                self.answer_audio_s += len(pcm) / 48000  # 24 kHz PCM16
                self._speaker.keep()  # a speaker file now holds an answer: it stays
                if not self._turn.muted:
                    self._speaker.play(pcm)
                    self._tell_slow_downlink()
            case Interrupted():
                self._speaker.clear()
                self._speaker.answer_ended()
                self._end_turn(interrupted=True)
            case TurnComplete():
                self._speaker.answer_ended()  # a stall before it is a hole, not a new answer
                if self._guide is not None and self._guide.active:
                    self._guide.turn_done()  # an answer with no call is an answer too
                if self._turn.answering:
                    self._events.mark("turn_latency", latency_s=self._turn.latency_s)
                    self._end_turn(interrupted=False)
                self._state(State.LISTENING)
            case UserTranscript(text=text):
                self._events.emit(UserSaid(text))
                if self._guiding() and says_stop(text):
                    self._stop_guiding("you said stop")
                if not self._turn.answering:
                    self._state(State.THINKING)
            case AnswerTranscript(text=text):
                self._events.emit(AnswerSaid(text))
            case AnswerCut():
                # The answer comes again whole on the next connection: drop the partial one.
                # Cut by the connection, not interrupted by the user: no latency, no "stopped".
                self._speaker.clear()
                self._speaker.answer_ended()
                self._end_turn(interrupted=True, cut=True)
                self._state(State.RECONNECTING)
            case FrameSent(frame=frame, t_sent=t_sent, with_turn=with_turn):
                if self._pictures is not None:
                    self._pictures.sent(frame, t_sent)
                self._events.emit(PictureSent(len(frame.jpeg)))
                if self._guide is not None:
                    self._guide.frame_sent(frame, with_turn)
                self._first_frame_out.set()
                self._update_frame_rate()
            case Usage():
                bill = self.cost.add(event)
                self._events.emit(AnswerBilled(bill, self.cost.usd))
                if (percent := self.cost.budget_crossed()) is not None:
                    cheapest = self._go_cheapest() if percent >= 100 else None
                    spent, budget = self.cost.usd, self.cost.budget_usd
                    self._events.emit(BudgetCrossed(percent, spent, budget, cheapest))
            case Connected():
                self._speaker.answer_ended()  # no answer under way: the first one's end is told
                self._state(State.LISTENING)
            case PictureSize(light=light) if self._frame_rate is not None:
                self._frame_rate.light = light  # the link's measure of the upload
            case SlowLink(slow=True):
                self._speaker.expect_slow_link()  # a weak tether is seldom slow one way only
            case Reconnecting():
                connected_before = self._connected.is_set()
                self._state(State.RECONNECTING if connected_before else State.CONNECTING)
            case ToolCall():
                self._answer_call(event)
            case ToolCallCancellation(call_ids=ids):
                for note in self._tools.cancel(ids):
                    self._events.notice(note)

    def _go_cheapest(self) -> Phrase:
        """The budget is spent: the cheapest settings that still answer every question (only
        the user's speech goes up, one picture with each question); says what they are."""
        self._link.speech_only = True
        if self._frame_rate is None:  # pictures replayed as recorded, or none
            return Phrase("cheapest_voice")
        if self._pictures is None:
            self._pictures = PictureGate()
        self._pictures.policy = PicturePolicy("question")
        return Phrase("cheapest_voice_picture")

    def _tell_slow_downlink(self) -> None:
        """Once a session: answers arrive slower than they play, so they wait to play whole
        (shelfsight.media.playout); say why the answer is late, once."""
        if not self._told_slow_downlink and self._speaker.slow_wait_s >= SLOW_NOTICE_S:
            self._told_slow_downlink = True
            self._events.notice(phrase("slow_downlink"))

    def _answer_call(self, call: ToolCall) -> None:
        """Every function call is answered at once (see shelfsight.tools.calls)."""
        reply = self._tools.answer(call.call_id, call.name, call.args)
        self._events.mark(
            "tool_response", call_id=call.call_id, name=call.name, response=reply.response
        )
        if reply.note:
            self._events.notice(reply.note)
        if call.call_id is None:  # the API requires the id in a response: none can be sent
            name = call.name or phrase("a_function")
            self._events.notice(phrase("call_without_id", name=name))
            return
        self._link.send_tool_response(call.call_id, call.name, reply.response, reply.scheduling)

    def _state(self, state: State) -> None:
        self._events.emit(StateChanged(state))

    def _end_turn(self, *, interrupted: bool, cut: bool = False) -> None:
        was_answering = self._turn.answering
        self._turn.on_turn_end(interrupted=interrupted)
        if was_answering:
            latency_s = None if cut else self._turn.latency_s
            self._events.emit(AnswerEnded(latency_s, interrupted and not cut, cut))
        self._state(State.LISTENING)
        if self._pending_ask is not None:
            ask, self._pending_ask = self._pending_ask, None
            self._ask_again(ask)

    # -- guide mode -------------------------------------------------------------------------------

    async def _pump_guide(self, guide: GuideControl) -> None:
        """What the guide's worker thread says: words for the user, a re-ask for the model."""
        async for news in guide.news():
            match news:
                case Guiding(name=name):
                    self._events.mark("guide", action="start", item=name)
                case Leading(name=name, direction=direction):
                    self._events.mark("guide", action="lead", item=name, direction=direction)
                case Confirmed(name=name):
                    self._events.mark("guide", action="confirmed", item=name)
                case Say(text=hint):
                    self._events.notice(phrase("guide_says", hint=hint))
                    self._events.emit(Speak(hint, MOMENT_STALE_S))
                case AskAgain():
                    self._ask_again(news)
                case CueSample(cue=cue, seq=seq):
                    where = (
                        {}
                        if cue is None
                        else {
                            "pan": round(cue.pan, 3),
                            "tilt": round(cue.tilt, 3),
                            "width": round(cue.width, 3),
                            "on_target": cue.on_target,
                        }
                    )
                    self._events.mark("guide_cue", seq=seq, lost=cue is None, **where)
                case Stopped(name=name, why=why):
                    self._events.mark("guide", action="stop", item=name, why=why)
                    self._events.notice(phrase("guide_stopped", item=name, why=_why_words(why)))
                    self._events.emit(Speak(Phrase("guide_stopped_short"), 5.0))

    def _guiding(self) -> bool:
        return self._guide is not None and self._guide.active

    def _stop_guiding(self, why: str) -> bool:
        return self._guide is not None and self._guide.stop(why)

    def _ask_again(self, ask: AskAgain) -> None:
        """The guide lost the item: ask where it is now, with the newest picture, as one turn;
        never over an answer (on 3.8 a new turn ends the one being generated)."""
        if not self._guiding() or self._input_ended:
            return
        if self._turn.answering:
            self._pending_ask = ask
            return
        self._link.send_frame(ask.frame)
        self._link.send_text(guide_text(ask))
        self._turn.on_question_sent(time.monotonic())
        self._events.mark("guide", action="ask_again", item=ask.name, why=ask.why)


# Why guiding stopped, as the guide is told it (and the recording keeps it), in the user's words.
GUIDE_WHY = {
    "you typed stop": "guide_why_typed",
    "you said stop": "guide_why_said",
    "guide key": "guide_why_key",
    "the model": "guide_why_model",
}


def _why_words(why: str) -> str:
    if key := GUIDE_WHY.get(why):
        return phrase(key)
    if why.startswith("the guide failed: "):
        return phrase("guide_failed", error=why.removeprefix("the guide failed: "))
    return why


def _first_leaf(group: BaseExceptionGroup[UserError]) -> BaseException:
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first
