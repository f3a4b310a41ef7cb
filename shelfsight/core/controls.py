"""What the user's keys and typed lines become: small frozen events, made by `shelfsight.ui`
(keys, a pipe) and acted on by the session. At the bottom so neither reaches into the other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TalkPressed:
    t_monotonic: float


@dataclass(frozen=True)
class TalkReleased:
    t_monotonic: float


@dataclass(frozen=True)
class TypedQuestion:
    text: str


@dataclass(frozen=True)
class StopAnswer:
    pass


@dataclass(frozen=True)
class Quit:
    pass


@dataclass(frozen=True)
class GuideKey:
    """Guide me to the item we are talking about, or stop guiding."""


@dataclass(frozen=True)
class EndOfInput:
    """Standard input (a pipe of questions) has ended, after `questions` lines were read from
    it (0: nothing came, as from /dev/null: it was no channel for questions at all)."""

    questions: int = 0


@dataclass(frozen=True)
class Typing:
    """The question being typed so far, for the view to echo; None when the prompt closes."""

    text: str | None


Control = (
    TalkPressed | TalkReleased | TypedQuestion | StopAnswer | Quit | GuideKey | Typing | EndOfInput
)
