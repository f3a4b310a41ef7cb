"""One conversation: sources through the Live link to the speaker, the screen and the recorder.

The tasks are fixed and few, all in one TaskGroup so that Ctrl-C, `q`, a fatal error or the
end of the input stops them together:

    mic ──(echo canceller)──(push-to-talk gate)──▶ link.send_audio
    frames ─────────────────────────────────────▶ link.send_frame
    keys / typed lines ─────────────────────────▶ link.activity_* / link.send_text
    link.events ─▶ speaker / view / recorder / turn state
    link.run (connect, reconnect)

It owns no devices: the caller opens and closes them, so tests and replays pass WAV files and
video files through exactly the code a live run uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from shelfsight.live.link import (
    MIC_CHUNK_S,
    AnswerAudio,
    AnswerCut,
    AnswerTranscript,
    Connected,
    GoAway,
    Interrupted,
    LiveLink,
    Reconnecting,
    ServerEvent,
    TurnComplete,
    UserTranscript,
)
from shelfsight.media.camera import CameraStatus
from shelfsight.media.frames import EncodedFrame
from shelfsight.media.mic import MicSource
from shelfsight.media.pcm import rms_dbfs
from shelfsight.media.speaker import SpeakerSink
from shelfsight.session.recording import NullRecorder, Recorder
from shelfsight.session.turns import BARGE_IN_S, PushToTalk, TurnTracker
from shelfsight.ui.controls import (
    Control,
    Quit,
    StopAnswer,
    TalkPressed,
    TalkReleased,
    TypedQuestion,
    Typing,
)

SILENCE_CHUNK = bytes(int(16000 * MIC_CHUNK_S) * 2)
IDLE_AFTER_S = 3.0  # frames slow down this long after the last speech


class FrameFeed(Protocol):
    def frames(self) -> AsyncIterator[EncodedFrame]: ...


class CameraWatch(Protocol):
    def status_changes(self) -> AsyncIterator[CameraStatus]: ...


class EchoFilter(Protocol):
    def process(self, pcm: bytes, t_capture: float) -> bytes: ...


class View(Protocol):
    """What the conversation tells the terminal; see shelfsight.ui.view."""

    def state(self, state: str) -> None: ...
    def mic_level(self, dbfs: float) -> None: ...
    def frame_sent(self, width: int, height: int, nbytes: int) -> None: ...
    def user_said(self, text: str) -> None: ...
    def user_typed(self, text: str) -> None: ...
    def typing(self, text: str | None) -> None: ...
    def answer_said(self, text: str) -> None: ...
    def turn_done(self, latency_s: float | None, interrupted: bool) -> None: ...
    def notice(self, message: str) -> None: ...


@dataclass(frozen=True)
class Options:
    push_to_talk: bool = False
    answer_wait_s: float = 20.0
    ask: str | None = None  # one typed question, then exit once it is answered (`ask`)
    fps: float = 1.0
    idle_fps: float | None = None  # frame rate while nobody talks (None: always `fps`)
    barge_in_s: float = BARGE_IN_S  # speech over a queued answer that stops it; 0: never


class Conversation:
    """Runs until the input ends and the last answer has played, or until stopped."""

    def __init__(
        self,
        *,
        link: LiveLink,
        mic: MicSource | None,
        speaker: SpeakerSink,
        frames: FrameFeed | None,
        view: View,
        options: Options = Options(),
        controls: asyncio.Queue[Control] | None = None,
        recorder: Recorder | NullRecorder | None = None,
        echo: EchoFilter | None = None,
        camera: CameraWatch | None = None,
    ) -> None:
        self._link, self._mic, self._speaker, self._frames = link, mic, speaker, frames
        self._view, self._options, self._controls, self._echo = view, options, controls, echo
        self._recorder = recorder or NullRecorder()
        self._camera = camera
        self._turn = TurnTracker()
        self._ptt = PushToTalk() if options.push_to_talk else None
        self._connected = asyncio.Event()
        self._first_frame_out = asyncio.Event()
        if frames is None:
            self._first_frame_out.set()
        self._done = asyncio.Event()

    async def run(self) -> None:
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
            self._view.state("connecting")
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
        self._recorder.event("mic_end")
        if self._options.ask is None:
            self._view.notice("microphone input ended; waiting for the answer to finish")
            await self._wait_for_answer(keep_mic_alive=True)
            self._done.set()

    def _on_mic(self, pcm: bytes, t_capture: float) -> None:
        level = rms_dbfs(pcm)
        self._view.mic_level(level)
        send, end_turn = (True, False) if self._ptt is None else self._ptt.mic(pcm, t_capture)
        if send:
            if self._turn.on_mic(level, t_capture):
                self._update_frame_rate()
                barge_in_s = self._options.barge_in_s
                if self._ptt is None and barge_in_s and self._turn.speech_run_s >= barge_in_s:
                    # The server interrupts an answer it is still generating; one already
                    # generated and queued here is ours to stop.
                    self._stop_answer("you spoke")
            self._send_audio(pcm)
        if end_turn:
            self._activity("activity_end")

    def _send_audio(self, pcm: bytes) -> None:
        self._link.send_audio(pcm)
        self._recorder.mic(pcm)

    async def _wait_for_answer(self, *, keep_mic_alive: bool) -> None:
        """Wait until the pending answer has been heard (at most `answer_wait_s`).

        An answer is pending if the user spoke or asked since the last one, or one is under
        way. With `keep_mic_alive` silence keeps streaming, as a live mic would.
        """
        expecting = self._turn.answering or self._turn.speech_since_answer
        completed_before = self._turn.turns_completed
        deadline = time.monotonic() + (self._options.answer_wait_s if expecting else 1.0)
        next_t = time.monotonic()
        while time.monotonic() < deadline:
            answered = self._turn.turns_completed > completed_before
            if (answered or not expecting) and not self._turn.answering:
                break
            if keep_mic_alive:
                self._on_mic(SILENCE_CHUNK, next_t)
            next_t += MIC_CHUNK_S
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        else:
            if expecting:
                self._view.notice(f"no answer came within {self._options.answer_wait_s:.0f} s")
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
            self._link.send_frame(frame.jpeg)
            age_ms = round((time.monotonic() - frame.t_capture) * 1000, 1)
            self._recorder.frame(frame.jpeg, width=frame.width, height=frame.height, age_ms=age_ms)
            self._view.frame_sent(frame.width, frame.height, len(frame.jpeg))
            self._first_frame_out.set()
            self._update_frame_rate()

    async def _watch_camera(self, camera: CameraWatch) -> None:
        """A dropped stream does not end the session: say so, and say when it is back."""
        async for status in camera.status_changes():
            self._recorder.event("camera", stalled=status.stalled, outage_s=status.outage_s)
            if status.stalled:
                self._view.notice(
                    "camera stopped sending pictures; reconnecting to it (answers go on)"
                )
            else:
                self._view.notice(f"camera back after {status.outage_s:.0f} s")

    def _update_frame_rate(self) -> None:
        """Full frame rate while someone talks or an answer plays, `idle_fps` otherwise.

        Called on every change of who talks; the sampler wakes at once when its interval
        shrinks, so the first words of a question already go out with a fresh frame.
        """
        idle_fps = self._options.idle_fps
        if idle_fps is None or not hasattr(self._frames, "interval_s"):
            return
        busy = self._turn.answering or (self._ptt is not None and self._ptt.talking)
        recent = self._turn.t_last_speech is not None and (
            time.monotonic() - self._turn.t_last_speech < IDLE_AFTER_S
        )
        interval_s = 1.0 / (self._options.fps if busy or recent else idle_fps)
        if self._frames.interval_s != interval_s:  # type: ignore[union-attr]
            self._frames.interval_s = interval_s  # type: ignore[union-attr]

    async def _pump_controls(self, controls: asyncio.Queue[Control]) -> None:
        while True:
            match await controls.get():
                case TalkPressed(t_monotonic=t) if self._ptt is not None:
                    self._talk_key(t)
                case TalkReleased(t_monotonic=t) if self._ptt is not None:
                    if self._ptt.release(t):
                        self._turn.on_question_sent(t + self._ptt.tail_s)
                        self._recorder.event("key", key="talk", action="release")
                        self._view.state("thinking")
                case TypedQuestion(text=text):
                    self._typed(text)
                case Typing(text=text):
                    self._view.typing(text)
                case StopAnswer():
                    self._stop_answer("stop key")
                case Quit():
                    self._recorder.event("key", key="quit")
                    self._done.set()
                case _:
                    pass

    def _talk_key(self, t: float) -> None:
        assert self._ptt is not None
        action, preroll = self._ptt.press(t)
        self._recorder.event("key", key="talk", action=action)
        if action == "start":
            self._stop_answer("talk key")
            self._activity("activity_start")
            for pcm in preroll:
                self._send_audio(pcm)
            self._view.state("user talking")
            self._update_frame_rate()
        else:
            self._turn.on_question_sent(t + self._ptt.tail_s)
            self._view.state("thinking")

    def _typed(self, text: str) -> None:
        self._stop_answer("new question")
        self._link.send_text(text)
        self._turn.on_question_sent(time.monotonic())
        self._recorder.event("typed_text", text=text)
        self._view.user_typed(text)
        self._view.state("thinking")

    def _activity(self, kind: str) -> None:
        getattr(self._link, kind)()
        self._recorder.event(kind)

    def _stop_answer(self, why: str) -> None:
        """Barge-in from this side: silence what is queued and drop the rest of this answer."""
        playing = self._speaker.pending_s > 0
        if self._turn.answering and not self._turn.muted:
            self._turn.muted = True
        elif not playing:
            return
        self._speaker.clear()
        self._recorder.event("answer_stopped", why=why)

    # -- server side ----------------------------------------------------------------------------

    async def _pump_events(self) -> None:
        async for event in self._link.events():
            self._record(event)
            self._on_event(event)

    def _on_event(self, event: ServerEvent) -> None:
        match event:
            case AnswerAudio(pcm=pcm, t_received=t):
                if self._turn.on_answer_audio(t):
                    self._view.state("answering")
                    self._update_frame_rate()
                if not self._turn.muted:
                    self._speaker.play(pcm)
            case Interrupted():
                self._speaker.clear()
                self._end_turn(interrupted=True)
            case TurnComplete():
                if self._turn.answering:
                    self._recorder.event("turn_latency", latency_s=self._turn.latency_s)
                    self._end_turn(interrupted=False)
                self._view.state("listening")
            case UserTranscript(text=text):
                self._view.user_said(text)
                if not self._turn.answering:
                    self._view.state("thinking")
            case AnswerTranscript(text=text):
                self._view.answer_said(text)
            case AnswerCut():
                # The answer comes again whole on the next connection: drop the partial one.
                self._speaker.clear()
                self._end_turn(interrupted=True)
                self._view.notice("answer cut off by the connection; asking again")
                self._view.state("reconnecting")
            case GoAway():
                pass  # recorded; the link switches connections at a quiet moment by itself
            case Connected(planned=planned, outage_s=outage, context_lost=lost):
                first = not self._connected.is_set()
                self._connected.set()
                if lost:
                    self._view.notice(
                        "the server could not resume the conversation; continuing in a fresh "
                        "one (earlier questions are forgotten)"
                    )
                if not first and (not planned or outage > 1.0):
                    self._view.notice(f"reconnected after {outage:.1f} s")
                self._view.state("listening")
            case Reconnecting(planned=True):
                self._view.state("reconnecting")
            case Reconnecting(reason=reason, attempt=attempt, delay_s=delay, outage_s=outage):
                if attempt >= 3:
                    self._view.notice(
                        f"still no connection after {outage:.0f} s ({reason}); giving up in "
                        f"{event.gives_up_in_s:.0f} s"
                    )
                else:
                    self._view.notice(f"{reason}; retrying in {delay:.1f} s")
                self._view.state("reconnecting" if self._connected.is_set() else "connecting")

    def _end_turn(self, *, interrupted: bool) -> None:
        was_answering = self._turn.answering
        self._turn.on_turn_end(interrupted=interrupted)
        if was_answering:
            self._view.turn_done(self._turn.latency_s, interrupted=interrupted)
        self._view.state("listening")

    def _record(self, event: ServerEvent) -> None:
        """Every server event goes into the recording; answer audio into its own WAV."""
        if isinstance(event, AnswerAudio):
            self._recorder.answer_audio(event.pcm)
            return
        fields = {k: v for k, v in vars(event).items() if k != "t_received" and v is not None}
        self._recorder.event(_snake(type(event).__name__), **fields)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
