"""Bad input gets one clear line on stderr and exit 2, never a traceback or the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfsight.standin import StandInThread
from tests.conftest import ASSETS, TEST_KEY, assert_one_line_error, run_cli, standin_env

QUESTION = str(ASSETS / "question.wav")


def test_no_api_key_says_how_to_get_one(tmp_path: Path) -> None:
    result = run_cli(
        "run", "--camera", "none", "--mic", QUESTION, "--speaker", "o.wav", cwd=tmp_path
    )
    assert_one_line_error(result, "GEMINI_API_KEY", "aistudio")


def test_key_from_a_dotenv_file_is_used(standin: StandInThread, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"GEMINI_API_KEY={TEST_KEY}\n")
    env = standin_env(standin)
    del env["GEMINI_API_KEY"]
    result = run_cli(
        "run", "--camera", "none", "--mic", QUESTION, "--speaker", "o.wav", env=env, cwd=tmp_path
    )
    assert result.code == 0, result.stderr
    assert standin.server.connections[-1].api_key_ok


def test_rejected_key_is_reported_without_echoing_it(standin: StandInThread) -> None:
    wrong = "AIzaWRONG-key-that-must-never-be-printed"
    result = run_cli(
        "run",
        "--camera",
        "none",
        "--mic",
        QUESTION,
        "--speaker",
        "o.wav",
        env=standin_env(standin, key=wrong),
    )
    assert_one_line_error(result, "key was rejected")
    assert wrong not in result.stdout + result.stderr


def test_unknown_model_is_named_in_the_error(standin: StandInThread) -> None:
    result = run_cli(
        "run",
        "--camera",
        "none",
        "--mic",
        QUESTION,
        "--speaker",
        "o.wav",
        "--model",
        "gemini-0.1-nonexistent",
        env=standin_env(standin),
    )
    assert_one_line_error(result, "gemini-0.1-nonexistent", "not available", "--model")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--camera", "missing.mp4"], ["video file not found", "missing.mp4"]),
        (["--camera", "Logitech Brio"], ["no camera matches", "no cameras were found"]),
        (["--camera", "rtsp://127.0.0.1:1/live"], ["cannot open camera stream"]),
        (["--camera", "7"], ["camera"]),
        (["--mic", "missing.wav"], ["wav file not found"]),
        (["--mic", "README.md"], ["not a wav file"]),
        (["--mic", "Blue Yeti"], ["Blue Yeti|portaudio|no microphones found"]),
        (["--speaker", "USB headset"], ["USB headset|portaudio|no speakers found"]),
        (["--speaker", "no/such/dir/out.wav"], ["folder does not exist"]),
        (["--fps", "0"], ["--fps"]),
        (["--mode", "chatty"], ["mode"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v[0].startswith("--") else None,
)
def test_bad_device_or_option_is_one_clear_line(
    standin: StandInThread, tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    (tmp_path / "README.md").write_text("not audio")
    defaults = {"--camera": "none", "--mic": QUESTION, "--speaker": "out.wav"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        defaults[flag] = value
    flat = [item for pair in defaults.items() for item in pair]
    result = run_cli("run", *flat, env=standin_env(standin), cwd=tmp_path, timeout_s=30)
    assert_one_line_error(result, *fragments)
    assert not standin.server.connections, "a device error must stop the run before connecting"


def test_unreachable_endpoint_gives_up_with_a_clear_line(tmp_path: Path) -> None:
    env = {
        "GEMINI_API_KEY": TEST_KEY,
        "GOOGLE_GEMINI_BASE_URL": "https://127.0.0.1:9",
        "SHELFSIGHT_CONNECT_TIMEOUT_S": "2",
    }
    result = run_cli(
        "run", "--camera", "none", "--mic", QUESTION, "--speaker", "o.wav", env=env, cwd=tmp_path
    )
    assert result.code == 2
    assert "cannot reach the gemini live api (gave up after" in result.stderr.lower()
