"""How shelfsight connects: the SDK client and the session setup sent on every (re)connect."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from google import genai
from google.genai import types

from shelfsight.session.prompt import with_language
from shelfsight.settings import Settings


@dataclass(frozen=True)
class Endpoint:
    """Where the Live API is: Google's by default, a local stand-in for demo and replay."""

    base_url: str | None = None
    ssl_context: ssl.SSLContext | None = None


def make_client(api_key: str, endpoint: Endpoint = Endpoint()) -> genai.Client:
    """A client whose websocket closes fast on shutdown (Ctrl-C must end the run within 2 s)."""
    # Keepalive pongs from the Live API can be slow (reports of 8-30 s); a 30 s allowance keeps
    # a slow pong from being taken for a dead link.
    args: dict[str, object] = {
        "close_timeout": 1.0,
        "open_timeout": 10.0,
        "ping_interval": 20.0,
        "ping_timeout": 30.0,
    }
    if endpoint.ssl_context is not None:
        args["ssl"] = endpoint.ssl_context
    options = types.HttpOptions(base_url=endpoint.base_url, async_client_args=args)
    return genai.Client(api_key=api_key, http_options=options)


def live_config(settings: Settings, prompt: str, handle: str | None) -> types.LiveConnectConfig:
    """The session setup, rebuilt on every (re)connect with the newest resumption handle."""
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
        system_instruction=with_language(prompt, settings.language),
        speech_config=types.SpeechConfig(
            voice_config=voice, language_code=settings.language or None
        ),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=detection,
            activity_handling=types.ActivityHandling.START_OF_ACTIVITY_INTERRUPTS,
        ),
        session_resumption=types.SessionResumptionConfig(handle=handle),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()
        ),
    )
