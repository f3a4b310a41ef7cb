"""How shelfsight connects: the SDK client and the session setup sent on every (re)connect."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from google import genai
from google.genai import types


class SetupSettings(Protocol):
    """The part of the run's settings the session setup is made of (`shelfsight.settings.
    Settings` has it): the link's stage takes this part without the rest."""

    @property
    def mode(self) -> str: ...  # "ptt": the client marks activity (no server detection)
    @property
    def voice(self) -> str: ...
    @property
    def language(self) -> str: ...  # BCP-47, or "" for the model's choice
    @property
    def media_resolution(self) -> str: ...  # low, medium, high
    @property
    def start_sensitivity(self) -> str: ...  # low, high
    @property
    def end_sensitivity(self) -> str: ...
    @property
    def prefix_padding_ms(self) -> int: ...
    @property
    def silence_ms(self) -> int: ...
    @property
    def vocabulary(self) -> tuple[str, ...]: ...
    @property
    def context_tokens(self) -> int: ...  # the sliding window's trigger (its target: half)


@dataclass(frozen=True)
class Endpoint:
    """Where the Live API is: Google's by default, a local stand-in for demo and replay."""

    base_url: str | None = None
    ssl_context: ssl.SSLContext | None = None


def make_client(
    api_key: str, endpoint: Endpoint = Endpoint(), ws_args: dict[str, object] | None = None
) -> genai.Client:
    """A client whose websocket closes fast on shutdown (Ctrl-C must end the run within 2 s)."""
    # No websockets keepalive: its ping waits behind a full write buffer, so while the mic
    # streams it never notices a stalled link, and it cannot be told that ACKs still arrive on
    # a slow one. LiveLink's watchdog pings and watches what comes back instead
    # (shelfsight.live.watchdog). A short open timeout: an attempt made while the link was
    # dead must not hold up the first one after it returns.
    args: dict[str, object] = {
        "close_timeout": 1.0,
        "open_timeout": 5.0,
        "ping_interval": None,
    }
    args.update(ws_args or {})  # benchmarks: e.g. compression=None, as a server without deflate
    if endpoint.ssl_context is not None:
        args["ssl"] = endpoint.ssl_context
    options = types.HttpOptions(base_url=endpoint.base_url, async_client_args=args)
    return genai.Client(api_key=api_key, http_options=options)


MEDIA_RESOLUTION = {
    "low": types.MediaResolution.MEDIA_RESOLUTION_LOW,
    "medium": types.MediaResolution.MEDIA_RESOLUTION_MEDIUM,
    "high": types.MediaResolution.MEDIA_RESOLUTION_HIGH,
}


def combined_vocabulary(*sources: Iterable[str]) -> list[str] | None:
    """Words to bias input transcription towards (product names), from every source (the
    vocabulary setting, the shopping list...), in order, each once (case-insensitive); None
    when there are none, so the setup carries no empty field."""
    seen: dict[str, str] = {}
    for source in sources:
        for word in source:
            if word.strip():
                seen.setdefault(word.strip().casefold(), word.strip())
    return list(seen.values()) or None


def context_window(trigger_tokens: int) -> types.ContextWindowCompressionConfig:
    """Sliding-window compression that keeps what each turn re-reads (and is billed for)
    under `trigger_tokens` plus the turn itself.

    Before a turn runs with more than `trigger_tokens` in its context, the server drops the
    oldest turns, cutting at the start of a user turn, until at most half remains (`SlidingWindow`
    in the SDK: target_tokens defaults to trigger_tokens / 2; a cut costs latency, so it should
    not come every turn). The system instruction (the prompt and the shopping list) is never
    cut. What goes is the oldest questions, their pictures and answers: with the default
    16,000 tokens and speech-only audio, about the last 8-15 questions stay (README, "What it
    costs")."""
    return types.ContextWindowCompressionConfig(
        trigger_tokens=trigger_tokens,
        sliding_window=types.SlidingWindow(target_tokens=trigger_tokens // 2),
    )


def live_config(
    settings: SetupSettings,
    prompt: str,
    handle: str | None,
    *,
    tools: Sequence[types.Tool] = (),
    vocabulary: Sequence[str] = (),
) -> types.LiveConnectConfig:
    """The session setup, rebuilt on every (re)connect with the newest resumption handle.

    Only fields gemini-3.8-live accepts: no `thinking_config`, `proactivity` or
    `enable_affective_dialog` (the service refuses them; see shelfsight.standin.strict).
    Turn coverage is left at its 3.8 default (all video), which is why frames are sent only
    as often as the frame-rate policy allows. `tools`: function declarations of the features
    in use (none: the field is left out); `vocabulary`: more words for input transcription
    besides the `vocabulary` setting (the shopping list's items).
    """
    start = {
        "low": types.StartSensitivity.START_SENSITIVITY_LOW,
        "high": types.StartSensitivity.START_SENSITIVITY_HIGH,
    }
    end = {
        "low": types.EndSensitivity.END_SENSITIVITY_LOW,
        "high": types.EndSensitivity.END_SENSITIVITY_HIGH,
    }
    detection = types.AutomaticActivityDetection(
        disabled=settings.mode == "ptt",
        start_of_speech_sensitivity=start[settings.start_sensitivity],
        end_of_speech_sensitivity=end[settings.end_sensitivity],
        prefix_padding_ms=settings.prefix_padding_ms,
        silence_duration_ms=settings.silence_ms,
    )
    voice = types.VoiceConfig(
        prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=settings.voice)
    )
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        system_instruction=prompt,  # with its language line (session.prompt.with_language)
        speech_config=types.SpeechConfig(
            voice_config=voice, language_code=settings.language or None
        ),
        media_resolution=MEDIA_RESOLUTION[settings.media_resolution],
        # custom_vocabulary biases the transcription of what the user says towards these names,
        # language_codes (BCP-47) says which language they speak, so it is transcribed in it
        # rather than guessed (google-genai types.AudioTranscriptionConfig); None rather than
        # [] when there are none.
        input_audio_transcription=types.AudioTranscriptionConfig(
            custom_vocabulary=combined_vocabulary(settings.vocabulary, vocabulary),
            language_codes=[settings.language] if settings.language else None,
        ),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=detection,
            activity_handling=types.ActivityHandling.START_OF_ACTIVITY_INTERRUPTS,
        ),
        session_resumption=types.SessionResumptionConfig(handle=handle),
        context_window_compression=context_window(settings.context_tokens),
        tools=list(tools) or None,
    )
