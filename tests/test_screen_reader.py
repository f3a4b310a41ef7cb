"""What a screen-reader user meets at the terminal: the typing echoed, the keys named, banners
that read whole, the answer's stop said, and the ways a session ends.

The real CLI runs as a child process on a pseudo-terminal (tests/support/terminal.py), as a
user's shell runs it, against the offline stand-in or the test stand-in; what the terminal
shows is rebuilt from the bytes written to it (backspaces move the cursor back).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from shelfsight.app import key_hints
from shelfsight.cli import app
from shelfsight.settings import load_settings
from tests.conftest import run_cli
from tests.support.terminal import Terminal

ROOT = Path(__file__).resolve().parent.parent
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
OFFLINE = (
    "Offline: no key, nothing leaves this computer. A built-in stand-in answers every "
    "question with the same canned answer; it does not see or hear anything."
)


def shown(screen: str) -> list[str]:
    """The lines a terminal shows after `screen`: characters overwrite at the cursor, a
    backspace moves it back, colour and cursor codes are dropped."""
    lines: list[str] = []
    line: list[str] = []
    col = 0
    for ch in CSI.sub("", screen):
        if ch == "\n":
            lines.append("".join(line).rstrip())
            line, col = [], 0
        elif ch == "\r":
            col = 0
        elif ch == "\b":
            col = max(0, col - 1)
        else:
            line[col : col + 1] = [ch]
            col += 1
    lines.append("".join(line).rstrip())
    return lines


def wait_until(term: Terminal, done: object, timeout_s: float = 20.0) -> list[str]:
    """The shown lines once `done(lines)` holds (or the timeout passed: a guard, not a bound)."""
    deadline = time.monotonic() + timeout_s
    while not done(lines := shown(term.read(0.1))) and time.monotonic() < deadline:  # type: ignore[operator]
        pass
    return lines


def offline_run(tmp_path: Path, *flags: str, cols: int = 80) -> Terminal:
    """`shelfsight run --offline` on a terminal `cols` wide: no camera, no mic, a WAV speaker
    (played on a real-time clock, so an answer is still playing after its text is shown)."""
    args = ["run", "--offline", "--camera", "none", "--mic", "none"]
    return Terminal([*args, "--speaker", str(tmp_path / "out.wav"), *flags], {}, cols=cols)


# ---- typing a question, correcting it, stopping the answer --------------------------------------


def test_esc_in_the_live_view_says_the_answer_stopped(tmp_path: Path) -> None:
    term = offline_run(tmp_path)
    try:
        term.wait_for("listening")
        term.press("where is the rice?\r")
        term.wait_for("Third shelf")
        term.press("\x1b")
        assert "answer stopped" in term.wait_for("answer stopped")
        term.press("q")
        assert term.close() == 0
    finally:
        term.proc.kill()


# ---- what `run` says about itself ---------------------------------------------------------------


def test_run_help_names_every_key() -> None:
    result = run_cli("run", "--help")
    text = " ".join(result.stdout.split())
    keys = text[text.index("Keys:") : text.index("The API key")]
    settings = load_settings({"mode": "ptt", "camera": "auto"}, environ={})
    for hint in key_hints(settings, hold=False).split("  ·  "):
        key = hint.split(":")[0].split(" ")[0]
        assert key in keys, (key, keys)
    assert "Tab guides you to the item" in keys and "Ctrl-D" in keys


def test_a_mode_that_does_not_exist_is_one_line_naming_the_modes() -> None:
    result = run_cli("run", "--mode", "push")
    assert result.code == 2
    assert result.stderr == "shelfsight: --mode: 'push' is not valid: use one of handsfree, ptt.\n"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--start-sensitivity", "medium"], "--start-sensitivity: 'medium' is not valid: use one "
         "of low, high."),
        (["--media-resolution", "ultra"], "--media-resolution: 'ultra' is not valid: use one of "
         "low, medium, high."),
        (["--mode", "PTT", "--end-sensitivity", "LOW", "--media-resolution", "High",
          "--silence-ms", "1"], "--silence-ms: 1 is out of range: use 100 to 5000 ms."),
    ],
    ids=["sensitivity", "resolution", "any-case"],
)  # fmt: skip
def test_every_option_with_a_few_choices_says_them_the_same_way(
    args: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process, as `run` parses them: the same one line as every other setting, and the
    choices in any case (the last case fails on --silence-ms only)."""
    assert app(["run", *args], standalone_mode=False) == 2
    assert capsys.readouterr().err == f"shelfsight: {line}\n"
