"""What the Live server says, as the rest of the program sees it: small frozen dataclasses.

`translate` turns one SDK message into events (pure: no connection state); `LiveLink` adds the
ones about its connections (Connected, Reconnecting, AnswerCut, FrameSent, SlowLink,
AudioLost) and re-exports them all.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from google.genai import types

from shelfsight.core.frames import EncodedFrame
from shelfsight.core.pcm import CHUNK_S, SPEAKER_RATE_HZ

MIC_CHUNK_S = CHUNK_S


@dataclass(frozen=True)
class AnswerAudio:
    pcm: bytes  # 24 kHz mono PCM16
    t_received: float


@dataclass(frozen=True)
class UserTranscript:
    text: str


@dataclass(frozen=True)
class AnswerTranscript:
    text: str


@dataclass(frozen=True)
class Interrupted:
    t_received: float


@dataclass(frozen=True)
class TurnComplete:
    t_received: float


@dataclass(frozen=True)
class Usage:
    """What one answer was billed, from the server's `usageMetadata`, in tokens.

    `prompt_tokens` is the whole context window the turn read (the service bills it again on
    every turn); the `*_by_modality` maps use lower-case keys: text, audio, video, image.
    """

    prompt_tokens: int
    response_tokens: int
    total_tokens: int
    thoughts_tokens: int = 0
    prompt_by_modality: dict[str, int] = field(default_factory=dict)
    response_by_modality: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GoAway:
    time_left_s: float | None


@dataclass(frozen=True)
class ToolCall:
    """The model calls a function (one event per call of a `toolCall` message). Answer it by
    id with `LiveLink.send_tool_response`; `call_id` may be missing and `args` malformed: the
    server's word, not checked here."""

    call_id: str | None
    name: str
    args: dict[str, Any] | None
    t_received: float


@dataclass(frozen=True)
class ToolCallCancellation:
    """The server withdrew these calls (a user interrupted a turn that made them)."""

    call_ids: tuple[str, ...]


@dataclass(frozen=True)
class AnswerCut:
    """The connection carrying an answer ended before the answer did. Drop what is still
    buffered of it and treat the turn as cut: its question usually came after the newest
    resumption handle, so it is re-sent and the answer comes again from its start."""

    t_received: float


@dataclass(frozen=True)
class FrameSent:
    """A frame went out on the wire (a frame handed to the link may be replaced by a newer one
    before it is sent: only these reached the model)."""

    frame: EncodedFrame
    t_sent: float
    with_turn: bool = False  # sent inside a question's turn (the picture it is about)


@dataclass(frozen=True)
class Connected:
    attempt: int  # tries this connection took (1: the first try)
    resumed: bool  # the setup presented our resumption handle and the server accepted it
    outage_s: float  # how long nothing could be sent before this connection (0 for the first)
    planned: bool = False  # a switch the server asked for (goAway), not a failure
    context_lost: bool = False  # the server refused our handle: a fresh conversation began


@dataclass(frozen=True)
class Reconnecting:
    reason: str
    attempt: int  # the attempt about to be made
    delay_s: float  # the wait before it
    outage_s: float = 0.0  # time without a connection so far
    gives_up_in_s: float = 0.0  # the run ends with an error if still not connected by then
    planned: bool = False  # after a goAway: expect a short pause, not a failure
    again: bool = False  # the connection just made failed before anything came back on it


@dataclass(frozen=True)
class SlowLink:
    """The upload cannot keep up (`slow`), or has kept up again for a while. While slow the
    link sends 8 kHz audio (half the bytes) and no pictures except with a typed question."""

    slow: bool
    backlog_s: float  # mic audio waiting to go out when this was decided


@dataclass(frozen=True)
class PictureSize:
    """Pictures should be small (`light`: a slow upload, or one just back to full-rate
    audio), or full size again."""

    light: bool


@dataclass(frozen=True)
class AudioLost:
    """Mic audio that never reached the model: an outage or a slow link outlasted the buffer."""

    lost_s: float  # since the last such event
    total_s: float  # in the whole session
    missed_at: tuple[float, ...] = ()  # wall-clock starts (time.time()) of utterances lost


ServerEvent = (
    AnswerAudio
    | UserTranscript
    | AnswerTranscript
    | Interrupted
    | TurnComplete
    | GoAway
    | Usage
    | ToolCall
    | ToolCallCancellation
    | AnswerCut
    | FrameSent
    | Connected
    | Reconnecting
    | SlowLink
    | AudioLost
    | PictureSize
)


def translate(msg: types.LiveServerMessage, now: float | None = None) -> list[ServerEvent]:
    """The events one server message carries, in the order a listener needs them."""
    now = time.monotonic() if now is None else now
    out: list[ServerEvent] = []
    content = msg.server_content
    if content is not None:
        if content.interrupted:
            out.append(Interrupted(now))
        if content.input_transcription and content.input_transcription.text:
            out.append(UserTranscript(content.input_transcription.text))
        if content.model_turn and content.model_turn.parts:
            for part in content.model_turn.parts:
                blob = part.inline_data
                if blob and blob.data and (blob.mime_type or "").startswith("audio/pcm"):
                    out.append(AnswerAudio(_to_speaker_rate(blob.data, blob.mime_type), now))
        if content.output_transcription and content.output_transcription.text:
            out.append(AnswerTranscript(content.output_transcription.text))
        if content.turn_complete:
            out.append(TurnComplete(now))
    if msg.usage_metadata is not None:  # after the turn it bills, when both come together
        out.append(usage_from(msg.usage_metadata))
    if msg.tool_call is not None:
        for call in msg.tool_call.function_calls or []:
            out.append(ToolCall(call.id, call.name or "", call.args, now))
    if msg.tool_call_cancellation is not None:
        out.append(ToolCallCancellation(tuple(msg.tool_call_cancellation.ids or ())))
    if msg.go_away is not None:
        out.append(GoAway(_seconds(msg.go_away.time_left)))
    return out


def usage_from(meta: types.UsageMetadata) -> Usage:
    """The SDK's UsageMetadata as a Usage; missing counts are 0."""
    return Usage(
        prompt_tokens=meta.prompt_token_count or 0,
        response_tokens=meta.response_token_count or 0,
        total_tokens=meta.total_token_count or 0,
        thoughts_tokens=meta.thoughts_token_count or 0,
        prompt_by_modality=_by_modality(meta.prompt_tokens_details),
        response_by_modality=_by_modality(meta.response_tokens_details),
    )


def _by_modality(details: list[types.ModalityTokenCount] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for detail in details or []:
        modality = detail.modality
        name = (modality.value if modality is not None else "TEXT").lower()
        name = "text" if name == "modality_unspecified" else name  # the API's own rule
        out[name] = out.get(name, 0) + (detail.token_count or 0)
    return out


def _seconds(duration: object) -> float | None:
    if duration is None:
        return None
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        return float(duration.total_seconds())  # type: ignore[attr-defined]
    with contextlib.suppress(TypeError, ValueError):
        return float(str(duration).rstrip("s"))
    return None


def _to_speaker_rate(pcm: bytes, mime_type: str | None) -> bytes:
    """The service sends 24 kHz; convert if a future model says otherwise."""
    rate = SPEAKER_RATE_HZ
    for param in (mime_type or "").split(";"):
        key, _, value = param.strip().partition("=")
        if key == "rate" and value.isdigit():
            rate = int(value)
    if rate == SPEAKER_RATE_HZ:
        return pcm
    samples = np.frombuffer(pcm, dtype=np.int16)
    return soxr.resample(samples, rate, SPEAKER_RATE_HZ).astype(np.int16).tobytes()
