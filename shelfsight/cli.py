"""The `shelfsight` command line.

Every command runs through `guard.guarded` (one line and exit 2 for bad input, never a
traceback; 130 for Ctrl-C, 0 for SIGTERM; the key never printed). Heavy imports happen inside
the commands, so `--help` is fast and a missing system library only matters to who needs it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from shelfsight import __version__
from shelfsight.errors import UserError
from shelfsight.guard import SECRETS, guarded, run_async

app = typer.Typer(
    name="shelfsight",
    help="Point a camera at a store shelf, ask aloud where something is, hear the answer.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

CameraOpt = Annotated[
    str | None,
    typer.Option(
        "--camera",
        "-c",
        help="iphone (macOS Continuity Camera), a camera name or index, an rtsp:// or http(s):// "
        "stream, a video file, or none. Default: auto (an iPhone if there is one, else the "
        "first camera). Env SHELFSIGHT_CAMERA.",
        show_default=False,
    ),
]
MicOpt = Annotated[
    str | None,
    typer.Option(
        "--mic",
        "-m",
        help="default, an input device name or index, or a WAV file streamed in real time.",
        show_default=False,
    ),
]
SpeakerOpt = Annotated[
    str | None,
    typer.Option(
        "--speaker",
        "-s",
        help="default, an output device name or index, or a WAV file to write the answer "
        "audio into on a real-time clock.",
        show_default=False,
    ),
]


ModeOpt = Annotated[
    str | None,
    typer.Option(
        help="handsfree: just talk, the server hears when you start and stop. ptt: press the "
        "talk key to start and again to stop (or hold it, where key releases are reported).",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        help="Live API model [gemini-3.8-live]. Env SHELFSIGHT_MODEL.", show_default=False
    ),
]
VoiceOpt = Annotated[
    str | None,
    typer.Option(help="Answer voice, e.g. Kore, Puck, Aoede [Kore].", show_default=False),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(help="Config file (TOML). Default: the user's shelfsight/config.toml."),
]
PlainOpt = Annotated[bool, typer.Option(help="Plain lines instead of the live terminal view.")]
CuesOpt = Annotated[
    str | None,
    typer.Option(
        help="Sound cues (ready, question heard, still thinking, reconnecting, camera lost, "
        "error), on or off [on].",
        show_default=False,
    ),
]
SpeakStatusOpt = Annotated[
    str | None,
    typer.Option(
        help="Say aloud what lasts or needs you (no connection, camera lost, no answer, silent "
        "mic, stopping), on or off [on]. Needs espeak-ng on Linux, say on macOS.",
        show_default=False,
    ),
]
CueVolumeOpt = Annotated[
    float | None,
    typer.Option(
        help="Loudness of the cues, 0 to 1; 1 is as loud as speech [0.2].", show_default=False
    ),
]
LanguageOpt = Annotated[
    str | None,
    typer.Option(
        help="The language to answer in, BCP-47 (e.g. en-US, nb-NO, de-DE). Default: the "
        "system locale, else en-US.",
        show_default=False,
    ),
]


@app.command(
    epilog="Examples:\n\n"
    "  shelfsight run --camera iphone\n\n"
    "  shelfsight run --camera iphone --mode ptt        (noisy store: space to talk)\n\n"
    "  shelfsight run --camera rtsp://192.168.1.23:8554/live\n\n"
    "  shelfsight run --camera shelf.mp4 --mic question.wav --speaker answer.wav\n\n"
    "Keys: type a question and Enter to ask it in writing; Esc stops the answer; q quits; "
    "in ptt mode, space talks.\n\n"
    "The API key comes from GEMINI_API_KEY (or GOOGLE_API_KEY, or a .env file), never a flag."
)
def run(
    camera: CameraOpt = None,
    mic: MicOpt = None,
    speaker: SpeakerOpt = None,
    mode: ModeOpt = None,
    ptt_key: Annotated[
        str | None,
        typer.Option(
            help="The push-to-talk key: space or one character [space].", show_default=False
        ),
    ] = None,
    aec: Annotated[
        bool | None,
        typer.Option(
            "--aec/--no-aec",
            help="Echo cancellation, so the answer from the speakers is not heard as you "
            "talking [on]. Turn it off with headphones.",
            show_default=False,
        ),
    ] = None,
    start_sensitivity: Annotated[
        str | None,
        typer.Option(
            help="Hands-free: how easily speech starts a turn, low or high [low: "
            "shop noise does not].",
            show_default=False,
        ),
    ] = None,
    end_sensitivity: Annotated[
        str | None,
        typer.Option(
            help="Hands-free: how quickly a pause ends it, low or high [high].", show_default=False
        ),
    ] = None,
    silence_ms: Annotated[
        int | None,
        typer.Option(
            help="Hands-free: silence that ends your question, in ms [700].", show_default=False
        ),
    ] = None,
    model: ModelOpt = None,
    voice: VoiceOpt = None,
    fps: Annotated[
        float | None,
        typer.Option(help="Frames a second sent while someone talks [1].", show_default=False),
    ] = None,
    idle_fps: Annotated[
        float | None,
        typer.Option(
            help="Frames a second otherwise, to save cost; 0: always --fps [0.2].",
            show_default=False,
        ),
    ] = None,
    max_side: Annotated[
        int | None,
        typer.Option(help="Longest side of a sent frame in pixels [1024].", show_default=False),
    ] = None,
    jpeg_quality: Annotated[
        int | None, typer.Option(help="JPEG quality of sent frames [80].", show_default=False)
    ] = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option(help="Use this system instruction instead of the built-in one."),
    ] = None,
    config: ConfigOpt = None,
    record: Annotated[
        Path | None,
        typer.Option(
            help="Record the session into this folder (frames, both audio streams, "
            "transcripts, timed events). Config: always_record = true records every session "
            "into a dated folder under sessions_dir."
        ),
    ] = None,
    plain: PlainOpt = False,
    cues: CuesOpt = None,
    speak_status: SpeakStatusOpt = None,
    cue_volume: CueVolumeOpt = None,
    language: LanguageOpt = None,
    screen_reader: Annotated[
        bool | None,
        typer.Option(
            "--screen-reader/--no-screen-reader",
            help="One plain line per event for VoiceOver or Orca: nothing redrawn, no meter. "
            "Config: screen_reader = true.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Talk with the assistant about what the camera sees, until q or Ctrl-C."""
    flags = dict(
        camera=camera,
        mic=mic,
        speaker=speaker,
        mode=mode,
        ptt_key=ptt_key,
        aec=aec,
        start_sensitivity=start_sensitivity,
        end_sensitivity=end_sensitivity,
        silence_ms=silence_ms,
        model=model,
        voice=voice,
        fps=fps,
        idle_fps=idle_fps,
        max_side=max_side,
        jpeg_quality=jpeg_quality,
        prompt_file=prompt_file,
        cues=cues,
        speak_status=speak_status,
        cue_volume=cue_volume,
        language=language,
        screen_reader=screen_reader,
    )

    def go() -> Coroutine[Any, Any, None]:
        from shelfsight.app import converse
        from shelfsight.session.recording import session_folder_name
        from shelfsight.settings import api_key_from_env, load_settings

        settings = load_settings(flags, config_path=config)
        key = api_key_from_env()
        SECRETS.append(key)
        settings = _resolve_camera(settings)
        folder = record
        if folder is None and settings.always_record:
            folder = Path(settings.sessions_dir).expanduser() / session_folder_name()
        return converse(settings, key, plain=plain, record=folder, interactive=True)

    guarded(go)


