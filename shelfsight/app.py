"""Wiring for one run: open the devices, build the Live client and config, run, clean up.

Devices are opened before the network is touched, so a wrong camera or mic is reported at once;
everything opened is closed in `finally`, whatever ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from google.genai import types

from shelfsight.core.phrases import Phrase, language_of, load, phrase, speaking
from shelfsight.errors import UserError
from shelfsight.guide.worker import GuideWorker
from shelfsight.live.ack_probe import platform_probe
from shelfsight.live.link import LiveLink
from shelfsight.live.setup import Endpoint, live_config, make_client
from shelfsight.media.camera import Camera, open_camera, redact_url
from shelfsight.media.echo import EchoCanceller
from shelfsight.media.frames import FrameSampler
from shelfsight.media.guidance_audio import GuideSound
from shelfsight.media.mic import MicSource
from shelfsight.media.off_loop import off_loop
from shelfsight.media.open_audio import is_wav_spec, open_mic, open_speaker
from shelfsight.media.speaker import PlayedCallback, SpeakerSink
from shelfsight.session.announcer import make_announcer
from shelfsight.session.conversation import Conversation, FrameFeed, Link, Options
from shelfsight.session.cost import CostMeter, Prices
from shelfsight.session.event_log import EventLog
from shelfsight.session.events import Observer
from shelfsight.session.frame_rate import FrameRatePolicy
from shelfsight.session.pictures import PicturePolicy
from shelfsight.session.prompt import LANGUAGE_NAMES, load_system_prompt, with_language
from shelfsight.session.recording import NullRecorder, Recorder
from shelfsight.session.speech import make_detector
from shelfsight.session.summary import SessionSummary
from shelfsight.settings import Settings
from shelfsight.tools.session_tools import SessionTools
from shelfsight.ui.controls import Control
from shelfsight.ui.input_end import EndAfterInput
from shelfsight.ui.watch import View, ViewObserver


@dataclass
class Devices:
    camera: Camera | None
    mic: MicSource | None
    speaker: SpeakerSink

    def close(self, *, keep_output: bool = True) -> None:
        """Close all; a speaker file is put in place only if `keep_output` (the run ended) or
        an answer already put it there."""
        for device in (self.camera, self.mic):
            if device is not None:
                with contextlib.suppress(Exception):
                    device.close()
        if self.speaker is not None:
            with contextlib.suppress(Exception):
                if keep_output:
                    self.speaker.close()
                else:
                    self.speaker.discard()


async def start_devices(camera: Camera | None, mic: MicSource | None, speaker: SpeakerSink) -> None:
    """One async start for every source and sink, all opening at once, none on the loop."""
    async with asyncio.TaskGroup() as tg:
        if camera is not None:
            tg.create_task(off_loop(camera.start, camera.name))
        if mic is not None:
            tg.create_task(mic.start())
        tg.create_task(off_loop(speaker.start, speaker.name))


@contextlib.asynccontextmanager
async def open_devices(
    settings: Settings,
    on_played: PlayedCallback | None = None,
    guide_sound: GuideSound | None = None,
) -> AsyncIterator[Devices]:
    """Open camera, mic and speaker (raising UserError on the first that fails); close all.
    With a camera, `guide_sound` is mixed into the speaker (a device then opens in stereo).

    A speaker file is kept when the run ends (also by Ctrl-C), not when it fails or never
    starts: then only an answer that came puts it in place (see WavSpeaker).
    """
    camera: Camera | None = None
    mic: MicSource | None = None
    speaker: SpeakerSink | None = None
    ran = False
    try:
        camera = open_camera(settings.camera)
        mic = None if settings.mic == "none" else open_mic(settings.mic)
        overlay = guide_sound if camera is not None else None
        speaker = open_speaker(settings.speaker, on_played=on_played, overlay=overlay)
        try:
            await start_devices(camera, mic, speaker)
        except* UserError as group:
            raise group.exceptions[0] from None
        ran = True
        yield Devices(camera, mic, speaker)
    except Exception:
        ran = False  # failed: Ctrl-C and SIGTERM (BaseException) end a run, they do not fail it
        raise
    finally:
        Devices(camera, mic, speaker).close(keep_output=ran)  # type: ignore[arg-type]


def make_echo_canceller(settings: Settings) -> EchoCanceller:
    """On when sound can travel from speaker to mic: both are real devices and --aec is on.

    With a WAV file on either side there is no acoustic path, and cancelling would only cost
    the user's voice a little level while an answer plays.
    """
    acoustic = not is_wav_spec(settings.mic) and not is_wav_spec(settings.speaker)
    return EchoCanceller(enabled=settings.aec and acoustic and settings.mic != "none")


OFFLINE_GUIDE = Phrase("guide_needs_model")  # the guide key in `run --offline`
NO_CAMERA_GUIDE = Phrase("guide_needs_camera")


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
    summaries: list[SessionSummary] | None = None,
    canned: bool = False,
) -> SessionSummary:
    """One conversation with the given settings; returns its summary (also shown and recorded).

    `frames` replaces the camera (replays); `devices`, `echo` and `link` replace what the
    settings would open (tests and benchmarks inject a simulated room or a probed link this way).
    With a live camera the guide is on: `mark_item` is declared and its worker thread follows
    the camera; its sound plays through the speaker opened here (not through injected ones).
    """
    tools = SessionTools(settings.list_file)  # a bad list file is reported before connecting
    live = link or make_link(settings, api_key, endpoint or Endpoint(), tools)
    timer = settings.pictures == "timer"
    # Gated pictures (session.pictures): the sampler runs at --fps, the gate picks what goes.
    idle_fps = min(settings.idle_fps, settings.fps) if settings.idle_fps and timer else None
    if ask:
        idle_fps = None
    options = Options(
        push_to_talk=settings.mode == "ptt",
        answer_wait_s=settings.answer_wait_s,
        ask=ask,
        frame_rate=FrameRatePolicy(fps=settings.fps, idle_fps=idle_fps),
        barge_in_s=settings.barge_in_ms / 1000,
        pictures=None if timer or frames is not None else PicturePolicy(settings.pictures),
        guide_unavailable=OFFLINE_GUIDE if canned else None,
    )
    if notice := tools.opening_notice():
        view.notice(notice)
    if echo is None:
        echo = make_echo_canceller(settings)
    guide_sound = GuideSound()  # silent until the model marks an item
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(tools.close)  # every list change is in the file once the run ends
        if devices is None:
            devices = await stack.enter_async_context(
                open_devices(settings, echo.on_played, guide_sound)
            )
        guide: GuideWorker | None = None
        if frames is None and devices.camera is not None and not canned:
            guide = GuideWorker(
                devices.camera,
                guide_sound,
                max_side=settings.max_side,
                jpeg_quality=settings.jpeg_quality,
            )
            tools.add_guide(guide)  # declared from the first connect on
            guide.start()
            stack.callback(guide.close)  # before the camera closes (the stack unwinds LIFO)
        elif not canned:
            options = replace(options, guide_unavailable=NO_CAMERA_GUIDE)
        # Only once the devices are open: a start-up error leaves no half-made recording.
        recorder = None if record_to is None else start_recorder(record_to, settings, view)
        if recorder is not None and tools.list_file is not None:
            recorder.event("list", items=[vars(i) for i in tools.list_file.current.items])
        sampler: FrameSampler | None = None
        if frames is None and devices.camera is not None:
            frames = sampler = FrameSampler(
                devices.camera,
                fps=settings.fps,
                max_side=settings.max_side,
                jpeg_quality=settings.jpeg_quality,
            )
        if controls is not None and devices.mic is not None and ask is None:
            # Standard input ending ends the session, after the answer (see ui.input_end).
            ending = EndAfterInput(view, devices.speaker, answer_wait_s=settings.answer_wait_s)
            relay = asyncio.create_task(ending.relay(controls))
            stack.callback(relay.cancel)
            view, controls = ending, ending.queue
        announcer = make_announcer(
            settings, devices.speaker, recorder or NullRecorder(), view.notice
        )
        # The session's observers, in order: the record first (nothing lost to a view that
        # fails), then the screen, then the sounds (see shelfsight.session.events).
        observers: list[Observer] = [EventLog(recorder or NullRecorder()), ViewObserver(view)]
        if announcer is not None:
            observers.append(announcer)
        conversation = Conversation(
            link=live,
            mic=devices.mic,
            speaker=devices.speaker,
            frames=frames,
            observers=observers,
            options=options,
            controls=controls,
            echo=echo if echo.enabled else None,
            camera=devices.camera,
            frame_rate=sampler,
            cost=CostMeter(Prices.from_settings(settings), settings.budget_usd),
            tools=tools.box,
            speech=make_detector("vad"),
            guide=guide,
        )
        try:
            await conversation.run()
        finally:
            summary = SessionSummary(
                link=live.stats(),
                speaker_underruns=devices.speaker.underruns,
                mic_dropped_chunks=devices.mic.dropped_chunks if devices.mic else 0,
                mic_xruns=devices.mic.xruns if devices.mic else 0,
                echo=echo.stats if echo.enabled else None,
                cost=conversation.cost,
                speaker_xruns=devices.speaker.xruns,
                playout_margin_ms=devices.speaker.playout_margin_s * 1000,
                answer_audio_s=round(conversation.answer_audio_s, 2),
                guide=guide.stats if guide is not None else None,
                guide_cue_ms=guide_sound.latency_ms(),
                guide_cpu_s=guide.cpu_s if guide is not None else 0.0,
            )
            if summaries is not None:
                summaries.append(summary)
            if recorder is not None:
                recorder.close(**summary.as_dict())
            if summary.link.connections:
                view.notice(summary.line())
    return summary


def make_link(
    settings: Settings, api_key: str, endpoint: Endpoint, tools: SessionTools | None = None
) -> LiveLink:
    """The Live link for these settings: the SDK client's connect, the setup, the limits.
    `tools` adds its functions, instruction and vocabulary, read afresh on every connect."""
    prompt = with_language(load_system_prompt(settings.prompt_file), settings.language)
    tools = tools or SessionTools()

    def config_for(handle: str | None) -> types.LiveConnectConfig:
        full_prompt = "\n\n".join(p for p in (prompt, tools.instruction()) if p)
        declared = tools.box.declarations()
        return live_config(
            settings, full_prompt, handle, tools=declared, vocabulary=tools.vocabulary()
        )

    return LiveLink(
        connect=make_client(api_key, endpoint).aio.live.connect,
        model=settings.model,
        config_for=config_for,
        max_outage_s=settings.max_outage_s,
        first_connect_timeout_s=settings.connect_timeout_s,
        dead_after_s=settings.dead_link_s,
        audio_buffer_s=settings.audio_buffer_s,
        ack_probe=platform_probe if settings.link_probe == "auto" else lambda: None,
        speech_only=settings.send_audio == "speech",
    )


def start_recorder(folder: Path, settings: Settings, view: View) -> Recorder:
    """A recorder whose manifest says how the session was made (settings, never the key), and
    whose early stop (disk full...) is told on the view, from the writer thread via the loop."""
    recorded = {k: v for k, v in asdict(settings).items() if k != "extra"}
    recorded["camera"] = redact_url(settings.camera)
    loop = asyncio.get_running_loop()

    def on_stop(line: str) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed: the run is over
            loop.call_soon_threadsafe(view.notice, line)

    return Recorder(folder, {"model": settings.model, "settings": recorded}, on_stop)


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
    offline: bool = False,
    banner: tuple[str | Phrase, ...] = (),
    scripted: asyncio.Queue[Control] | None = None,
    canned: bool = False,
) -> None:
    """Run one conversation with the view, the keyboard (if `interactive`) and a recorder,
    everything shelfsight says in the user's language (`settings.language`).

    `offline`: the answers come from the built-in stand-in (no latency is shown for them);
    `banner`: paragraphs shown first. `run` and `ask` also show the answer language.
    `scripted`: keys and typed questions from a script instead of the keyboard (the demo);
    `canned`: every answer is the same canned one (`run --offline`): nothing can mark an
    item, so the guide is off and its key says why.
    """
    with speaking(settings.language):
        await _converse(
            settings,
            key,
            plain=plain,
            record=record,
            endpoint=endpoint,
            frames=frames,
            interactive=interactive,
            ask=ask,
            offline=offline,
            banner=tuple(b if isinstance(b, str) else b.text() for b in banner),
            scripted=scripted,
            canned=canned,
        )


async def _converse(
    settings: Settings,
    key: str,
    *,
    plain: bool,
    record: Path | None,
    endpoint: Endpoint | None,
    frames: FrameFeed | None,
    interactive: bool,
    ask: str | None,
    offline: bool,
    banner: tuple[str, ...],
    scripted: asyncio.Queue[Control] | None,
    canned: bool,
) -> None:
    from shelfsight.ui.controls import ControlQueue, TerminalKeys, open_controls, pynput_usable
    from shelfsight.ui.views import make_view

    view = make_view(
        plain=True if plain else None,
        answer_only=ask is not None,
        screen_reader=settings.screen_reader,
    )
    view.latency_measured = not offline
    existed = record is not None and (record / "events.jsonl").exists()  # refused, not ours
    controls = ControlQueue() if interactive else None
    sources = []
    if controls is not None:
        hold = settings.mode == "ptt" and pynput_usable()
        sources = open_controls(controls, talk_key=settings.talk_key, hold_to_talk=hold, echo=view)
        if any(isinstance(source, TerminalKeys) for source in sources):
            view.key_hints = key_hints(settings, hold)  # keys only mean something there
    if interactive or ask is not None:
        banner = (*banner, language_line(settings.language))
    view.start(banner)
    if language_of(settings.language) is None:
        view.notice(phrase("no_catalogue", tag=settings.language))
    summaries: list[SessionSummary] = []  # filled even when the run fails
    try:
        await run_conversation(
            settings,
            key,
            view,
            endpoint,
            record_to=record,
            frames=frames,
            controls=controls.queue if controls else scripted,
            ask=ask,
            summaries=summaries,
            canned=canned,
        )
    except BaseException as exc:
        failure = first_user_error(exc)
        if failure is None or not summaries or not is_wav_spec(settings.speaker):
            raise  # (no summary: the devices never opened, the speaker file was never touched)
        answered = any(s.answer_audio_s for s in summaries)
        note = speaker_file_outcome(settings.speaker, answered=answered)
        raise UserError(f"{str(failure).rstrip('.')}. {note}") from None
    finally:
        for source in sources:
            source.close()
        view.stop()
        if record is not None and (record / "events.jsonl").is_file() and not existed:
            print(phrase("recorded_into", folder=record))


def first_user_error(exc: BaseException) -> UserError | None:
    """The UserError that ended a run, alone or inside the TaskGroup's exception group."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := first_user_error(inner)) is not None:
                return found
    return None


