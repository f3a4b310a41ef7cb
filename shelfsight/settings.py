"""Settings: command-line flags over environment over the config file over defaults.

The API key is deliberately not a setting: it comes only from the environment (or a `.env`
file), is never a flag, and `Settings` never holds it, so printing or recording settings can
never leak it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from shelfsight.core.prices import DEFAULT_PRICES
from shelfsight.errors import UserError

DEFAULT_MODEL = "gemini-3.8-live"
DEFAULT_VOICE = "Kore"
Mode = Literal["handsfree", "ptt"]
MODES: tuple[str, ...] = ("handsfree", "ptt")
SENSITIVITIES: tuple[str, ...] = ("low", "high")
MEDIA_RESOLUTIONS: tuple[str, ...] = ("low", "medium", "high")
LINK_PROBES: tuple[str, ...] = ("auto", "none")
SEND_AUDIO: tuple[str, ...] = ("speech", "always")
PICTURES: tuple[str, ...] = ("needed", "question", "timer")
CHOICES: dict[str, tuple[str, ...]] = {
    "send_audio": SEND_AUDIO,
    "pictures": PICTURES,
    "link_probe": LINK_PROBES,
    "mode": MODES,
    "start_sensitivity": SENSITIVITIES,
    "end_sensitivity": SENSITIVITIES,
    "media_resolution": MEDIA_RESOLUTIONS,
}
# (lowest, highest, unit) of every numeric setting.
RANGES: dict[str, tuple[float, float, str]] = {
    "fps": (0.05, 10, " frames a second"),
    "idle_fps": (0.01, 10, " frames a second"),
    "max_side": (64, 4096, " pixels"),
    "jpeg_quality": (10, 100, ""),
    "silence_ms": (100, 5000, " ms"),
    "prefix_padding_ms": (0, 2000, " ms"),
    "barge_in_ms": (0, 5000, " ms"),
    "answer_wait_s": (1, 600, " s"),
    "connect_timeout_s": (1, 600, " s"),
    "max_outage_s": (1, 3600, " s"),
    "dead_link_s": (0.5, 60, " s"),
    "audio_buffer_s": (1, 300, " s"),
    "cue_volume": (0, 1, " (1: as loud as speech peaks)"),
    "silent_mic_s": (1, 3600, " s"),
    "budget_usd": (0, 10_000, " USD (0: no budget)"),
    "context_tokens": (2_000, 131_072, " tokens"),
    **{f"price_{name}": (0, 1000, " USD per 1M tokens") for name in DEFAULT_PRICES},
}
# The command line's words for each setting it offers (`shelfsight.cli.setting_option` builds
# the options from these, CHOICES and RANGES: a range or a choice is written once, there).
HELP: dict[str, str] = {
    "camera": "iphone (macOS Continuity Camera), a camera name or index, an rtsp:// or "
    "http(s):// stream, a video file, or none.",
    "mic": "default, an input device name or index, a WAV file streamed in real time, or none.",
    "speaker": "default, an output device name or index, or a WAV file to write the answer "
    "audio into on a real-time clock.",
    "mode": "handsfree: just talk, the server hears when you start and stop. ptt: press the "
    "talk key to start and again to stop (or hold it, where key releases are reported).",
    "ptt_key": "The push-to-talk key: space or one character.",
    "aec": "Echo cancellation, so the answer from the speakers is not heard as you talking. "
    "Turn it off with headphones.",
    "start_sensitivity": "Hands-free: how easily speech starts a turn (low: shop noise does not).",
    "end_sensitivity": "Hands-free: how quickly a pause ends it.",
    "silence_ms": "Hands-free: silence that ends your question,",
    "model": "Live API model.",
    "voice": "Answer voice, e.g. Kore, Puck, Aoede, Charon.",
    "fps": "Frames a second sent while someone talks,",
    "idle_fps": "Frames a second otherwise, to save cost (0: always --fps),",
    "max_side": "Longest side of a sent frame,",
    "media_resolution": "Tokens the model spends on each frame. Low costs less and sees less "
    "detail.",
    "vocabulary": "Brand or product names to recognise in what you say, comma-separated or the "
    "option repeated (config: vocabulary = [...]).",
    "jpeg_quality": "JPEG quality of sent frames,",
    "prompt_file": "Use this system instruction instead of the built-in one.",
    "list_file": "A shopping list file, one item a line (Markdown `- [ ] item` lines too): the "
    "assistant knows it, and ticks items off in the file as you say you have them "
    '("I\'ve got the milk", "skip the eggs", "what\'s left?").',
    "cues": "Sound cues (ready, question heard, still thinking, reconnecting, camera lost, error).",
    "speak_status": "Say aloud what lasts or needs you (no connection, camera lost, no answer, "
    "silent mic, stopping). Needs espeak-ng on Linux, say on macOS.",
    "cue_volume": "Loudness of the cues,",
    "language": "The language to answer in, BCP-47 (e.g. en-US, nb-NO, de-DE).",
    "screen_reader": "One plain line per event for VoiceOver or Orca: nothing redrawn, no meter.",
    "send_audio": "Mic audio sent: only around your speech (and all of it while an answer "
    "plays), or always (every second is billed).",
    "pictures": "Pictures sent: needed (one as each question begins, some while an answer "
    "plays, on a big scene change), question (only as each question begins), timer (--fps / "
    "--idle-fps).",
    "context_tokens": "Past this many tokens of conversation the oldest turns are forgotten "
    "(down to half): what every answer re-reads,",
    "budget_usd": "What the session may cost (estimated): warned at 80 %, the cheapest "
    "settings at 100 %,",
}
# What an option's value looks like, where neither CHOICES nor a flag's on/off says it.
METAVARS: dict[str, str] = {
    "camera": "SPEC",
    "mic": "SPEC",
    "speaker": "SPEC",
    "ptt_key": "KEY",
    "silence_ms": "MS",
    "model": "NAME",
    "voice": "NAME",
    "fps": "N",
    "idle_fps": "N",
    "max_side": "PX",
    "vocabulary": "NAMES",
    "jpeg_quality": "Q",
    "prompt_file": "FILE",
    "list_file": "FILE",
    "cues": "on|off",
    "speak_status": "on|off",
    "cue_volume": "0-1",
    "language": "TAG",
    "context_tokens": "N",
    "budget_usd": "USD",
}
# The default as the help shows it, where the value itself would say less.
SHOWN_DEFAULTS: dict[str, str] = {
    "camera": "auto (an iPhone if there is one, else the first camera)",
    "vocabulary": "none",
    "prompt_file": "built-in",
    "list_file": "none",
    "language": "the system locale, else en-US",
}
BCP47 = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?")
DEFAULT_LANGUAGE = "en-US"


@dataclass(frozen=True)
class Settings:
    """Everything a run needs except the key; safe to print and to record."""

    camera: str = "auto"
    mic: str = "default"
    speaker: str = "default"
    mode: Mode = "handsfree"
    model: str = DEFAULT_MODEL
    voice: str = DEFAULT_VOICE
    fps: float = 1.0
    # Frames a second while nobody talks and no answer plays; 0 means always `fps`.
    idle_fps: float = 0.2
    # 768 px: Gemini fits images into 768 x 768 tiles (see README, "What it costs").
    max_side: int = 768
    # Tokens per frame the model spends (setup `mediaResolution`): low, medium or high.
    media_resolution: str = "medium"
    jpeg_quality: int = 80
    # What goes up, and so what is billed (README, "What it costs"): "speech" sends the mic
    # only around the user's speech (and whole while an answer plays), "always" all of it;
    # "needed" sends a picture as each question begins, while an answer plays and when the
    # scene changes a lot, "question" only as each question begins, "timer" at --fps /
    # --idle-fps whatever happens.
    send_audio: str = "speech"
    pictures: str = "needed"
    # The context each answer re-reads is kept under this many tokens: past it, the server's
    # sliding window forgets the oldest turns down to half of it.
    context_tokens: int = 16_000
    # USD a session may cost (estimated from the server's usage figures): a warning at 80 %,
    # the cheapest settings at 100 %; 0: no budget.
    budget_usd: float = 0.0
    prompt_file: Path | None = None
    # A shopping list (plain lines or a Markdown task list), kept up to date as items are found.
    list_file: Path | None = None
    ptt_key: str = "space"
    # Echo cancellation of the speaker's sound in the mic; off for headphones.
    aec: bool = True
    # Hands-free turn detection, tuned for a noisy shop (issue 4 exposes these as flags).
    start_sensitivity: str = "low"
    end_sensitivity: str = "high"
    silence_ms: int = 700
    prefix_padding_ms: int = 200
    # Hands-free: this much speech over an answer already received stops its playback; 0: off.
    barge_in_ms: int = 100
    # How long to wait for an answer after a mic file has ended before exiting.
    answer_wait_s: float = 20.0
    # Give up when the first connection takes longer than this, or a reconnect than max_outage_s.
    connect_timeout_s: float = 15.0
    max_outage_s: float = 60.0
    # A connection on which nothing we sent was acknowledged for this long is cut and replaced
    # (longer on a link whose retransmission timeout is long: see shelfsight.live.liveness);
    # mic audio waits this long for a connection before the oldest is lost.
    dead_link_s: float = 2.5
    audio_buffer_s: float = 15.0
    # How the link learns that what it sent arrived: "auto" asks the kernel (TCP_INFO on Linux,
    # TCP_CONNECTION_INFO on macOS), "none" watches only the unsent backlog (as where the
    # kernel cannot say; for trying that here, and a way out if a kernel's answer misleads).
    link_probe: str = "auto"
    # Recording: `always_record` puts every run into a dated folder under `sessions_dir`.
    always_record: bool = False
    sessions_dir: str = "sessions"
    # Brand and product names that bias the transcription of what the user says
    # (`AudioTranscriptionConfig.custom_vocabulary`).
    vocabulary: tuple[str, ...] = ()
    # Estimated price in USD per 1M tokens (defaults: shelfsight.session.cost.PRICES_AS_OF).
    price_text_in: float = DEFAULT_PRICES["text_in"]
    price_audio_in: float = DEFAULT_PRICES["audio_in"]
    price_video_in: float = DEFAULT_PRICES["video_in"]
    price_text_out: float = DEFAULT_PRICES["text_out"]
    price_audio_out: float = DEFAULT_PRICES["audio_out"]
    # Heard, not seen: sound cues and spoken status through the speaker, screen-reader output,
    # the answer language (BCP-47; empty: the system locale, which load_settings fills in).
    cues: bool = True
    speak_status: bool = True
    cue_volume: float = 0.2  # 0-1: 1 is as loud as speech peaks, 0.2 about -20 dBFS
    silent_mic_s: float = 30.0  # a mic digitally silent this long is said to be silent
    screen_reader: bool = False
    language: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def validate(self, name_of: Callable[[str], str] | None = None) -> Settings:
        """Check every value; `name_of` says how the user gave a setting (`--idle-fps`,
        `SHELFSIGHT_IDLE_FPS`, `idle_fps in config.toml`), for the one-line error."""
        label = name_of or flag_name
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise UserError(
                    f"{label(name)}: {getattr(self, name)!r} is not valid: "
                    f"use one of {', '.join(choices)}."
                )
        for name, (low, high, unit) in RANGES.items():
            value = getattr(self, name)
            if name == "idle_fps" and value == 0:
                continue  # 0: always --fps
            if not low <= value <= high:
                off = " (or 0: always --fps)" if name == "idle_fps" else ""
                raise UserError(
                    f"{label(name)}: {value:g} is out of range: use {low:g} to {high:g}{unit}{off}."
                )
        if len(self.talk_key) != 1 or not self.talk_key.isprintable():
            raise UserError(
                f"{label('ptt_key')}: {self.ptt_key!r} is not a key: "
                "use 'space' or a single printable key."
            )
        for word in self.vocabulary:
            if len(word) > 100:
                raise UserError(f"{label('vocabulary')}: {word[:20]!r}... is over 100 characters.")
        if self.language and not BCP47.fullmatch(self.language):
            raise UserError(
                f"{label('language')}: {self.language!r} is not a BCP-47 language tag: use e.g. "
                "en-US, nb-NO or de-DE."
            )
        if not model_name_is_plausible(self.model):
            raise UserError(
                f"{label('model')}: {self.model!r} is not a valid model name: "
                f"use e.g. {DEFAULT_MODEL}."
            )
        if self.prompt_file is not None and not self.prompt_file.is_file():
            what = "is a folder" if self.prompt_file.is_dir() else "does not exist"
            raise UserError(
                f"{label('prompt_file')}: {self.prompt_file} {what}: give a Markdown or text "
                "file holding the system instruction."
            )
        return self

    @property
    def talk_key(self) -> str:
        return " " if self.ptt_key.lower() == "space" else self.ptt_key


def model_name_is_plausible(model: str) -> bool:
    name = model.removeprefix("models/")
    return bool(name) and all(c.isalnum() or c in "-._" for c in name)


ENV_PREFIX = "SHELFSIGHT_"
# SHELFSIGHT_* variables that are not settings: the config path, tracebacks, and the run
# command's own --record, --plain and --offline.
OTHER_ENV_NAMES = frozenset({"CONFIG", "DEBUG", "RECORD", "PLAIN", "OFFLINE"})


FLAG_NAMES = {"budget_usd": "--budget", "list_file": "--list"}  # flags not named as settings


def flag_name(name: str) -> str:
    """The command-line flag of a setting: `--idle-fps`, `--budget`."""
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings) if f.name != "extra"]


def default_config_path() -> Path:
    """The user's config file when SHELFSIGHT_CONFIG is not set: the platform config dir."""
    import typer

    return Path(typer.get_app_dir("shelfsight")) / "config.toml"


