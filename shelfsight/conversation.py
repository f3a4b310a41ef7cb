"""One conversation: sources through the Live link to the speaker and the screen.

The tasks are fixed and few, all in one TaskGroup so that Ctrl-C, a fatal error or the end of
a mic file stops them together:

    mic ───────▶ link.send_audio            frames ──▶ link.send_frame
    link.events ─▶ speaker / view / turn tracking
    link.run (connect, reconnect)

It owns no devices: they are opened and closed by the caller, so tests and replays pass WAV
files and video files through exactly the code a live run uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from shelfsight.audio import MicSource, SpeakerSink, rms_dbfs
from shelfsight.frames import EncodedFrame
from shelfsight.live_link import (
    MIC_CHUNK_S,
    AnswerAudio,
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
from shelfsight.recording import NullRecorder, Recorder

SPEECH_DBFS = -42.0  # local level above which a mic chunk counts as speech (UI and turn timing)
SILENCE_CHUNK = bytes(int(16000 * MIC_CHUNK_S) * 2)


class FrameFeed(Protocol):
    def frames(self) -> AsyncIterator[EncodedFrame]: ...


class View(Protocol):
    """What the conversation tells the terminal; see shelfsight.view."""

    def state(self, state: str) -> None: ...
    def mic_level(self, dbfs: float) -> None: ...
    def frame_sent(self, width: int, height: int, nbytes: int) -> None: ...
    def user_said(self, text: str) -> None: ...
    def answer_said(self, text: str) -> None: ...
    def turn_done(self, latency_s: float | None, interrupted: bool) -> None: ...
    def notice(self, message: str) -> None: ...


@dataclass
class TurnTracker:
    """Derives the conversation state from mic levels and server events (loop thread only)."""

    answering: bool = False
    turns_completed: int = 0
    t_last_speech: float | None = None
    speech_since_answer: bool = False
    t_first_audio: float | None = None
    interrupted: bool = False

    def on_mic(self, dbfs: float, t: float) -> bool:
        speaking = dbfs > SPEECH_DBFS
        if speaking:
            self.t_last_speech = t
            self.speech_since_answer = True
        return speaking

    def on_answer_audio(self, t: float) -> float | None:
        """On a turn's first answer chunk: the latency from the end of speech, if known."""
        if self.answering:
            return None
        self.answering, self.interrupted, self.t_first_audio = True, False, t
        if self.t_last_speech is None:
            return None
        return max(0.0, t - self.t_last_speech)

    def on_turn_end(self, *, interrupted: bool) -> None:
        self.answering = False
        self.interrupted = interrupted
        if not interrupted:
            self.turns_completed += 1
            self.speech_since_answer = False


class Conversation:
    """Runs until the mic ends and the last answer has played, or until cancelled."""

    def __init__(
        self,
        *,
        link: LiveLink,
        mic: MicSource,
        speaker: SpeakerSink,
        frames: FrameFeed | None,
        view: View,
        answer_wait_s: float = 20.0,
        recorder: Recorder | NullRecorder | None = None,
    ) -> None:
        self._link = link
        self._mic = mic
        self._speaker = speaker
        self._frames = frames
        self._view = view
        self._answer_wait_s = answer_wait_s
        self._recorder = recorder or NullRecorder()
        self._turn = TurnTracker()
        self._turn_latency: float | None = None
        self._connected_once = False
        self._done = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self._link.run()),
                tg.create_task(self._pump_events()),
                tg.create_task(self._pump_mic()),
            ]
            if self._frames is not None:
                tasks.append(tg.create_task(self._pump_frames(self._frames)))
            await self._done.wait()
            for task in tasks:
                task.cancel()

    async def _pump_mic(self) -> None:
        self._view.state("connecting")
        while (chunk := await self._mic.read()) is not None:
            self._send_mic(chunk.pcm, chunk.t_capture)
        self._recorder.event("mic_end")
        self._view.notice("microphone input ended; waiting for the answer to finish")
        await self._finish_after_mic_end()
        self._done.set()

    def _send_mic(self, pcm: bytes, t_capture: float) -> None:
        self._link.send_audio(pcm)
        self._recorder.mic(pcm)
        level = rms_dbfs(pcm)
        self._turn.on_mic(level, t_capture)
        self._view.mic_level(level)

    async def _finish_after_mic_end(self) -> None:
        """Keep the stream alive with silence until the pending answer has been heard.

        An answer is expected if the user spoke since the last answer or one is under way; then
        we wait for its turn to complete and the speaker to drain (at most `answer_wait_s`).
        """
        expecting = self._turn.answering or self._turn.speech_since_answer
        completed_before = self._turn.turns_completed
        deadline = time.monotonic() + (self._answer_wait_s if expecting else 1.0)
        next_t = time.monotonic()
        while time.monotonic() < deadline:
            answered = self._turn.turns_completed > completed_before
            if (answered or not expecting) and not self._turn.answering:
                break
            self._link.send_audio(SILENCE_CHUNK)
            self._recorder.mic(SILENCE_CHUNK)
            next_t += MIC_CHUNK_S
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        else:
            if expecting:
                self._view.notice(f"no answer came within {self._answer_wait_s:.0f} s")
        await self._speaker.drained()

    async def _pump_frames(self, feed: FrameFeed) -> None:
        async for frame in feed.frames():
            self._link.send_frame(frame.jpeg)
            age_ms = round((time.monotonic() - frame.t_capture) * 1000, 1)
            self._recorder.frame(frame.jpeg, width=frame.width, height=frame.height, age_ms=age_ms)
            self._view.frame_sent(frame.width, frame.height, len(frame.jpeg))

    async def _pump_events(self) -> None:
        async for event in self._link.events():
            self._on_event(event)

    def _on_event(self, event: ServerEvent) -> None:
        self._record(event)
        match event:
            case AnswerAudio(pcm=pcm, t_received=t):
                latency = self._turn.on_answer_audio(t)
                if latency is not None:
                    self._turn_latency = latency
                    self._view.state("answering")
                self._speaker.play(pcm)
            case Interrupted():
                self._speaker.clear()
                self._turn.on_turn_end(interrupted=True)
                self._view.turn_done(self._turn_latency, interrupted=True)
                self._view.state("listening")
            case TurnComplete():
                if self._turn.answering:
                    self._recorder.event("turn_latency", latency_s=self._turn_latency)
                    self._turn.on_turn_end(interrupted=False)
                    self._view.turn_done(self._turn_latency, interrupted=False)
                self._turn_latency = None
                self._view.state("listening")
            case UserTranscript(text=text):
                self._view.user_said(text)
                if not self._turn.answering:
                    self._view.state("thinking")
            case AnswerTranscript(text=text):
                self._view.answer_said(text)
            case GoAway(time_left_s=left):
                self._view.notice(f"server will close this connection in {left or 0:.0f} s")
            case Connected(resumed=resumed, outage_s=outage):
                self._connected_once = True
                if resumed:
                    self._view.notice(f"reconnected after {outage:.1f} s")
                self._view.state("listening")
            case Reconnecting(reason=reason, delay_s=delay):
                self._view.notice(f"{reason}; retrying in {delay:.1f} s")
                self._view.state("reconnecting" if self._connected_once else "connecting")

    def _record(self, event: ServerEvent) -> None:
        """Every server event goes into the recording; answer audio into its own WAV."""
        if isinstance(event, AnswerAudio):
            self._recorder.answer_audio(event.pcm)
            return
        fields = {
            k: v for k, v in vars(event).items() if k not in ("t_received",) and v is not None
        }
        self._recorder.event(_snake(type(event).__name__), **fields)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