def speaker_file_outcome(spec: str, *, answered: bool) -> str:
    """What a failed run did to the speaker WAV, said from what the run did, not by reading
    the file back: an answer put it in place (and it holds that answer); without one it was
    never moved there, so what is at that path now is what the user had before, or nothing."""
    path = Path(spec).expanduser()
    if answered:
        return f"The answer audio received so far is in {path}."
    if path.exists():
        return f"No answer audio came; {path} was left as it was."
    return f"No answer audio came, so {path} was not written."


def language_line(tag: str) -> str:
    """The answers' language for the start banner, by name where it is known, in the
    session's language: "Language: English (en-US)", "Sprache: Deutsch (de-DE)"."""
    code = language_of(tag)
    name = load(code).name if code else LANGUAGE_NAMES.get(tag.split("-")[0].lower(), tag)
    return phrase("language_line", name=name, tag=tag)


def key_hints(settings: Settings, hold: bool) -> str:
    talk = phrase("key_space") if settings.talk_key == " " else settings.talk_key
    hints = []
    if settings.mode == "ptt":
        hints.append(phrase("key_hold_to_talk" if hold else "key_talk", key=talk))
    hints += [phrase("key_type"), phrase("key_esc")]
    if settings.camera != "none":
        hints.append(phrase("key_tab"))
    hints.append(phrase("key_quit"))
    return "  ·  ".join(hints)
