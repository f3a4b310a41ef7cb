"""What happens in a session, as one typed stream: the conversation emits, observers listen.

The conversation decides (turns, barge-in, what goes to the link); everything that tells the
user or keeps a record of it listens: the view (screen or screen reader), the announcer
(earcons and spoken status), the event log (the recording). A new feature adds an event and
an observer, not a call threaded through the conversation.

Observers are called in the order given (the event log first, so nothing is lost to a view
that fails), synchronously, on the loop thread, as each event happens: an observer must not
block (the announcer only queues its sounds; its own task plays them). Events are frozen
dataclasses; times are time.monotonic() seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from shelfsight.core.phrases import Phrase
from shelfsight.live.events import ServerEvent
from shelfsight.media.camera import CameraStatus
from shelfsight.session.cost import AnswerCost, format_usd
from shelfsight.session.status import State

MOMENT_STALE_S = 2.0  # words about a moment ("a bit lower") mean nothing later than this
NEWS_STALE_S = 15.0  # news that lasts ("I missed what you said") may wait this long to be said


@dataclass(frozen=True)
class StateChanged:
    state: State


@dataclass(frozen=True)
class MicLevel:
    """Every mic chunk (20 ms): its level and whether it holds the user's speech."""

    dbfs: float
    speaking: bool


@dataclass(frozen=True)
class MicSent:
    """Mic audio handed to the link (16 kHz PCM16), after echo cancelling: the recording's
    mic.wav. The model hears all of it with `send_audio = "always"`, else its speech parts."""

    pcm: bytes


@dataclass(frozen=True)
class UserSaid:
    """A piece of the transcript of what the user said."""

    text: str


@dataclass(frozen=True)
class UserTyped:
    """A typed question, as it is asked (`shown`: what the user reads instead, when not
    the text the model gets)."""

    text: str
    shown: str = ""


@dataclass(frozen=True)
class TypingNow:
    """The question being typed so far; None when the prompt closes."""

    text: str | None


@dataclass(frozen=True)
class AnswerSaid:
    """A piece of the transcript of the answer."""

    text: str


@dataclass(frozen=True)
class AnswerEnded:
    """An answer ended: whole, `interrupted` by the user, or `cut` by the connection (it
    comes again); `latency_s` only where it means something."""

    latency_s: float | None
    interrupted: bool = False
    cut: bool = False


@dataclass(frozen=True)
class AnswerStopped:
    """This side silenced an answer (`why`); `by_key`: the user's own key did it."""

    why: str
    by_key: bool = False


@dataclass(frozen=True)
class AnswerBilled:
    """What an answer cost (from the server's usage metadata), and the session so far."""

    bill: AnswerCost
    session_usd: float


@dataclass(frozen=True)
class BudgetCrossed:
    """The session's estimated cost passed `percent` (80 or 100) of the budget; at 100 the
    conversation has dropped to its cheapest settings (`cheapest`: what they are, in words)."""

    percent: int
    spent_usd: float
    budget_usd: float
    cheapest: Phrase | None = None

    def sentence(self) -> Phrase:
        """What the user is told, aloud and on screen."""
        budget, spent = format_usd(self.budget_usd), format_usd(self.spent_usd)
        if self.percent < 100:
            return Phrase("budget_80", {"percent": self.percent, "budget": budget, "spent": spent})
        values = {"budget": budget, "spent": spent, "cheapest": self.cheapest or ""}
        return Phrase("budget_spent", values)


@dataclass(frozen=True)
class PictureSent:
    nbytes: int


@dataclass(frozen=True)
class CameraChanged:
    status: CameraStatus


@dataclass(frozen=True)
class Notice:
    """A line for the screen."""

    text: str


@dataclass(frozen=True)
class Speak:
    """Words to say aloud (the guide's hints, what was missed), dropped once `stale_s` old:
    a phrase, said in the language of the voice, or words to say as they are."""

    phrase: Phrase | str
    stale_s: float


@dataclass(frozen=True)
class Heard:
    """A server event, for the record (the conversation has acted on it)."""

    event: ServerEvent


@dataclass(frozen=True)
class Marked:
    """A moment only the record keeps (a key, an activity marker, a turn's latency...)."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)


SessionEvent = (
    StateChanged
    | MicLevel
    | MicSent
    | UserSaid
    | UserTyped
    | TypingNow
    | AnswerSaid
    | AnswerEnded
    | AnswerStopped
    | AnswerBilled
    | BudgetCrossed
    | PictureSent
    | CameraChanged
    | Notice
    | Speak
    | Heard
    | Marked
)


class Observer(Protocol):
    def on_event(self, event: SessionEvent) -> None: ...


@runtime_checkable
class Voice(Protocol):
    """An observer that plays sounds of its own through the speaker (the announcer): its
    task runs beside the conversation's, and a failing session waits for its last words."""

    @property
    def playing(self) -> bool: ...  # one of its sounds plays now, not an answer
    async def run(self) -> None: ...
    async def last_words(self, reason: str) -> None: ...  # bounded


class SessionEvents:
    """The observers of one session, in order; `emit` tells each (loop thread)."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self._observers = tuple(observers)

    @property
    def voices(self) -> list[Voice]:
        return [o for o in self._observers if isinstance(o, Voice)]

    def emit(self, event: SessionEvent) -> None:
        for observer in self._observers:
            observer.on_event(event)

    def notice(self, text: str) -> None:
        self.emit(Notice(text))

    def mark(self, kind: str, **fields: Any) -> None:
        self.emit(Marked(kind, fields))
