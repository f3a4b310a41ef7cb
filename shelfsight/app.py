"""Wiring for one run: open the devices, build the Live client and config, run, clean up.

Devices are opened before the network is touched, so a wrong camera or mic is reported at once;
everything opened is closed in `finally`, whatever ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

from google import genai
from google.genai import types

from shelfsight.audio import (
    MicSource,
    PlayedCallback,
    SpeakerSink,
    is_wav_spec,
    open_mic,
    open_speaker,
)
from shelfsight.camera import Camera, list_cameras, open_camera, redact_url
from shelfsight.controls import Control
from shelfsight.conversation import Conversation, FrameFeed, Options, View
from shelfsight.echo import EchoCanceller
from shelfsight.errors import UserError
from shelfsight.frames import FrameSampler
from shelfsight.live_link import LiveLink
from shelfsight.prompt import load_system_prompt
from shelfsight.recording import Recorder
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
        system_instruction=prompt,
        speech_config=types.SpeechConfig(voice_config=voice),
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


def resolve_camera_spec(spec: str) -> str:
    """`auto` means an iPhone (Continuity Camera) if present, else the first camera."""
    if spec.strip().lower() != "auto":
        return spec
    cameras = list_cameras()
    if not cameras:
        raise UserError(
            "No camera found. Connect one, or pass --camera with a stream URL or a video file "
            "(or --camera none to talk without pictures)."
        )
    return str(next((c for c in cameras if c.is_continuity), cameras[0]).index)


@dataclass
class Devices:
    camera: Camera | None
    mic: MicSource | None
    speaker: SpeakerSink

    def close(self) -> None:
        for device in (self.camera, self.mic, self.speaker):
            if device is not None:
                with contextlib.suppress(Exception):
                    device.close()


@contextlib.asynccontextmanager
async def open_devices(
    settings: Settings, on_played: PlayedCallback | None = None
) -> AsyncIterator[Devices]:
    """Open camera, mic and speaker (raising UserError on the first that fails); close all."""
    camera: Camera | None = None
    mic: MicSource | None = None
    speaker: SpeakerSink | None = None
    try:
        camera = open_camera(settings.camera)
        if camera is not None:
            camera.start()
        mic = None if settings.mic == "none" else open_mic(settings.mic)
        speaker = open_speaker(settings.speaker, on_played=on_played)
        if mic is not None:
            await mic.start()
        speaker.start()
        yield Devices(camera, mic, speaker)
    finally:
        Devices(camera, mic, speaker).close()  # type: ignore[arg-type]


def make_echo_canceller(settings: Settings) -> EchoCanceller:
    """On when sound can travel from speaker to mic: both are real devices and --aec is on.

    With a WAV file on either side there is no acoustic path, and cancelling would only cost
    the user's voice a little level while an answer plays.
    """
    acoustic = not is_wav_spec(settings.mic) and not is_wav_spec(settings.speaker)
    return EchoCanceller(enabled=settings.aec and acoustic and settings.mic != "none")


async def run_conversation(
    settings: Settings,
    api_key: str,
    view: View,
    endpoint: Endpoint = Endpoint(),
    *,
    record_to: Path | None = None,
    frames: FrameFeed | None = None,
    controls: asyncio.Queue[Control] | None = None,
    ask: str | None = None,
    devices: Devices | None = None,
    echo: EchoCanceller | None = None,
) -> None:
    """One conversation with the given settings.

    `frames` replaces the camera (replays); `devices` and `echo` replace what the settings
    would open (tests and benchmarks inject a simulated room this way).
    """
    prompt = load_system_prompt(settings.prompt_file)
    client = make_client(api_key, endpoint)
    link = LiveLink(
        client=client,
        model=settings.model,
        config_for=lambda handle: live_config(settings, prompt, handle),
        max_outage_s=settings.max_outage_s,
        first_connect_timeout_s=settings.connect_timeout_s,
    )
    options = Options(
        push_to_talk=settings.mode == "ptt",
        answer_wait_s=settings.answer_wait_s,
        ask=ask,
        fps=settings.fps,
        idle_fps=min(settings.idle_fps, settings.fps) if settings.idle_fps and not ask else None,
        barge_in_s=settings.barge_in_ms / 1000,
    )
    recorder = start_recorder(record_to, settings) if record_to is not None else None
    if echo is None:
        echo = make_echo_canceller(settings)
    async with contextlib.AsyncExitStack() as stack:
        if devices is None:
            devices = await stack.enter_async_context(open_devices(settings, echo.on_played))
        if frames is None and devices.camera is not None:
            frames = FrameSampler(
                devices.camera,
                fps=settings.fps,
                max_side=settings.max_side,
                jpeg_quality=settings.jpeg_quality,
            )
        conversation = Conversation(
            link=link,
            mic=devices.mic,
            speaker=devices.speaker,
            frames=frames,
            view=view,
            options=options,
            controls=controls,
            recorder=recorder,
            echo=echo if echo.enabled else None,
            camera=devices.camera,
        )
        try:
            await conversation.run()
        finally:
            if recorder is not None:
                recorder.close(
                    audio_chunks_sent=link.audio_chunks_sent, frames_sent=link.frames_sent
                )


def start_recorder(folder: Path, settings: Settings) -> Recorder:
    """A recorder whose manifest says how the session was made (settings, never the key)."""
    recorded = {k: v for k, v in asdict(settings).items() if k != "extra"}
    recorded["camera"] = redact_url(settings.camera)
    return Recorder(folder, {"model": settings.model, "settings": recorded})


async def converse(
    settings: Settings,
    key: str,
    *,
    plain: bool,
    record: Path | None,
    endpoint: Endpoint | None = None,
    frames: FrameFeed | None = None,
    interactive: bool = False,
    ask: str | None = None,
) -> None:
    """Run one conversation with the view, the keyboard (if `interactive`) and a recorder."""
    from shelfsight.controls import ControlQueue, open_controls, pynput_usable
    from shelfsight.view import make_view

    view = make_view(plain=True if plain else None, answer_only=ask is not None)
    controls = ControlQueue() if interactive else None
    sources = []
    if controls is not None:
        hold = settings.mode == "ptt" and pynput_usable()
        sources = open_controls(controls, talk_key=settings.talk_key, hold_to_talk=hold)
        view.key_hints = key_hints(settings, hold)
    view.start()
    try:
        await run_conversation(
            settings,
            key,
            view,
            endpoint or Endpoint(),
            record_to=record,
            frames=frames,
            controls=controls.queue if controls else None,
            ask=ask,
        )
    finally:
        for source in sources:
            source.close()
        view.stop()
        if record is not None:
            print(f"Recorded into {record}")


def key_hints(settings: Settings, hold: bool) -> str:
    talk = "space" if settings.talk_key == " " else settings.talk_key
    hints = []
    if settings.mode == "ptt":
        hints.append(f"{talk}: {'hold to talk (or tap to start/stop)' if hold else 'talk / stop'}")
    hints += ["type + Enter: ask in writing", "Esc: stop answer", "q: quit"]
    return "  ·  ".join(hints)
