"""The `shelfsight` command line.

Every command runs through `_guarded`, which turns a `UserError` into one line on stderr and
exit code 2, turns Ctrl-C into exit 130 and SIGTERM into exit 0, and makes sure nothing it
prints contains the API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from shelfsight import __version__
from shelfsight.errors import UserError

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
    )

    def go() -> Coroutine[Any, Any, None]:
        from shelfsight.recording import session_folder_name
        from shelfsight.settings import api_key_from_env, load_settings

        settings = load_settings(flags, config_path=config)
        key = api_key_from_env()
        _SECRETS.append(key)
        settings = _resolve_camera(settings)
        folder = record
        if folder is None and settings.always_record:
            folder = Path(settings.sessions_dir).expanduser() / session_folder_name()
        return _converse(settings, key, plain=plain, record=folder, interactive=True)

    _guarded(go)


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
) -> None:
    """Ask one typed question about what the camera sees; print and speak the answer, exit 0."""
    flags = dict(camera=camera, speaker=speaker, model=model, voice=voice, mic="none")

    def go() -> Coroutine[Any, Any, None]:
        from shelfsight.settings import api_key_from_env, load_settings

        if not question.strip():
            raise UserError("The question is empty.")
        settings = load_settings(flags, config_path=config)
        key = api_key_from_env()
        _SECRETS.append(key)
        settings = _resolve_camera(settings)
        return _converse(settings, key, plain=plain, record=None, ask=question.strip())

    _guarded(go)


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
        return _replay(
            folder, offline=offline, speaker=speaker, model=model, record=record, plain=plain
        )

    _guarded(go)


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

        bundled = resources.files("shelfsight") / "assets" / "demo-session"
        with resources.as_file(bundled) as folder:
            target = speaker or _demo_speaker()
            _run_async(
                _replay(folder, offline=True, speaker=target, model=None, record=None, plain=plain)
            )
        if target.endswith(".wav"):
            print(f"The spoken answer was written to {Path(target).resolve()}")

    _guarded(go)


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

        from shelfsight.recording import load_session
        from shelfsight.replay import describe, find_sessions
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

    _guarded(go)


async def _converse(
    settings: Any,
    key: str,
    *,
    plain: bool,
    record: Path | None,
    endpoint: Any = None,
    frames: Any = None,
    interactive: bool = False,
    ask: str | None = None,
) -> None:
    """Run one conversation with the view, the keyboard (if `interactive`) and a recorder."""
    from shelfsight.app import Endpoint, run_conversation
    from shelfsight.controls import ControlQueue, open_controls, pynput_usable
    from shelfsight.view import make_view

    view = make_view(plain=True if plain else None, answer_only=ask is not None)
    controls = ControlQueue() if interactive else None
    sources = []
    if controls is not None:
        hold = settings.mode == "ptt" and pynput_usable()
        sources = open_controls(controls, talk_key=settings.talk_key, hold_to_talk=hold)
        view.key_hints = _key_hints(settings, hold)
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


def _key_hints(settings: Any, hold: bool) -> str:
    talk = "space" if settings.talk_key == " " else settings.talk_key
    hints = []
    if settings.mode == "ptt":
        hints.append(f"{talk}: {'hold to talk (or tap to start/stop)' if hold else 'talk / stop'}")
    hints += ["type + Enter: ask in writing", "Esc: stop answer", "q: quit"]
    return "  ·  ".join(hints)


async def _replay(
    folder: Path,
    *,
    offline: bool,
    speaker: str | None,
    model: str | None,
    record: Path | None,
    plain: bool,
) -> None:
    import dataclasses

    from shelfsight.app import Endpoint
    from shelfsight.recording import load_session
    from shelfsight.replay import RecordedFrames, recorded_answers
    from shelfsight.settings import api_key_from_env, load_settings

    session = load_session(folder)
    recorded = session.manifest.get("settings", {})
    flags = {
        "mic": str(folder / "mic.wav"),
        "camera": "none",
        "speaker": speaker,
        "model": model or recorded.get("model"),
        "voice": recorded.get("voice"),
        "mode": recorded.get("mode"),
    }
    settings = load_settings(flags)
    frames = RecordedFrames(session)
    if not offline:
        key = api_key_from_env()
        _SECRETS.append(key)
        await _converse(settings, key, plain=plain, record=record, frames=frames)
        return
    from shelfsight.standin import StandIn, StandInConfig

    answers = recorded_answers(session)
    if not answers:
        raise UserError(f"{folder} holds no recorded answer to play back offline.")
    settings = dataclasses.replace(settings, model=settings.model)
    async with StandIn(StandInConfig(answers=answers)) as server:
        endpoint = Endpoint(server.base_url, server.client_ssl_context())
        await _converse(
            settings,
            "offline-replay",
            plain=plain,
            record=record,
            endpoint=endpoint,
            frames=frames,
        )


def _demo_speaker() -> str:
    """The default speaker if there is one, else a WAV file in the working directory."""
    from shelfsight.audio import open_speaker

    try:
        open_speaker("default").close()
    except UserError as exc:
        reason = str(exc).split(":")[0].split(";")[0]
        target = "shelfsight-demo-answer.wav"
        print(f"No speaker to play on ({reason}): the answer goes into {target}.")
        return target
    return "default"


@app.command()
def devices() -> None:
    """List cameras, microphones and speakers by name and index."""

    def go() -> None:
        from shelfsight.devices_report import print_devices

        print_devices()

    _guarded(go)


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
            _SECRETS.append(api_key_from_env())
        code = run_doctor(settings)

    _guarded(go)
    if code:
        raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    print(f"shelfsight {__version__}")


def _resolve_camera(settings: Any) -> Any:
    import dataclasses

    from shelfsight.app import resolve_camera_spec

    return dataclasses.replace(settings, camera=resolve_camera_spec(settings.camera))


# ---- running a command safely -------------------------------------------------------------

_SECRETS: list[str] = []


def _redact(text: str) -> str:
    for secret in _SECRETS:
        if secret:
            text = text.replace(secret, "***")
    return text


def _fail(message: str, code: int) -> None:
    print(f"shelfsight: {_redact(message)}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def _guarded(main: Callable[[], Coroutine[Any, Any, None] | None]) -> None:
    """Run `main` (and the coroutine it returns, if any); map errors to one line and a code."""
    try:
        coroutine = main()
        if coroutine is not None:
            _run_async(coroutine)
    except UserError as exc:
        _fail(str(exc), exc.exit_code)
    except _Terminated:
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        raise typer.Exit(130) from None
    except BaseExceptionGroup as group:
        user_errors = [e for e in _leaves(group) if isinstance(e, UserError)]
        if user_errors:
            _fail(str(user_errors[0]), user_errors[0].exit_code)
        _internal_error(group)
    except Exception as exc:
        _internal_error(exc)


class _Terminated(Exception):
    """SIGTERM ended the run: a clean stop, exit 0."""


def _run_async(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on a fresh event loop; SIGTERM cancels it like Ctrl-C does, then exits 0."""
    terminated = False

    async def runner() -> None:
        nonlocal terminated
        task = asyncio.current_task()

        def on_sigterm() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_sigterm)
        await coroutine

    try:
        asyncio.run(runner())
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise
    if terminated:
        raise _Terminated


def _internal_error(exc: BaseException) -> None:
    """A bug, not bad input: one line by default, the traceback with SHELFSIGHT_DEBUG=1."""
    if os.environ.get("SHELFSIGHT_DEBUG") == "1":
        raise exc
    leaf = _leaves(exc)[0] if isinstance(exc, BaseExceptionGroup) else exc
    _fail(
        f"internal error: {type(leaf).__name__}: {leaf} "
        "(run again with SHELFSIGHT_DEBUG=1 for details, and please report it)",
        1,
    )


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def main() -> None:
    # OpenCV and its FFmpeg print their own warnings (e.g. "Connection refused") on stderr;
    # shelfsight reports those conditions itself, in one line.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    app()