def load_settings(
    flags: dict[str, Any],
    *,
    config_path: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Merge flags (None means "not given") over SHELFSIGHT_* env over the TOML file.

    A config file named by --config or SHELFSIGHT_CONFIG must exist; an unknown key in it is
    an error naming the closest valid one; an unknown SHELFSIGHT_* variable is a warning on
    stderr (the environment is shared with other programs and shells, a file is not).
    """
    environ = dict(os.environ) if environ is None else environ
    sources: dict[str, str] = {}
    if config_path is not None:
        path, required, via = config_path, True, "--config"
    elif env_path := environ.get(ENV_PREFIX + "CONFIG"):
        path, required, via = Path(env_path).expanduser(), True, ENV_PREFIX + "CONFIG"
    else:
        path, required, via = default_config_path(), False, ""
    merged = _read_config_file(path, required=required, via=via)
    sources.update({name: f"{name} in {path}" for name in merged})
    from_env = _from_env(environ)
    merged.update(from_env)
    sources.update({name: ENV_PREFIX + name.upper() for name in from_env})
    given = {k: v for k, v in flags.items() if v is not None}
    merged.update(given)
    sources.update({name: flag_name(name) for name in given})

    def name_of(name: str) -> str:
        return sources.get(name, flag_name(name))

    settings = _build(merged, name_of)
    if not settings.language:
        settings = dataclasses.replace(settings, language=system_language(environ))
    return settings.validate(name_of)


def system_language(environ: dict[str, str]) -> str:
    """The user's language as BCP-47 from the POSIX locale variables ("nb_NO.UTF-8" ->
    "nb-NO"); en-US when they name none (unset, C or POSIX)."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "").split(".")[0].split("@")[0].replace("_", "-")
        if value and value not in ("C", "POSIX") and BCP47.fullmatch(value):
            return value
    return DEFAULT_LANGUAGE


