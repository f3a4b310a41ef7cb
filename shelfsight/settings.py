"""Settings: command-line flags over environment over the config file over defaults.

The API key is deliberately not a setting: it comes only from the environment (or a `.env`
file), is never a flag, and `Settings` never holds it, so printing or recording settings can
never leak it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from shelfsight.errors import UserError

DEFAULT_MODEL = "gemini-3.8-live"
DEFAULT_VOICE = "Kore"
Mode = Literal["handsfree", "ptt"]
MODES: tuple[str, ...] = ("handsfree", "ptt")
SENSITIVITIES: tuple[str, ...] = ("low", "high")
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
    max_side: int = 1024
    jpeg_quality: int = 80
    prompt_file: Path | None = None
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
    # Recording: `always_record` puts every run into a dated folder under `sessions_dir`.
    always_record: bool = False
    sessions_dir: str = "sessions"
    # Heard, not seen: sound cues and spoken status through the speaker, screen-reader output,
    # the answer language (BCP-47; empty: the system locale, which load_settings fills in).
    cues: bool = True
    speak_status: bool = True
    cue_volume: float = 0.2  # 0-1: 1 is as loud as speech peaks, 0.2 about -20 dBFS
    silent_mic_s: float = 30.0  # a mic digitally silent this long is said to be silent
    screen_reader: bool = False
    language: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def validate(self) -> Settings:
        if self.mode not in MODES:
            raise UserError(f"Unknown mode {self.mode!r}: use one of {', '.join(MODES)}.")
        if not 0.05 <= self.fps <= 10:
            raise UserError(f"--fps {self.fps} is out of range: use 0.05 to 10 frames a second.")
        if not 64 <= self.max_side <= 4096:
            raise UserError(f"--max-side {self.max_side} is out of range: use 64 to 4096 pixels.")
        if not 10 <= self.jpeg_quality <= 100:
            raise UserError(f"--jpeg-quality {self.jpeg_quality} is out of range: use 10 to 100.")
        if self.idle_fps < 0:
            raise UserError(f"idle_fps {self.idle_fps} must be 0 (off) or more.")
        if len(self.talk_key) != 1 or not self.talk_key.isprintable():
            raise UserError(f"--ptt-key {self.ptt_key!r}: use 'space' or a single printable key.")
        for name in ("start_sensitivity", "end_sensitivity"):
            if getattr(self, name) not in SENSITIVITIES:
                raise UserError(f"{name} must be 'low' or 'high', not {getattr(self, name)!r}.")
        if not 0 <= self.cue_volume <= 1:
            raise UserError(f"--cue-volume {self.cue_volume} is out of range: use 0 to 1.")
        if self.silent_mic_s <= 0:
            raise UserError(f"silent_mic_s {self.silent_mic_s} must be more than 0 seconds.")
        if self.language and not BCP47.fullmatch(self.language):
            raise UserError(
                f"--language {self.language!r} is not a BCP-47 language tag: use e.g. en-US, "
                "nb-NO or de-DE."
            )
        if not model_name_is_plausible(self.model):
            raise UserError(f"Model name {self.model!r} is not valid: use e.g. {DEFAULT_MODEL}.")
        return self

    @property
    def talk_key(self) -> str:
        return " " if self.ptt_key.lower() == "space" else self.ptt_key


def model_name_is_plausible(model: str) -> bool:
    name = model.removeprefix("models/")
    return bool(name) and all(c.isalnum() or c in "-._" for c in name)


ENV_PREFIX = "SHELFSIGHT_"


def default_config_path() -> Path:
    """The user's config file: $SHELFSIGHT_CONFIG, else the platform config dir."""
    if env := os.environ.get(ENV_PREFIX + "CONFIG"):
        return Path(env).expanduser()
    import typer

    return Path(typer.get_app_dir("shelfsight")) / "config.toml"


def load_settings(
    flags: dict[str, Any],
    *,
    config_path: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Merge flags (None means "not given") over SHELFSIGHT_* env over the TOML file."""
    environ = dict(os.environ) if environ is None else environ
    merged: dict[str, Any] = {}
    merged.update(
        _read_config_file(config_path or default_config_path(), required=bool(config_path))
    )
    merged.update(_from_env(environ))
    merged.update({k: v for k, v in flags.items() if v is not None})
    settings = _build(merged)
    if not settings.language:
        settings = dataclasses.replace(settings, language=system_language(environ))
    return settings.validate()


def system_language(environ: dict[str, str]) -> str:
    """The user's language as BCP-47 from the POSIX locale variables ("nb_NO.UTF-8" ->
    "nb-NO"); en-US when they name none (unset, C or POSIX)."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "").split(".")[0].split("@")[0].replace("_", "-")
        if value and value not in ("C", "POSIX") and BCP47.fullmatch(value):
            return value
    return DEFAULT_LANGUAGE


def _read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise UserError(f"Config file {path} does not exist.")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"Config file {path} is not valid TOML: {exc}") from None
    section = data.get("shelfsight", data)
    if "api_key" in section or "key" in section:
        raise UserError(
            f"Config file {path} holds an API key: remove it and set GEMINI_API_KEY instead."
        )
    return {k.replace("-", "_"): v for k, v in section.items()}


def _from_env(environ: dict[str, str]) -> dict[str, str]:
    names = {f.name for f in fields(Settings)} - {"extra"}
    return {
        name: environ[ENV_PREFIX + name.upper()]
        for name in names
        if environ.get(ENV_PREFIX + name.upper())
    }


def _build(values: dict[str, Any]) -> Settings:
    """Coerce strings from env and TOML into the field types, with one-line errors."""
    known = {f.name: f for f in fields(Settings) if f.name != "extra"}
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in known:
            extra[name] = raw
            continue
        kind = type(getattr(Settings(), name))
        try:
            if name == "prompt_file":
                kwargs[name] = Path(str(raw)).expanduser() if raw else None
            elif kind is bool and isinstance(raw, str):
                kwargs[name] = _parse_bool(name, raw)
            elif kind in (int, float) and not isinstance(raw, kind):
                kwargs[name] = kind(raw)
            else:
                kwargs[name] = raw
        except (TypeError, ValueError):
            raise UserError(f"Setting {name} = {raw!r} is not a valid {kind.__name__}.") from None
    return dataclasses.replace(Settings(), **kwargs, extra=extra)


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise UserError(f"Setting {name} = {raw!r} is not true or false.")


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