@app.command(
    epilog="Examples:\n\n"
    '  shelfsight ask "where is the gluten-free bread?" --camera iphone\n\n'
    '  shelfsight ask "what does the red box say?" --camera shelf.mp4 --speaker a.wav'
)
def ask(
    question: Annotated[str, typer.Argument(help="The question, as you would say it.")],
    camera: CameraOpt = None,
    speaker: SpeakerOpt = None,
    model: ModelOpt = None,
    voice: VoiceOpt = None,
    config: ConfigOpt = None,
    plain: PlainOpt = False,
    cues: CuesOpt = None,
    speak_status: SpeakStatusOpt = None,
    language: LanguageOpt = None,
) -> None:
    """Ask one typed question about what the camera sees; print and speak the answer, exit 0."""
    flags = dict(
        camera=camera,
        speaker=speaker,
        model=model,
        voice=voice,
        mic="none",
        cues=cues,
        speak_status=speak_status,
        language=language,
    )

    def go() -> Coroutine[Any, Any, None]:
        from shelfsight.app import converse
        from shelfsight.settings import api_key_from_env, load_settings

        if not question.strip():
            raise UserError("The question is empty.")
        settings = load_settings(flags, config_path=config)
        key = api_key_from_env()
        SECRETS.append(key)
        settings = _resolve_camera(settings)
        return converse(settings, key, plain=plain, record=None, ask=question.strip())

    guarded(go)


