"""What answers cost: tokens by modality from the server's `usageMetadata`, and a price.

Each `Usage` is one turn's bill. The Live API bills the whole context window again on every
turn (Google's Live API best practices, "Pricing and billing"), so a session's cost is the sum
of its turns' bills, not the last one. The price is an estimate from dated per-modality prices
(`shelfsight.core.prices`, settings `price_*`), in USD per 1M tokens.

Prompt tokens the server does not break down by modality are counted as text (the cheapest
input), and thinking tokens as text output. Loop thread only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from shelfsight.core.phrases import phrase
from shelfsight.core.prices import DEFAULT_PRICES, PRICES_AS_OF
from shelfsight.live.events import Usage


@dataclass(frozen=True)
class Prices:
    """USD per 1M tokens, by direction and modality (images and video frames are one)."""

    text_in: float = DEFAULT_PRICES["text_in"]
    audio_in: float = DEFAULT_PRICES["audio_in"]
    video_in: float = DEFAULT_PRICES["video_in"]
    text_out: float = DEFAULT_PRICES["text_out"]
    audio_out: float = DEFAULT_PRICES["audio_out"]
    as_of: str = PRICES_AS_OF

    @classmethod
    def from_settings(cls, settings: Any) -> Prices:
        """From `Settings.price_*` (any object with those attributes)."""
        return cls(
            text_in=float(settings.price_text_in),
            audio_in=float(settings.price_audio_in),
            video_in=float(settings.price_video_in),
            text_out=float(settings.price_text_out),
            audio_out=float(settings.price_audio_out),
        )


@dataclass(frozen=True)
class Tokens:
    """Token counts of one answer or a whole session."""

    audio_in: int = 0
    video_in: int = 0
    text_in: int = 0
    audio_out: int = 0
    text_out: int = 0

    @property
    def tokens_in(self) -> int:
        return self.audio_in + self.video_in + self.text_in

    @property
    def tokens_out(self) -> int:
        return self.audio_out + self.text_out

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def from_usage(cls, usage: Usage) -> Tokens:
        prompt = usage.prompt_by_modality
        audio_in = prompt.get("audio", 0)
        video_in = prompt.get("video", 0) + prompt.get("image", 0)
        detailed_text = prompt.get("text", 0) + prompt.get("document", 0)
        # The server's details may not add up to its prompt count: the rest is counted as text.
        text_in = max(detailed_text, usage.prompt_tokens - audio_in - video_in)
        response = usage.response_by_modality
        audio_out = response.get("audio", 0)
        text_out = max(response.get("text", 0), usage.response_tokens - audio_out)
        return cls(audio_in, video_in, text_in, audio_out, text_out + usage.thoughts_tokens)

    def usd(self, prices: Prices) -> float:
        return (
            self.audio_in * prices.audio_in
            + self.video_in * prices.video_in
            + self.text_in * prices.text_in
            + self.audio_out * prices.audio_out
            + self.text_out * prices.text_out
        ) / 1e6

    def describe(self) -> str:
        """'4,210 tokens in (audio 1,600, video 2,304, text 306), 180 out'."""
        parts = [
            phrase("modality_count", name=phrase(f"modality_{name}"), count=count)
            for name, count in (
                ("audio", self.audio_in),
                ("video", self.video_in),
                ("text", self.text_in),
            )
            if count
        ]
        counts = {"tokens_in": self.tokens_in, "tokens_out": self.tokens_out}
        if parts:
            return phrase("tokens_parts", parts=", ".join(parts), **counts)
        return phrase("tokens", **counts)


@dataclass(frozen=True)
class AnswerCost:
    tokens: Tokens
    usd: float

    def line(self) -> str:
        return phrase("answer_cost_line", tokens=self.tokens.describe(), usd=format_usd(self.usd))


BUDGET_WARN_PERCENT = 80


class CostMeter:
    """Adds up the bills of a session's answers; `budget_usd` (0: none) is what the session
    may cost."""

    def __init__(self, prices: Prices | None = None, budget_usd: float = 0.0) -> None:
        self.prices = prices or Prices()
        self.budget_usd = budget_usd
        self._told_percent = 0  # the highest budget mark already crossed
        self.answers = 0
        self.tokens = Tokens()
        self.usd = 0.0

    def add(self, usage: Usage) -> AnswerCost:
        tokens = Tokens.from_usage(usage)
        cost = AnswerCost(tokens, tokens.usd(self.prices))
        self.answers += 1
        self.tokens = self.tokens + tokens
        self.usd += cost.usd
        return cost

    def budget_crossed(self) -> int | None:
        """80 or 100 when the spending has just passed that share of the budget (each once;
        100 alone when one answer passed both), else None."""
        if self.budget_usd <= 0:
            return None
        percent = 100 * self.usd / self.budget_usd
        mark = 100 if percent >= 100 else BUDGET_WARN_PERCENT if percent >= 80 else 0
        if mark <= self._told_percent:
            return None
        self._told_percent = mark
        return mark

    def as_dict(self) -> dict[str, object]:
        """For the recording's manifest and `shelfsight sessions`."""
        return {
            "billed_turns": self.answers,
            "tokens": {
                **asdict(self.tokens),
                "in": self.tokens.tokens_in,
                "out": self.tokens.tokens_out,
            },
            "cost_usd": round(self.usd, 6),
            "budget_usd": self.budget_usd or None,
            "prices_usd_per_mtok": asdict(self.prices),
        }

    def line(self) -> str:
        if not self.answers:
            return phrase("no_usage")
        tokens, usd, date = self.tokens.describe(), format_usd(self.usd), self.prices.as_of
        if self.budget_usd > 0:
            percent, budget = 100 * self.usd / self.budget_usd, format_usd(self.budget_usd)
            return phrase(
                "cost_line_budget",
                tokens=tokens,
                usd=usd,
                date=date,
                percent=percent,
                budget=budget,
            )
        return phrase("cost_line", tokens=tokens, usd=usd, date=date)


def format_usd(usd: float) -> str:
    """Cents for sums a shopper thinks in, four decimals below a cent."""
    return phrase("usd_cents" if usd >= 0.1 else "usd_fraction", usd=usd)
