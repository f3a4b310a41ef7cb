"""The stand-in's usage model: what each turn would be billed, sent as `usageMetadata`.

Shaped like the service's (Developer API `BidiGenerateContentServerMessage.usage_metadata`,
a top-level field next to `serverContent`; names from the v1beta proto and a gemini-3.8-live
receipt quoted on discuss.ai.google.dev, thread 188765): `promptTokenCount`,
`responseTokenCount`, `totalTokenCount` (prompt + response), `promptTokensDetails` and
`responseTokensDetails` as `[{"modality": "AUDIO", "tokenCount": n}, ...]`. One per completed
turn; its prompt count is the whole context window the turn read, since the service bills the
context again on every turn (Google's Live API best practices, "Pricing and billing").

Rates (`UsageRates`): audio 32 tokens a second ("Gemini represents each second of audio as 32
tokens", Gemini token docs); frames by `mediaResolution` as the SDK's `MediaResolution` enum
documents them (LOW 64, MEDIUM 256, HIGH 256 "zoomed reframing"); text about 4 characters a
token (Gemini token docs). No 3.8-specific figures are published; these are the documented
generic ones.

Sliding-window compression as the SDK's `ContextWindowCompressionConfig` / `SlidingWindow`
document it: `triggerTokens` is counted "before running turn" (default 80 % of the
131,072-token input limit, per the proto), and then the window "will always be cut at start of
USER role turn", keeping the newest turns within `targetTokens` ("If not set,
trigger_tokens/2 is assumed"); the system instruction is never cut. So the stand-in keeps
whole turns (a user turn: everything heard and seen since the last answer, then that answer)
and cuts only when a turn runs, never between turns. Loop thread only.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shelfsight.standin.protocol import pick

INPUT_TOKEN_LIMIT = 131_072  # gemini-3.8-live model page


@dataclass(frozen=True)
class UsageRates:
    audio_in_per_s: float = 32.0
    audio_out_per_s: float = 32.0
    frame_low: int = 64
    frame_medium: int = 256
    frame_high: int = 256
    frame_unspecified: int = 256  # the service's default is not documented: as MEDIUM
    chars_per_token: float = 4.0

    def frame_tokens(self, media_resolution: object) -> int:
        name = str(media_resolution or "").upper().removeprefix("MEDIA_RESOLUTION_")
        return {"LOW": self.frame_low, "MEDIUM": self.frame_medium, "HIGH": self.frame_high}.get(
            name, self.frame_unspecified
        )


class UsageModel:
    """One session's context window, by modality, and the bill of each turn."""

    def __init__(self, rates: UsageRates, setup: Mapping[str, Any]) -> None:
        self._rates = rates
        generation = pick(setup, "generationConfig") or {}
        self.frame_tokens = rates.frame_tokens(pick(generation, "mediaResolution"))
        compression = pick(setup, "contextWindowCompression")
        trigger = pick(compression, "triggerTokens") if compression is not None else None
        self._trigger: int | None = None
        if compression is not None:
            self._trigger = int(trigger or INPUT_TOKEN_LIMIT * 0.8)
        window = pick(compression, "slidingWindow") if compression is not None else None
        self._target = int(pick(window, "targetTokens") or (self._trigger or 0) // 2)
        self._system_tokens = self.text_tokens(_system_text(setup))
        # Oldest first: turns, each [modality, tokens] oldest first (neighbours of one modality
        # merged); the last turn is open until its answer has joined it.
        self._turns: collections.deque[list[list[Any]]] = collections.deque([[]])
        self._answered = False  # the newest turn holds its answer: new input opens a turn

    @property
    def context_tokens(self) -> float:
        """What the next turn would read now (before any cut), system instruction included."""
        return self._system_tokens + sum(t for turn in self._turns for _, t in turn)

    def text_tokens(self, text: str) -> int:
        return math.ceil(len(text) / self._rates.chars_per_token) if text else 0

    def heard_audio(self, seconds: float) -> None:
        self._add("AUDIO", seconds * self._rates.audio_in_per_s)

    def saw_frame(self) -> None:
        self._add("VIDEO", self.frame_tokens)

    def saw_image(self) -> None:
        self._add("IMAGE", self.frame_tokens)

    def read_text(self, text: str) -> None:
        self._add("TEXT", self.text_tokens(text))

    def bill(self, answer_audio_s: float) -> dict[str, Any]:
        """The usageMetadata of a turn that read the context now (cut first if it is over the
        trigger) and answered with `answer_audio_s` of speech; the answer joins the turn."""
        self._compress()
        by_modality: dict[str, float] = {"TEXT": float(self._system_tokens)}
        for turn in self._turns:
            for modality, tokens in turn:
                by_modality[modality] = by_modality.get(modality, 0.0) + tokens
        counts = {m: round(t) for m, t in by_modality.items() if round(t)}
        prompt_details = [{"modality": m, "tokenCount": n} for m, n in counts.items()]
        prompt = sum(counts.values())
        response = round(answer_audio_s * self._rates.audio_out_per_s)
        self._add("AUDIO", response, answer=True)
        return {
            "promptTokenCount": prompt,
            "responseTokenCount": response,
            "totalTokenCount": prompt + response,
            "promptTokensDetails": prompt_details,
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": response}],
        }

    def _add(self, modality: str, tokens: float, answer: bool = False) -> None:
        if answer:
            self._answered = True
        elif self._answered:
            self._turns.append([])  # the user's next turn begins
            self._answered = False
        if tokens <= 0:
            return
        turn = self._turns[-1]
        if turn and turn[-1][0] == modality:
            turn[-1][1] += tokens
        else:
            turn.append([modality, tokens])

    def _compress(self) -> None:
        """Before a turn runs: over the trigger, drop the oldest whole turns (never the one
        running) until the context is within the target."""
        if self._trigger is None or self.context_tokens <= self._trigger:
            return
        total = self.context_tokens
        while len(self._turns) > 1 and total > self._target:
            total -= sum(t for _, t in self._turns.popleft())


def _system_text(setup: Mapping[str, Any]) -> str:
    instruction = pick(setup, "systemInstruction") or {}
    parts = instruction.get("parts") or [] if isinstance(instruction, Mapping) else []
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping))
