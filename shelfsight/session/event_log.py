"""The recording's observer of the session: every server event (answer audio into its WAV, the
rest as events), the mic audio sent, and the moments worth keeping."""

from __future__ import annotations

from shelfsight.live.events import AnswerAudio, FrameSent, ServerEvent
from shelfsight.session.events import (
    AnswerBilled,
    AnswerStopped,
    BudgetCrossed,
    CameraChanged,
    Heard,
    Marked,
    MicSent,
    SessionEvent,
    UserTyped,
)
from shelfsight.session.recording import NullRecorder, Recorder


class EventLog:
    """Writes the session into `recorder` (an observer: see shelfsight.session.events)."""

    def __init__(self, recorder: Recorder | NullRecorder) -> None:
        self.recorder = recorder

    def on_event(self, event: SessionEvent) -> None:
        recorder = self.recorder
        match event:
            case Heard(event=server_event):
                record_event(recorder, server_event)
            case MicSent(pcm=pcm):
                recorder.mic(pcm)
            case Marked(kind=kind, fields=fields):
                recorder.event(kind, **fields)
            case UserTyped(text=text):
                recorder.event("typed_text", text=text)
            case AnswerStopped(why=why):
                recorder.event("answer_stopped", why=why)
            case AnswerBilled(bill=bill):
                recorder.event("answer_cost", usd=round(bill.usd, 6), **vars(bill.tokens))
            case CameraChanged(status=status):
                recorder.event("camera", stalled=status.stalled, outage_s=status.outage_s)
            case BudgetCrossed(percent=percent, spent_usd=spent, budget_usd=budget):
                recorder.event(
                    "budget", percent=percent, spent_usd=round(spent, 6), budget_usd=budget
                )


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
