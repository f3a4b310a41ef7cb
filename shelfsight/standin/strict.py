"""What gemini-3.8-live refuses, refused the same way: a close with the service's code and reason.

Only rules Google's documentation states are enforced; where Google does not document the close
code or its wording, the code and reason the service has been seen to send are used, and the
source says so. Sources (Developer API unless marked):

- [model page] https://ai.google.dev/gemini-api/docs/models/gemini-3.8-live, "Migrating from
  Gemini 3.1 Flash Live": omit thinking_level / thinking_config; "Setting proactive_audio: false
  returns an error"; affective dialog "has been removed from the API. Remove any
  enable_affective_dialog configuration"; "The supported response modality is audio".
- [proto] google/ai/generativelanguage/v1beta/generative_service.proto (googleapis):
  `media_chunks` "DEPRECATED: Use one of audio, video, or text instead"; `activity_start` /
  `activity_end` "can only be sent if automatic (i.e. server-side) activity detection is
  disabled".
- Close codes are not documented for these. Observed: 1007 with `Invalid JSON payload received.
  Unknown name "..." at 'setup.generation_config': Cannot find field.` for a field the model does
  not take, even set to false (googleapis/python-genai#865, a Google engineer's answer there);
  1007 `Request contains an invalid argument.` on gemini-3.8-live for `proactivity`
  (googleapis/js-genai#1953); 1007 `realtime_input.media_chunks is deprecated. Use audio, video,
  or text instead.` on the first such message, after setupComplete (mastra-ai/mastra#18287,
  on 3.1 Flash Live).
- [SDK] google-genai `types.AudioTranscriptionConfig` (generated from the API's schema; the
  Kotlin and Java SDKs document the same fields): `languageCodes` "BCP-47 language codes
  providing hints about the languages present in the audio. If omitted or empty, defaults to
  automatic language detection", `customVocabulary`, `languageAuto` and `languageHints`
  (deprecated), `adaptationPhrases`, `wordTimestamp`, `diarization`, `mode`, `sourceText`. A
  field not among them is refused like any unknown field (1007, as observed above); a value
  of the wrong JSON type is refused as an invalid argument (close code and wording not
  documented: the generic 1007 reason is used).
- Frame size: no limit is documented for Live video. The nearest documented figure is 7 MB per
  inline image ([Enterprise] image understanding, "Maximum file size per file for inline data",
  Gemini 3 models): `MAX_INLINE_IMAGE_BYTES`, refused as an invalid argument.

The SDK sends top-level keys camelCase and nested ones snake_case; `pick` reads both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shelfsight.standin.protocol import (
    INVALID_ARGUMENT_REASON,
    decode_b64,
    pick,
    rate_from_mime,
)

MAX_INLINE_IMAGE_BYTES = 7 * 1024 * 1024
MEDIA_CHUNKS_REASON = (
    "realtime_input.media_chunks is deprecated. Use audio, video, or text instead."
)
UNKNOWN_FIELD_REASON = (
    "Invalid JSON payload received. Unknown name \"{field}\" at '{where}': Cannot find field."
)


@dataclass(frozen=True)
class Violation:
    """A rule a client broke: the close it gets, and which rule (for tests and records)."""

    rule: str
    code: int
    reason: str


TRANSCRIPTION_FIELDS = frozenset(
    {
        "languageCodes",
        "customVocabulary",
        "languageAuto",
        "languageHints",
        "adaptationPhrases",
        "wordTimestamp",
        "diarization",
        "mode",
        "sourceText",
    }
)
LIST_OF_STRINGS_FIELDS = ("languageCodes", "customVocabulary", "adaptationPhrases")


def setup_violation(setup: Mapping[str, Any]) -> Violation | None:
    """The first 3.8 setup rule `setup` breaks, or None."""
    for name in ("inputAudioTranscription", "outputAudioTranscription"):
        if (found := _transcription_violation(pick(setup, name), name)) is not None:
            return found
    generation = pick(setup, "generationConfig") or {}
    for field in ("thinkingConfig", "enableAffectiveDialog"):
        if pick(generation, field) is not None:
            reason = UNKNOWN_FIELD_REASON.format(field=field, where="setup.generation_config")
            return Violation(field, 1007, reason)
    proactivity = pick(setup, "proactivity")
    if proactivity is not None and pick(proactivity, "proactiveAudio") is False:
        return Violation("proactive_audio_false", 1007, INVALID_ARGUMENT_REASON)
    modalities = pick(generation, "responseModalities")
    if modalities is not None and [str(m).upper() for m in modalities] != ["AUDIO"]:
        return Violation("response_modalities", 1007, INVALID_ARGUMENT_REASON)
    return None


def _transcription_violation(config: Any, name: str) -> Violation | None:
    """An `AudioTranscriptionConfig` with a field it does not have, or a list that is not
    of strings (`languageCodes: "de-DE"`), or None."""
    if not isinstance(config, Mapping):
        return None
    for field in config:
        camel = re.sub(r"_([a-z])", lambda m: m[1].upper(), field)
        if camel not in TRANSCRIPTION_FIELDS:
            where = "setup." + re.sub(r"([A-Z])", r"_\1", name).lower()
            return Violation(
                f"{name}.{camel}", 1007, UNKNOWN_FIELD_REASON.format(field=field, where=where)
            )
    for field in LIST_OF_STRINGS_FIELDS:
        value = pick(config, field)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            return Violation(f"{name}.{field}", 1007, INVALID_ARGUMENT_REASON)
    return None


def realtime_violation(
    realtime: Mapping[str, Any],
    manual_activity: bool,
    refused_rates_hz: frozenset[int] = frozenset(),
) -> Violation | None:
    """The first rule a `realtimeInput` message breaks, or None. `refused_rates_hz`: audio
    rates this stand-in is set to refuse (the service documents 16 kHz in and says it
    resamples others; whether it takes every rate is not documented)."""
    if pick(realtime, "mediaChunks") is not None:
        return Violation("media_chunks", 1007, MEDIA_CHUNKS_REASON)
    audio = realtime.get("audio")
    if refused_rates_hz and isinstance(audio, Mapping):
        if rate_from_mime(str(pick(audio, "mimeType") or "")) in refused_rates_hz:
            return Violation("audio_rate", 1007, INVALID_ARGUMENT_REASON)
    markers = [pick(realtime, name) for name in ("activityStart", "activityEnd")]
    if any(m is not None for m in markers) and not manual_activity:
        return Violation("activity_with_automatic_detection", 1007, INVALID_ARGUMENT_REASON)
    video = realtime.get("video")
    if isinstance(video, Mapping) and _too_big(video):
        return Violation("frame_too_big", 1007, INVALID_ARGUMENT_REASON)
    return None


def content_violation(content: Mapping[str, Any]) -> Violation | None:
    """The first rule a `clientContent` message breaks (an inline image too big), or None."""
    for turn in content.get("turns") or []:
        for part in turn.get("parts") or []:
            blob = pick(part, "inlineData")
            if isinstance(blob, Mapping) and _too_big(blob):
                return Violation("frame_too_big", 1007, INVALID_ARGUMENT_REASON)
    return None


def _too_big(blob: Mapping[str, Any]) -> bool:
    data = str(blob.get("data", ""))
    if len(data) * 3 // 4 <= MAX_INLINE_IMAGE_BYTES:  # base64: cheap check before decoding
        return False
    return len(decode_b64(data)) > MAX_INLINE_IMAGE_BYTES
