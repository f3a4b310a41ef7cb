"""The `BidiGenerateContent` wire format as the stand-in reads it (google-genai 3.6).

The SDK spells some fields camelCase and others snake_case in the same message, so every read
of a client field goes through `pick`. Refusal reasons copy the real service's wording because
clients match on them to tell the user what to fix.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PATH_RE = re.compile(
    r"^/+ws/google\.ai\.generativelanguage\.(?P<version>v\w+)\.GenerativeService"
    r"\.BidiGenerateContent(Constrained)?$"
)
MAX_CLOSE_REASON_BYTES = 123  # RFC 6455 limit; the real service truncates too
INVALID_ARGUMENT_REASON = "Request contains an invalid argument."
INTERNAL_REASON = "Internal error encountered."
DEADLINE_REASON = "Deadline expired before operation could complete."  # after goAway's timeLeft
BAD_KEY_REASON = "API key not valid. Please pass a valid API key."
BAD_MODEL_REASON = (
    "{model} is not found for API version {version}, or is not supported for "
    "bidiGenerateContent. Call ListModels to see the list of available models and their "
    "supported methods."
)


def pick(obj: Mapping[str, Any] | None, camel: str) -> Any:
    """Reads a field the SDK may spell camelCase or snake_case (it sends both, per field)."""
    if not obj:
        return None
    snake = re.sub(r"([A-Z])", r"_\1", camel).lower()
    return obj.get(camel, obj.get(snake))


def resumption_handle(setup: Mapping[str, Any] | None) -> str | None:
    """The handle a setup resumes from; None for a fresh session."""
    handle = pick(pick(setup, "sessionResumption"), "handle")
    return str(handle) if handle else None


def decode_b64(text: str) -> bytes:
    """Decodes standard or urlsafe base64 (the SDK sends urlsafe), padding optional."""
    normal = text.replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(normal + "=" * (-len(normal) % 4))


def api_version(path: str) -> str:
    match = PATH_RE.match(path)
    return match["version"] if match else "v1beta"


def rate_from_mime(mime_type: str, default_hz: int = 16_000) -> int:
    match = re.search(r"rate=(\d+)", mime_type)
    return int(match.group(1)) if match else default_hz


def model_is_served(models: frozenset[str] | None, model: str) -> bool:
    """Whether `model` ("models/NAME" or "NAME") is in `models` (None: every model is)."""
    name = model.removeprefix("models/")
    return models is None or name in {m.removeprefix("models/") for m in models}


def truncate_reason(reason: str) -> str:
    return reason.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


@dataclass(frozen=True)
class SessionOptions:
    """The parts of a client's setup message that change how the stand-in behaves."""

    manual_activity: bool
    barge_in: bool
    silence_ms: int
    input_transcription: bool
    output_transcription: bool
    resumption: bool

    @classmethod
    def from_setup(cls, setup: Mapping[str, Any], default_silence_ms: int) -> SessionOptions:
        rt = pick(setup, "realtimeInputConfig") or {}
        aad = pick(rt, "automaticActivityDetection") or {}
        return cls(
            manual_activity=bool(pick(aad, "disabled")),
            barge_in=pick(rt, "activityHandling") != "NO_INTERRUPTION",
            silence_ms=int(pick(aad, "silenceDurationMs") or default_silence_ms),
            input_transcription=pick(setup, "inputAudioTranscription") is not None,
            output_transcription=pick(setup, "outputAudioTranscription") is not None,
            resumption=pick(setup, "sessionResumption") is not None,
        )
