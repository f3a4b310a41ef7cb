"""Each setting's option is built from the settings' one table: its range, its choices and its
environment variable are written once, and what the user types reaches the settings."""

from __future__ import annotations

import typer

from shelfsight.cli import app, setting_flags
from shelfsight.settings import CHOICES, HELP, RANGES, setting_names


def test_every_setting_option_says_its_range_choices_and_env_var() -> None:
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    seen = set()
    for name in ("run", "ask", "doctor", "eval"):
        for param in command.commands[name].params:
            if param.name not in setting_names():
                continue
            seen.add(param.name)
            text = getattr(param, "help", "") or ""
            assert text.startswith(HELP[param.name].split(",")[0]), (name, param.name)
            assert f"env var: SHELFSIGHT_{param.name.upper()}" in text, (name, text)
            if param.name in RANGES:
                low, high, _ = RANGES[param.name]
                assert f"{low:g} to {high:g}" in text, (name, text)
            if param.name in CHOICES:
                assert param.metavar == "[" + "|".join(CHOICES[param.name]) + "]"
    assert seen == set(HELP), "every setting with words has an option, and no option lacks them"


def test_what_is_typed_reaches_the_settings_as_load_settings_takes_it() -> None:
    given = {"mode": "PTT", "vocabulary": ["Oatly", "Barilla"], "fps": 2.0, "question": "x"}
    assert setting_flags(given, mic="none") == {
        "mode": "ptt",
        "vocabulary": "Oatly,Barilla",
        "fps": 2.0,
        "mic": "none",
    }
