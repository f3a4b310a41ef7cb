"""What a newcomer meets first: trying it without a key, help texts, and mistakes in input."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
import typer

from shelfsight.cli import app
from tests.conftest import ASSETS, assert_one_line_error, run_cli

QUESTION = str(ASSETS / "question.wav")


def wav_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def test_run_offline_answers_a_spoken_question_without_a_key(
    shelf_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "answer.wav"
    result = run_cli(
        "run", "--offline", "--camera", str(shelf_video), "--mic", QUESTION, "--speaker", str(out)
    )
    assert result.code == 0, result.stderr
    canned = wav_pcm(ASSETS / "answer.wav")
    played = wav_pcm(out)
    assert played.find(canned) > 0, "the canned answer is missing from the speaker file"
    assert "offline" in result.stdout.lower() and "canned" in result.stdout.lower()
    assert "green bag with a yellow label" in result.stdout


def run_help_records() -> list[tuple[str, str, str, str]]:
    """(option as typed, its help text, its metavar, its setting) for every option of `run`."""
    command = typer.main.get_command(app)
    run = command.commands["run"]  # type: ignore[attr-defined]
    ctx = run.make_context("run", [], resilient_parsing=True)
    out = []
    for param in run.params:
        record = param.get_help_record(ctx)
        if record is None or param.name == "help":
            continue
        out.append((param.opts[0], record[1], record[0], str(param.name)))
    return out


@pytest.mark.parametrize(
    ("option", "help_text", "shown", "setting"),
    run_help_records(),
    ids=lambda v: v if v[:2] == "--" else "",
)
def test_run_help_names_each_options_env_var_default_and_choices(
    option: str, help_text: str, shown: str, setting: str
) -> None:
    name = setting.upper()
    assert f"[env var: SHELFSIGHT_{name}" in help_text, help_text
    assert "default: " in help_text or option in ("--record",), help_text
    choices = {"--mode": "handsfree|ptt", "--start-sensitivity": "low|high"}
    choices["--end-sensitivity"] = "low|high"
    if option in choices:
        assert choices[option] in shown, shown  # Click writes [a|b], Typer 0.2x <a|b>


def test_help_shows_the_real_config_path() -> None:
    result = run_cli("run", "--help")
    assert result.code == 0
    assert (
        str(Path(typer.get_app_dir("shelfsight")) / "config.toml")
        in " ".join(result.stdout.split())
        or "config.toml" in result.stdout
    )


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--prompt-file", "missing.md"], ["--prompt-file", "missing.md", "does not exist"]),
        (["--speaker", "folder"], ["--speaker folder is a folder", "wav file"]),
        (["--mic", "folder"], ["--mic folder is a folder", "wav file"]),
        (["--silence-ms", "0"], ["--silence-ms", "100 to 5000"]),
        (["--idle-fps", "-1"], ["--idle-fps", "out of range"]),
        (["--jpeg-quality", "101"], ["--jpeg-quality", "10 to 100"]),
        (["--mode", "chatty"], ["--mode", "handsfree", "ptt"]),
        (["--end-sensitivity", "medium"], ["--end-sensitivity", "low", "high"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v[0].startswith("--") else None,
)
def test_a_mistake_in_a_run_option_is_one_line_naming_the_option(
    tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    (tmp_path / "folder").mkdir()
    base = ["run", "--offline", "--camera", "none", "--mic", QUESTION, "--speaker", "o.wav"]
    result = run_cli(*base, *args, cwd=tmp_path, timeout_s=30)
    assert_one_line_error(result, *fragments)


def test_a_missing_config_file_from_the_environment_is_an_error(tmp_path: Path) -> None:
    env = {"SHELFSIGHT_CONFIG": str(tmp_path / "nope.toml")}
    result = run_cli("run", "--offline", "--mic", QUESTION, env=env, cwd=tmp_path)
    assert_one_line_error(result, "nope.toml", "SHELFSIGHT_CONFIG", "does not exist")


def test_a_misspelt_config_key_is_named_with_the_closest_valid_one(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('camra = "iphone"\n')
    result = run_cli("run", "--offline", env={"SHELFSIGHT_CONFIG": str(config)}, cwd=tmp_path)
    assert_one_line_error(result, "'camra'", "did you mean 'camera'")


def test_a_bad_value_in_the_config_file_names_the_config_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("silence_ms = 0\n")
    result = run_cli("run", "--offline", env={"SHELFSIGHT_CONFIG": str(config)}, cwd=tmp_path)
    assert_one_line_error(result, "silence_ms in", "config.toml", "100 to 5000")
    assert "--silence-ms" not in result.stderr


def test_a_misspelt_environment_variable_is_warned_about_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    env = {"SHELFSIGHT_IDLE_FSP": "0"}
    result = run_cli(
        "run",
        "--offline",
        "--camera",
        "none",
        "--mic",
        QUESTION,
        "--speaker",
        "o.wav",
        "--plain",
        env=env,
        cwd=tmp_path,
    )
    assert result.code == 0, result.stderr
    assert "SHELFSIGHT_IDLE_FSP" in result.stderr and "SHELFSIGHT_IDLE_FPS" in result.stderr


def test_version_flag_prints_the_version() -> None:
    from shelfsight import __version__

    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"shelfsight {__version__}"


def test_no_network_is_said_in_words_not_as_a_gaierror() -> None:
    import socket

    from shelfsight.live.errors import classify

    error = socket.gaierror(-3, "Temporary failure in name resolution")
    retry = classify(error, model="m", resuming=False)
    assert retry.reason == "no network? (name lookup failed)"


def test_a_run_that_never_connects_writes_no_speaker_file_and_says_so(tmp_path: Path) -> None:
    env = {
        "GEMINI_API_KEY": "test-key-not-secret-0123456789",
        "GOOGLE_GEMINI_BASE_URL": "https://127.0.0.1:9",
        "SHELFSIGHT_CONNECT_TIMEOUT_S": "1",
    }
    result = run_cli(
        "run", "--camera", "none", "--mic", QUESTION, "--speaker", "o.wav", env=env, cwd=tmp_path
    )  # cues and spoken status played meanwhile: not an answer, not kept
    assert_one_line_error(
        result, "cannot reach the gemini live api (gave up after", "o.wav was not written"
    )
    written = [p.name for p in tmp_path.iterdir() if p.name.endswith((".wav", ".part"))]
    assert written == [], "no speaker file, no temporary file"
