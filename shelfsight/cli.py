"""The `shelfsight` command line.

Every command runs through `guard.guarded` (one line and exit 2 for bad input, never a
traceback; 130 for Ctrl-C, 0 for SIGTERM; the key never printed). Heavy imports happen inside
the commands, so `--help` is fast and a missing system library only matters to who needs it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Coroutine
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from shelfsight import __version__
from shelfsight.errors import UserError
from shelfsight.guard import SECRETS, exit_process, guarded, run_async
from shelfsight.settings import (
    CHOICES,
    ENV_PREFIX,
    HELP,
    METAVARS,
    RANGES,
    SHOWN_DEFAULTS,
    Settings,
    default_config_path,
    setting_names,
)

app = typer.Typer(
    name="shelfsight",
    help="Point a camera at a store shelf, ask aloud where something is, hear the answer.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def choices(values: tuple[str, ...]) -> str:
    """The metavar of an option with a few values, as Click shows them: `[low|high]`.

    Such options take any string and are checked by `Settings.validate`, so a bad value gets
    the same one line as every other setting (`--mode: 'push' is not valid: use one of
    handsfree, ptt.`), whether it came from a flag, the environment or the config file.
    """
    return "[" + "|".join(values) + "]"


def lower(value: str | None) -> str | None:
    """Choices are not case-sensitive: `--mode PTT` is `--mode ptt`."""
    return value.lower() if value is not None else None


def env_help(text: str, name: str, default: object = None) -> str:
    """Help text ending the way Click writes it: `[env var: SHELFSIGHT_X; default: Y]`.

    The variables are read by `settings.load_settings` (flags over env over config file), not
    by Click, so that errors can say which of the three a bad value came from.
    """
    if default is None and name in _DEFAULTS:
        default = _DEFAULTS[name]
    shown = (
        {True: "on", False: "off"}.get(default, default) if isinstance(default, bool) else default
    )
    bits = [f"env var: {ENV_PREFIX}{name.upper()}"]
    if default is not None:
        bits.append(f"default: {shown}")
    return f"{text} [{'; '.join(bits)}]"


_DEFAULTS: dict[str, object] = {
    **{name: getattr(Settings(), name) for name in setting_names()},
    **SHOWN_DEFAULTS,
    "fps": 1,
}


def setting_option(name: str, *decls: str, **extra: Any) -> Any:
    """The option of setting `name`, all from the settings' table: its help (`HELP`, with
    the range from `RANGES`, the env var and the default) and its metavar (the choices from
    `CHOICES`, else `METAVARS`). Values are checked by `Settings.validate`, not by Click."""
    text = HELP[name]
    if name in RANGES:
        low, high, unit = RANGES[name]
        text = f"{text} {low:g} to {high:g}{unit}."
    metavar = choices(CHOICES[name]) if name in CHOICES else METAVARS.get(name)
    return typer.Option(
        *decls, metavar=metavar, help=env_help(text, name), show_default=False, **extra
    )


def setting_flags(given: dict[str, Any], **fixed: Any) -> dict[str, Any]:
    """The settings among a command's parameters (its `locals()`), as `load_settings` takes
    them: choices lower-cased, a repeated --vocabulary joined; `fixed` ones added."""
    flags: dict[str, Any] = {}
    for name in setting_names():
        if name not in given:
            continue
        value = given[name]
        if name in CHOICES:
            value = lower(value)
        elif name == "vocabulary":
            value = vocabulary_flag(value)
        flags[name] = value
    return {**flags, **fixed}


def vocabulary_flag(values: list[str] | None) -> str | None:
    """Repeated --vocabulary options as one comma-separated setting (None: not given)."""
    return ",".join(values) if values else None


CameraOpt = Annotated[str | None, setting_option("camera", "--camera", "-c")]
MicOpt = Annotated[str | None, setting_option("mic", "--mic", "-m")]
SpeakerOpt = Annotated[str | None, setting_option("speaker", "--speaker", "-s")]
ModelOpt = Annotated[str | None, setting_option("model")]
VoiceOpt = Annotated[str | None, setting_option("voice")]
MediaResolutionOpt = Annotated[str | None, setting_option("media_resolution")]
CuesOpt = Annotated[str | None, setting_option("cues")]
SpeakStatusOpt = Annotated[str | None, setting_option("speak_status")]
LanguageOpt = Annotated[str | None, setting_option("language")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help=env_help("Config file (TOML).", "config", default_config_path()),
        show_default=False,
    ),
]
PlainOpt = Annotated[
    bool,
    typer.Option(
        "--plain",
        help=env_help(
            "Plain lines instead of the live terminal view (automatic when output is not a "
            "terminal).",
            "plain",
            False,
        ),
        envvar=ENV_PREFIX + "PLAIN",
        show_envvar=False,
        show_default=False,
    ),
]


@app.command(
    epilog="Examples:\n\n"
    "  shelfsight run --camera iphone\n\n"
    "  shelfsight run --camera iphone --mode ptt        (noisy store: space to talk)\n\n"
    "  shelfsight run --camera rtsp://192.168.1.23:8554/live\n\n"
    "  shelfsight run --camera shelf.mp4 --mic question.wav --speaker answer.wav\n\n"
    "  shelfsight run --offline                          (no key: a canned answer)\n\n"
    "Keys: type a question and Enter to ask it in writing; Esc stops the answer; Tab guides "
    "you to the item you asked about (with a camera), and stops guiding; q or Ctrl-D quits; "
    "in ptt mode, space talks.\n\n"
    "The API key comes from GEMINI_API_KEY (or GOOGLE_API_KEY, or a .env file), never a flag."
)
def run(
    camera: CameraOpt = None,
    mic: MicOpt = None,
    speaker: SpeakerOpt = None,
    mode: Annotated[str | None, setting_option("mode")] = None,
    ptt_key: Annotated[str | None, setting_option("ptt_key")] = None,
    aec: Annotated[bool | None, setting_option("aec", "--aec/--no-aec")] = None,
    start_sensitivity: Annotated[str | None, setting_option("start_sensitivity")] = None,
    end_sensitivity: Annotated[str | None, setting_option("end_sensitivity")] = None,
    silence_ms: Annotated[int | None, setting_option("silence_ms")] = None,
    model: ModelOpt = None,
    voice: VoiceOpt = None,
    fps: Annotated[float | None, setting_option("fps")] = None,
    idle_fps: Annotated[float | None, setting_option("idle_fps")] = None,
    max_side: Annotated[int | None, setting_option("max_side")] = None,
    media_resolution: MediaResolutionOpt = None,
    vocabulary: Annotated[list[str] | None, setting_option("vocabulary", "--vocabulary")] = None,
    jpeg_quality: Annotated[int | None, setting_option("jpeg_quality")] = None,
    prompt_file: Annotated[Path | None, setting_option("prompt_file")] = None,
    list_file: Annotated[Path | None, setting_option("list_file", "--list")] = None,
    send_audio: Annotated[str | None, setting_option("send_audio")] = None,
    pictures: Annotated[str | None, setting_option("pictures")] = None,
    context_tokens: Annotated[int | None, setting_option("context_tokens")] = None,
    budget_usd: Annotated[float | None, setting_option("budget_usd", "--budget")] = None,
    config: ConfigOpt = None,
    record: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help=env_help(
                "Record the session into this folder (frames, both audio streams, "
                "transcripts, timed events). Config: always_record = true records every "
                "session into a dated folder under sessions_dir.",
                "record",
            ),
            envvar=ENV_PREFIX + "RECORD",
            show_envvar=False,
            show_default=False,
        ),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help=env_help(
                "No key, no network: a built-in stand-in answers every question with one "
                "canned answer, to try your camera, mic and speaker end to end.",
                "offline",
                False,
            ),
            envvar=ENV_PREFIX + "OFFLINE",
            show_envvar=False,
            show_default=False,
        ),
    ] = False,
    plain: PlainOpt = False,
    cues: CuesOpt = None,
    speak_status: SpeakStatusOpt = None,
    cue_volume: Annotated[float | None, setting_option("cue_volume")] = None,
    language: LanguageOpt = None,
    screen_reader: Annotated[
        bool | None, setting_option("screen_reader", "--screen-reader/--no-screen-reader")
    ] = None,
) -> None:
    """Talk with the assistant about what the camera sees, until q or Ctrl-C."""
    flags = setting_flags(locals())

    def go() -> Coroutine[Any, Any, None]:
        from shelfsight.app import converse
        from shelfsight.session.recording import session_folder_name
        from shelfsight.settings import api_key_from_env, load_settings

        settings = load_settings(flags, config_path=config)
        if not offline:
            key = api_key_from_env()
            SECRETS.append(key)
        settings = _resolve_camera(settings)
        folder = record
        if folder is None and settings.always_record:
            folder = Path(settings.sessions_dir).expanduser() / session_folder_name()
        if offline:
            from shelfsight.playback import offline_run

            return offline_run(settings, plain=plain, record=folder)
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
    media_resolution: MediaResolutionOpt = None,
    config: ConfigOpt = None,
    plain: PlainOpt = False,
    cues: CuesOpt = None,
    speak_status: SpeakStatusOpt = None,
    language: LanguageOpt = None,
) -> None:
    """Ask one typed question about what the camera sees; print and speak the answer, exit 0."""
    flags = setting_flags(locals(), mic="none")

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
    plain: PlainOpt = False,
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
    plain: PlainOpt = False,
    guide: Annotated[
        bool,
        typer.Option(
            "--guide",
            help="Guide mode instead: ticks lead a camera (a shelf video) to a bag, then a "
            "chime; best heard in stereo on headphones.",
        ),
    ] = False,
) -> None:
    """A bundled shelf session replayed offline: no camera, microphone, key or network needed.

    The answer plays on the default speaker; when there is none it is written to
    demo-answer.wav in the user's cache folder (~/.cache/shelfsight on Linux,
    ~/Library/Caches/shelfsight on macOS), or to the file given with --speaker (a WAV file
    is mono: the guide's ticks keep their pitch and pace there, not their left and right).
    """

    def go() -> None:
        from shelfsight.playback import NEXT_STEP, demo_speaker, guide_demo, replay_session
        from shelfsight.ui.view import print_paragraph

        bundled = resources.files("shelfsight") / "assets" / "demo-session"
        target = speaker or demo_speaker()
        if guide:
            run_async(guide_demo(target, plain=plain))
        else:
            with resources.as_file(bundled) as folder:
                run_async(
                    replay_session(
                        folder, offline=True, speaker=target, model=None, record=None, plain=plain
                    )
                )
        if target.lower().endswith(".wav"):
            print_paragraph(f"The spoken answer was written to {Path(target).resolve()}")
        print_paragraph(NEXT_STEP)

    guarded(go)


@app.command()
def sessions(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="A folder of recordings, or one recording. Default: the sessions_dir setting.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List recorded sessions with date, duration, questions and answers."""

    def go() -> None:
        from shelfsight.session.cost import format_usd
        from shelfsight.session.recording import load_session
        from shelfsight.session.replay import describe, find_sessions
        from shelfsight.settings import load_settings
        from shelfsight.ui.listing import Listing, show

        root = folder or Path(load_settings({}).sessions_dir).expanduser()
        found = find_sessions(root)
        if not found:
            print(f"No recorded sessions in {root}. Record one with: shelfsight run --record DIR")
            return
        # The folder is never wrapped or cut, so it can be pasted into `shelfsight replay`.
        columns = ["folder", "started", "duration", "questions", "answers", "tokens", "cost"]
        listing = Listing(f"Sessions in {root}", [*columns, "status"])
        for path in found:
            row = describe(load_session(path))
            cost = format_usd(float(row["cost_usd"]))  # type: ignore[arg-type]
            if row["budget_usd"]:
                cost += f" of {format_usd(float(row['budget_usd']))}"  # type: ignore[arg-type]
            listing.add(
                [
                    str(path),
                    str(row["started"]),
                    f"{row['duration_s']:.0f} s",
                    str(row["questions"]),
                    str(row["answers"]),
                    f"{row['tokens_in'] + row['tokens_out']:,}",  # type: ignore[operator]
                    cost,
                    "complete" if row["complete"] else "cut short",
                ]
            )
        show(listing)

    guarded(go)


@app.command(
    name="eval",
    epilog="Examples:\n\n"
    "  shelfsight eval                                   (the bundled suite)\n\n"
    "  shelfsight eval my-shop-suite --json > today.json\n\n"
    "  shelfsight eval --prompt-file terse.md --model gemini-3.8-live\n\n"
    "A suite is a folder with cases.json; see the README, 'Measuring answer quality'.",
)
def eval_suite(
    suite: Annotated[
        Path | None,
        typer.Argument(help="A suite folder (cases.json). Default: the bundled shelf suite."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout instead of the table.")
    ] = False,
    model: ModelOpt = None,
    prompt_file: Annotated[Path | None, setting_option("prompt_file")] = None,
    media_resolution: MediaResolutionOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Ask every case of a suite, score the answers (found, shelf, position, colour), and print
    a table with totals."""
    flags = setting_flags(locals(), camera="none", mic="none")

    def go() -> None:
        import json
        import sys

        from rich.console import Console

        from shelfsight.eval.cases import bundled_suite, load_suite
        from shelfsight.eval.report import as_json, listing
        from shelfsight.eval.runner import run_suite
        from shelfsight.settings import api_key_from_env, load_settings
        from shelfsight.ui.listing import show

        folder = suite or bundled_suite()
        cases = load_suite(folder)
        settings = load_settings(flags, config_path=config)
        key = api_key_from_env()
        SECRETS.append(key)
        progress = Console(stderr=True)

        def said(result: Any) -> None:
            mark = "right" if result.score.correct else "wrong"
            progress.print(f"{result.case.id}: {mark} — {result.answer}", highlight=False)

        results: list[Any] = []

        async def ask_all() -> None:
            results.extend(await run_suite(cases, settings, key, on_result=said))

        run_async(ask_all())
        if json_out:
            json.dump(as_json(results, settings.model), sys.stdout, indent=2)
            print()
        else:
            show(listing(results, f"{folder.name}: {settings.model}"))

    guarded(go)


@app.command("list", epilog="Example:\n\n  shelfsight list groceries.md")
def list_command(
    file: Annotated[Path, typer.Argument(help="A shopping list file, as given to run --list.")],
) -> None:
    """Print a shopping list: what is found, what is left, what was skipped."""

    def go() -> None:
        from shelfsight.tools.shopping_list import format_for_people, load

        print(format_for_people(load(file), str(file)))

    guarded(go)


@app.command()
def devices() -> None:
    """List cameras, microphones and speakers by name and index."""

    def go() -> None:
        from shelfsight.ui.device_list import print_devices

        print_devices()

    guarded(go)


@app.command(
    epilog="Examples:\n\n"
    "  shelfsight doctor --camera iphone --mic default --speaker default\n\n"
    "  shelfsight doctor --live --json findings.json    (what the Live API really does; attach "
    "the file to a bug report)"
)
def doctor(
    camera: CameraOpt = None,
    mic: MicOpt = None,
    speaker: SpeakerOpt = None,
    model: ModelOpt = None,
    config: ConfigOpt = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Instead of the device checks, probe the Live API endpoint a run would use "
            "(under a minute, needs the key): setup, compression, ping/pong times, first "
            "answer time, usage metadata, talking over an answer, 8 kHz audio.",
        ),
    ] = False,
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json",
            metavar="PATH",
            help="With --live: also save the findings to this file (never the key).",
            show_default=False,
        ),
    ] = None,
    pong_wait: Annotated[
        float | None,
        typer.Option(
            metavar="S",
            help="With --live: how long to wait for each pong, 0.5 to 30 s. [default: 20]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check the key, the endpoint, the camera, the microphone and the speaker, one line each;
    with --live, what the Live API endpoint actually does."""
    flags = setting_flags(locals())
    code = 0

    def go() -> None:
        nonlocal code
        from shelfsight.settings import api_key_from_env, load_settings

        if not live and (json_path is not None or pong_wait is not None):
            raise UserError("--json and --pong-wait go with --live.")
        settings = load_settings(flags, config_path=config)
        if live:
            code = _live_doctor(settings, json_path, pong_wait)
            return
        from shelfsight.doctor import run_doctor

        with contextlib.suppress(UserError):
            SECRETS.append(api_key_from_env())
        code = run_doctor(settings)

    guarded(go)
    if code:
        raise typer.Exit(code)


def _live_doctor(settings: Any, json_path: Path | None, pong_wait: float | None) -> int:
    """`doctor --live`: bad input is exit 2 before anything is sent; no key is one line, 1."""
    import dataclasses

    from shelfsight.doctor import CheckResult
    from shelfsight.doctor_findings import Bounds
    from shelfsight.doctor_live import check_writable, run_live_doctor
    from shelfsight.settings import api_key_from_env

    bounds = Bounds()
    if pong_wait is not None:
        if not 0.5 <= pong_wait <= 30:
            raise UserError(f"--pong-wait {pong_wait:g}: use 0.5 to 30 seconds.")
        bounds = dataclasses.replace(bounds, pong_wait_s=pong_wait)
    if json_path is not None:
        check_writable(json_path)
    try:
        key = api_key_from_env()
    except UserError as exc:
        detail = "malformed" if "malformed" in str(exc) else "not set"
        print(CheckResult("API key", "FAIL", detail, str(exc)).line(), flush=True)
        return 1
    SECRETS.append(key)
    return run_live_doctor(settings, key, bounds=bounds, json_path=json_path)


def _print_version(value: bool) -> None:
    if value:
        print(f"shelfsight {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Point a camera at a store shelf, ask aloud where something is, hear the answer."""


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
    try:
        code = app(standalone_mode=False)
    except _USAGE_ERROR as caught:
        exc: Any = caught
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `shelfsight`: the help
            exc.show()
            sys.exit(exc.exit_code)
        command = exc.ctx.command_path if exc.ctx is not None else "shelfsight"
        print(
            f"shelfsight: {exc.format_message()} (see: {command} --help)",
            file=sys.stderr,
        )
        sys.exit(2)
    except typer.Abort:
        exit_process(1)
    exit_process(code if isinstance(code, int) else 0)


# Click's UsageError (a bad option or value), found through the one Click error Typer exports.
_USAGE_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)
