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


@app.command(
    epilog="Examples:\n\n"
    "  shelfsight run --camera iphone\n\n"
    "  shelfsight run --camera rtsp://192.168.1.23:8554/live\n\n"
    "  shelfsight run --camera shelf.mp4 --mic question.wav --speaker answer.wav\n\n"
    "The API key comes from GEMINI_API_KEY (or GOOGLE_API_KEY, or a .env file), never a flag."
)
def run(
    camera: CameraOpt = None,
    mic: MicOpt = None,
    speaker: SpeakerOpt = None,
    mode: Annotated[
        str | None,
        typer.Option(help="handsfree: just talk (server voice detection).", show_default=False),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Live API model. Env SHELFSIGHT_MODEL.", show_default=False),
    ] = None,
    voice: Annotated[
        str | None, typer.Option(help="Answer voice, e.g. Kore, Puck, Aoede.", show_default=False)
    ] = None,
    fps: Annotated[
        float | None, typer.Option(help="Camera frames sent per second [1].", show_default=False)
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
    config: Annotated[
        Path | None,
        typer.Option(help="Config file (TOML). Default: the user's shelfsight/config.toml."),
    ] = None,
    plain: Annotated[
        bool, typer.Option(help="Plain lines instead of the live terminal view.")
    ] = False,
) -> None:
    """Talk with the assistant about what the camera sees, until Ctrl-C."""
    flags = dict(
        camera=camera,
        mic=mic,
        speaker=speaker,
        mode=mode,
        model=model,
        voice=voice,
        fps=fps,
        max_side=max_side,
        jpeg_quality=jpeg_quality,
        prompt_file=prompt_file,
    )

    async def go() -> None:
        from shelfsight.app import run_conversation
        from shelfsight.settings import api_key_from_env, load_settings
        from shelfsight.view import make_view

        settings = load_settings(flags, config_path=config)
        if settings.mode != "handsfree":
            raise UserError(f"--mode {settings.mode} is not available yet: use handsfree.")
        key = api_key_from_env()
        _SECRETS.append(key)
        settings = _resolve_camera(settings)
        view = make_view(plain=True if plain else None)
        view.start()
        try:
            await run_conversation(settings, key, view)
        finally:
            view.stop()

    _guarded(go)


@app.command()
def devices() -> None:
    """List cameras, microphones and speakers by name and index."""

    async def go() -> None:
        from shelfsight.devices_report import print_devices

        print_devices()

    _guarded(go)


@app.command()
def version() -> None:
    """Print the version."""
    print(f"shelfsight {__version__}")


def _resolve_camera(settings: Any) -> Any:
    """`auto` means an iPhone (Continuity Camera) if present, else the first camera."""
    if settings.camera != "auto":
        return settings
    import dataclasses

    from shelfsight.camera import list_cameras

    cameras = list_cameras()
    if not cameras:
        raise UserError(
            "No camera found. Connect one, or pass --camera with a stream URL or a video file "
            "(or --camera none to talk without pictures)."
        )
    chosen = next((c for c in cameras if c.is_continuity), cameras[0])
    return dataclasses.replace(settings, camera=str(chosen.index))


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


def _guarded(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `main` on a fresh event loop; map errors and signals to one line and an exit code."""
    terminated = False

    async def runner() -> None:
        nonlocal terminated
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def on_sigterm() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        await main()

    try:
        asyncio.run(runner())
    except UserError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        raise typer.Exit(130) from None
    except asyncio.CancelledError:
        if terminated:
            raise typer.Exit(0) from None
        raise
    except BaseExceptionGroup as group:
        user_errors = [e for e in _leaves(group) if isinstance(e, UserError)]
        if user_errors:
            _fail(str(user_errors[0]), user_errors[0].exit_code)
        _internal_error(group)
    except Exception as exc:
        _internal_error(exc)
    if terminated:
        raise typer.Exit(0)


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