def _read_config_file(path: Path, *, required: bool, via: str = "") -> dict[str, Any]:
    if not path.exists():
        if required:
            raise UserError(f"Config file {path} (from {via}) does not exist.")
        return {}
    if path.is_dir():
        raise UserError(f"Config file {path} is a folder: give a TOML file.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"Config file {path} is not valid TOML: {exc}") from None
    section = data.get("shelfsight", data)
    if "api_key" in section or "key" in section:
        raise UserError(
            f"Config file {path} holds an API key: remove it and set GEMINI_API_KEY instead."
        )
    values = {k.replace("-", "_"): v for k, v in section.items()}
    known = setting_names()
    for key in values:
        if key not in known:
            raise UserError(f"Config file {path}: unknown setting {key!r}{_closest(key, known)}.")
    return values


def _closest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _from_env(environ: dict[str, str]) -> dict[str, str]:
    names = setting_names()
    wanted = {ENV_PREFIX + name.upper(): name for name in names}
    others = {ENV_PREFIX + name for name in OTHER_ENV_NAMES}
    for var in sorted(environ):
        if var.startswith(ENV_PREFIX) and var not in wanted and var not in others:
            hint = _closest(var, sorted(wanted) + sorted(others))
            print(f"shelfsight: warning: ignoring unknown variable {var}{hint}", file=sys.stderr)
    return {name: environ[var] for var, name in wanted.items() if environ.get(var)}


def _build(values: dict[str, Any], name_of: Callable[[str], str]) -> Settings:
    """Coerce strings from env and TOML into the field types, with one-line errors."""
    kwargs: dict[str, Any] = {}
    for name, raw in values.items():
        kind = type(getattr(Settings(), name))
        try:
            if name in ("prompt_file", "list_file"):
                kwargs[name] = Path(str(raw)).expanduser() if raw else None
            elif name == "vocabulary":
                kwargs[name] = parse_vocabulary(raw)
            elif kind is bool and isinstance(raw, str):
                kwargs[name] = _parse_bool(name_of(name), raw)
            elif kind is bool and not isinstance(raw, bool):
                raise TypeError(raw)
            elif kind is str and not isinstance(raw, str):
                if isinstance(raw, bool) or not isinstance(raw, int | float):
                    raise TypeError(raw)
                kwargs[name] = str(raw)  # camera = 0 in TOML
            elif kind in (int, float) and not isinstance(raw, kind):
                if isinstance(raw, bool) or (kind is int and isinstance(raw, float)):
                    raise TypeError(raw)
                kwargs[name] = kind(raw)
            else:
                kwargs[name] = raw
        except (TypeError, ValueError):
            wanted = {
                int: "a whole number",
                float: "a number",
                bool: "true or false",
                tuple: "a list of names",
            }
            raise UserError(
                f"{name_of(name)}: {raw!r} is not {wanted.get(kind, 'text')}."
            ) from None
    return dataclasses.replace(Settings(), **kwargs)


def parse_vocabulary(raw: object) -> tuple[str, ...]:
    """A config list, or a comma-separated string (env, flag): stripped, empties dropped."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("vocabulary must be a list of strings")
    return tuple(dict.fromkeys(i.strip() for i in items if i.strip()))


def _parse_bool(label: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise UserError(f"{label}: {raw!r} is not true or false.")


def api_key_from_env(
    environ: dict[str, str] | None = None, *, dotenv_dir: Path | None = None
) -> str:
    """The Gemini API key, as google-genai reads it: GOOGLE_API_KEY wins over GEMINI_API_KEY.

    A `.env` file in the working directory fills in variables that are not already set.
    """
    if environ is None:
        _load_dotenv(dotenv_dir or Path.cwd())
        environ = dict(os.environ)
    key = (environ.get("GOOGLE_API_KEY") or environ.get("GEMINI_API_KEY") or "").strip()
    if not key:
        raise UserError(
            "No API key: set GEMINI_API_KEY (get one at https://aistudio.google.com/apikey), "
            "or try `shelfsight demo`, which needs none."
        )
    if any(c.isspace() for c in key) or not key.isascii():
        raise UserError("The API key in GEMINI_API_KEY / GOOGLE_API_KEY is malformed: check it.")
    return key


def _load_dotenv(directory: Path) -> None:
    env_file = directory / ".env"
    if not env_file.is_file():
        return
    from dotenv import load_dotenv

    load_dotenv(env_file, override=False)
