"""Every server event goes into the recording: answer audio into its WAV, the rest as events."""

from __future__ import annotations

from shelfsight.live.events import AnswerAudio, FrameSent, ServerEvent
from shelfsight.session.recording import NullRecorder, Recorder


def record_event(recorder: Recorder | NullRecorder, event: ServerEvent) -> None:
    match event:
        case AnswerAudio(pcm=pcm):
            recorder.answer_audio(pcm)
        case FrameSent(frame=frame, t_sent=t_sent):
            age_ms = round((t_sent - frame.t_capture) * 1000, 1)
            recorder.frame(frame.jpeg, width=frame.width, height=frame.height, age_ms=age_ms)
        case _:
            fields = {k: v for k, v in vars(event).items() if k != "t_received" and v is not None}
            recorder.event(snake_case(type(event).__name__), **fields)


def snake_case(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
