"""A view watches the session: the session's events, told as the view's own calls.

Every view (the live status line, plain lines, the screen reader, `ask`'s answer only, the
evaluation's collector) has the same few methods; `ViewObserver` is the one place that says
which event is which call. Loop thread only.
"""

from __future__ import annotations

from typing import Protocol

from shelfsight.core.phrases import phrase
from shelfsight.session.cost import format_usd
from shelfsight.session.events import (
    AnswerBilled,
    AnswerEnded,
    AnswerSaid,
    AnswerStopped,
    BudgetCrossed,
    MicLevel,
    Notice,
    PictureSent,
    SessionEvent,
    StateChanged,
    TypingNow,
    UserSaid,
    UserTyped,
)
from shelfsight.session.status import State


class View(Protocol):
    """What a view shows; see shelfsight.ui.view."""

    def state(self, state: State) -> None: ...
    def mic_level(self, dbfs: float, speaking: bool) -> None: ...
    def frame_sent(self, nbytes: int) -> None: ...
    def user_said(self, text: str) -> None: ...
    def user_typed(self, text: str) -> None: ...
    def typing(self, text: str | None) -> None: ...
    def answer_said(self, text: str) -> None: ...
    def turn_done(self, latency_s: float | None, interrupted: bool, cut: bool = False) -> None:
        """An answer ended: whole, `interrupted` by the user, or `cut` by the connection."""
    def notice(self, message: str) -> None: ...
    def answer_cost(self, line: str) -> None: ...


class ViewObserver:
    """Shows the session on `view` (an observer: see shelfsight.session.events)."""

    def __init__(self, view: View) -> None:
        self.view = view

    def on_event(self, event: SessionEvent) -> None:
        view = self.view
        match event:
            case StateChanged(state=state):
                view.state(state)
            case MicLevel(dbfs=dbfs, speaking=speaking):
                view.mic_level(dbfs, speaking)
            case PictureSent(nbytes=nbytes):
                view.frame_sent(nbytes)
            case UserSaid(text=text):
                view.user_said(text)
            case UserTyped(text=text, shown=shown):
                view.user_typed(shown or text)
            case TypingNow(text=text):
                view.typing(text)
            case AnswerSaid(text=text):
                view.answer_said(text)
            case AnswerEnded(latency_s=latency_s, interrupted=interrupted, cut=cut):
                view.turn_done(latency_s, interrupted, cut)
            case AnswerStopped(by_key=True):
                view.notice(phrase("answer_stopped"))  # the user's own key: say that it took
            case AnswerBilled(bill=bill, session_usd=usd):
                view.answer_cost(phrase("answer_cost", line=bill.line(), total=format_usd(usd)))
            case BudgetCrossed():
                self.view.notice(event.sentence().text())
            case Notice(text=text):
                view.notice(text)
