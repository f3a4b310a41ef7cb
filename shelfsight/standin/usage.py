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
generic ones. Sliding-window compression drops the oldest context past `triggerTokens`
(default 80 % of the 131,072-token input limit, per the proto) down to `targetTokens` (the
stand-in assumes half the trigger when unset). Loop thread only.
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
        # Oldest first: [modality, tokens]; neighbours of one modality are merged.
        self._context: collections.deque[list[Any]] = collections.deque()

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
        """The usageMetadata of a turn that read the context now and answered with
        `answer_audio_s` of speech; the answer then joins the context."""
        by_modality: dict[str, float] = {"TEXT": float(self._system_tokens)}
        for modality, tokens in self._context:
            by_modality[modality] = by_modality.get(modality, 0.0) + tokens
        counts = {m: round(t) for m, t in by_modality.items() if round(t)}
        prompt_details = [{"modality": m, "tokenCount": n} for m, n in counts.items()]
        prompt = sum(counts.values())
        response = round(answer_audio_s * self._rates.audio_out_per_s)
        self._add("AUDIO", response)
        return {
            "promptTokenCount": prompt,
            "responseTokenCount": response,
            "totalTokenCount": prompt + response,
            "promptTokensDetails": prompt_details,
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": response}],
        }

    def _add(self, modality: str, tokens: float) -> None:
        if tokens <= 0:
            return
        if self._context and self._context[-1][0] == modality:
            self._context[-1][1] += tokens
        else:
            self._context.append([modality, tokens])
        self._compress()

    def _compress(self) -> None:
        if self._trigger is None:
            return
        total = self._system_tokens + sum(t for _, t in self._context)
        if total <= self._trigger:
            return
        while self._context and total > self._target:
            excess = total - self._target
            oldest = self._context[0]
            if oldest[1] <= excess:
                total -= oldest[1]
                self._context.popleft()
            else:
                oldest[1] -= excess
                total -= excess


def _system_text(setup: Mapping[str, Any]) -> str:
    instruction = pick(setup, "systemInstruction") or {}
    parts = instruction.get("parts") or [] if isinstance(instruction, Mapping) else []
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping))