@app.command(
    epilog="Examples:\n\n"
    "  shelfsight replay sessions/2026-11-24T10-31-07 --offline\n\n"
    "  shelfsight replay sessions/2026-11-24T10-31-07 --model gemini-3.8-live"
)
def replay(
    folder: Annotated[Path, typer.Argument(help="A folder written by run --record.")],
    offline: Annotated[
        bool,
        typer.Option(help="No key, no network: a local stand-in plays the recorded answers back."),
    ] = False,
    speaker: SpeakerOpt = None,
    model: Annotated[
        str | None,
        typer.Option(help="Ask another model than the recorded one.", show_default=False),
    ] = None,
    record: Annotated[
        Path | None, typer.Option(help="Record the replayed session into this folder.")
    ] = None,
    plain: Annotated[
        bool, typer.Option(help="Plain lines instead of the live terminal view.")
    ] = False,
) -> None:
    """Send a recorded session's frames and mic audio again, at the recorded pace."""

    def go() -> Coroutine[Any, Any, None]:
        from shelfsight.playback import replay_session

        return replay_session(
            folder, offline=offline, speaker=speaker, model=model, record=record, plain=plain
        )

    guarded(go)


@app.command()
def demo(
    speaker: SpeakerOpt = None,
    plain: Annotated[
        bool, typer.Option(help="Plain lines instead of the live terminal view.")
    ] = False,
) -> None:
    """A bundled shelf session replayed offline: no camera, microphone, key or network needed.

    The answer plays on the default speaker, or is written to shelfsight-demo-answer.wav when
    there is none.
    """

    def go() -> None:
        from importlib import resources

        from shelfsight.playback import demo_speaker, replay_session

        bundled = resources.files("shelfsight") / "assets" / "demo-session"
        with resources.as_file(bundled) as folder:
            target = speaker or demo_speaker()
            run_async(
                replay_session(
                    folder, offline=True, speaker=target, model=None, record=None, plain=plain
                )
            )
        if target.endswith(".wav"):
            print(f"The spoken answer was written to {Path(target).resolve()}")

    guarded(go)


@app.command()
def sessions(
    folder: Annotated[
        Path | None,
        typer.Argument(help="Where the recordings are. Default: the sessions_dir setting."),
    ] = None,
) -> None:
    """List recorded sessions with date, duration, questions and answers."""

    def go() -> None:
        from rich.console import Console
        from rich.table import Table

        from shelfsight.session.recording import load_session
        from shelfsight.session.replay import describe, find_sessions
        from shelfsight.settings import load_settings

        root = folder or Path(load_settings({}).sessions_dir).expanduser()
        found = find_sessions(root)
        if not found:
            print(f"No recorded sessions in {root}. Record one with: shelfsight run --record DIR")
            return
        table = Table(title=f"Sessions in {root}", title_justify="left")
        for column in ("folder", "started", "duration", "questions", "answers", ""):
            table.add_column(column)
        for path in found:
            row = describe(load_session(path))
            table.add_row(
                path.name,
                str(row["started"]),
                f"{row['duration_s']:.0f} s",
                str(row["questions"]),
                str(row["answers"]),
                "" if row["complete"] else "cut short",
            )
        Console().print(table)

    guarded(go)


@app.command()
def devices() -> None:
    """List cameras, microphones and speakers by name and index."""

    def go() -> None:
        from shelfsight.ui.device_list import print_devices

        print_devices()

    guarded(go)


@app.command(
    epilog="Example:\n\n  shelfsight doctor --camera iphone --mic default --speaker default"
)
def doctor(
    camera: CameraOpt = None,
    mic: MicOpt = None,
    speaker: SpeakerOpt = None,
    model: ModelOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check the key, the endpoint, the camera, the microphone and the speaker, one line each."""
    flags = dict(camera=camera, mic=mic, speaker=speaker, model=model)
    code = 0

    def go() -> None:
        nonlocal code
        from shelfsight.doctor import run_doctor
        from shelfsight.settings import api_key_from_env, load_settings

        settings = load_settings(flags, config_path=config)
        with contextlib.suppress(UserError):
            SECRETS.append(api_key_from_env())
        code = run_doctor(settings)

    guarded(go)
    if code:
        raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    print(f"shelfsight {__version__}")


def _resolve_camera(settings: Any) -> Any:
    import dataclasses

    from shelfsight.media.camera import resolve_camera_spec

    return dataclasses.replace(settings, camera=resolve_camera_spec(settings.camera))


def main() -> None:
    # OpenCV and its FFmpeg print their own warnings (e.g. "Connection refused") on stderr;
    # shelfsight reports those conditions itself, in one line.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    app()
