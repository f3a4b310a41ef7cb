"""Wiring for one run: open the devices, build the Live client and config, run, clean up.

Devices are opened before the network is touched, so a wrong camera or mic is reported at once;
everything opened is closed in `finally`, whatever ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

from shelfsight.live.link import LiveLink
from shelfsight.live.setup import Endpoint, live_config, make_client
from shelfsight.media.camera import Camera, open_camera, redact_url
from shelfsight.media.echo import EchoCanceller
from shelfsight.media.frames import FrameSampler
from shelfsight.media.mic import MicSource
from shelfsight.media.open_audio import is_wav_spec, open_mic, open_speaker
from shelfsight.media.speaker import PlayedCallback, SpeakerSink
from shelfsight.session.conversation import Conversation, FrameFeed, Link, Options, View
from shelfsight.session.cues import make_cues
from shelfsight.session.frame_rate import FrameRatePolicy
from shelfsight.session.prompt import load_system_prompt
from shelfsight.session.recording import NullRecorder, Recorder
from shelfsight.session.summary import SessionSummary
from shelfsight.settings import Settings
from shelfsight.ui.controls import Control


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
    endpoint: Endpoint | None = None,
    *,
    record_to: Path | None = None,
    frames: FrameFeed | None = None,
    controls: asyncio.Queue[Control] | None = None,
    ask: str | None = None,
    devices: Devices | None = None,
    echo: EchoCanceller | None = None,
    link: Link | None = None,
) -> SessionSummary:
    """One conversation with the given settings; returns its summary (also shown and recorded).

    `frames` replaces the camera (replays); `devices`, `echo` and `link` replace what the
    settings would open (tests and benchmarks inject a simulated room or a probed link this way).
    """
    live = link or make_link(settings, api_key, endpoint or Endpoint())
    idle_fps = min(settings.idle_fps, settings.fps) if settings.idle_fps and not ask else None
    options = Options(
        push_to_talk=settings.mode == "ptt",
        answer_wait_s=settings.answer_wait_s,
        ask=ask,
        frame_rate=FrameRatePolicy(fps=settings.fps, idle_fps=idle_fps),
        barge_in_s=settings.barge_in_ms / 1000,
    )
    recorder = start_recorder(record_to, settings) if record_to is not None else None
    if echo is None:
        echo = make_echo_canceller(settings)
    async with contextlib.AsyncExitStack() as stack:
        if devices is None:
            devices = await stack.enter_async_context(open_devices(settings, echo.on_played))
        sampler: FrameSampler | None = None
        if frames is None and devices.camera is not None:
            frames = sampler = FrameSampler(
                devices.camera,
                fps=settings.fps,
                max_side=settings.max_side,
                jpeg_quality=settings.jpeg_quality,
            )
        conversation = Conversation(
            link=live,
            mic=devices.mic,
            speaker=devices.speaker,
            frames=frames,
            view=view,
            options=options,
            controls=controls,
            recorder=recorder,
            echo=echo if echo.enabled else None,
            camera=devices.camera,
            frame_rate=sampler,
            cues=make_cues(settings, devices.speaker, recorder or NullRecorder(), view.notice),
        )
        try:
            await conversation.run()
        finally:
            summary = SessionSummary(
                link=live.stats(),
                speaker_underruns=devices.speaker.underruns,
                mic_dropped_chunks=getattr(devices.mic, "dropped_chunks", 0),
                echo=echo.stats if echo.enabled else None,
            )
            if recorder is not None:
                recorder.close(**summary.as_dict())
            if summary.link.connections:
                view.notice(summary.line())
    return summary


def make_link(settings: Settings, api_key: str, endpoint: Endpoint) -> LiveLink:
    """The Live link for these settings: the SDK client's connect, the setup, the limits."""
    prompt = load_system_prompt(settings.prompt_file)
    return LiveLink(
        connect=make_client(api_key, endpoint).aio.live.connect,
        model=settings.model,
        config_for=lambda handle: live_config(settings, prompt, handle),
        max_outage_s=settings.max_outage_s,
        first_connect_timeout_s=settings.connect_timeout_s,
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
    from shelfsight.ui.controls import ControlQueue, open_controls, pynput_usable
    from shelfsight.ui.view import make_view

    view = make_view(
        plain=True if plain else None,
        answer_only=ask is not None,
        screen_reader=settings.screen_reader,
    )
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
            endpoint,
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
