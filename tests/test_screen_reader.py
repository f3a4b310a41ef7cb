"""What a screen-reader user meets at the terminal: the typing echoed, the keys named, banners
that read whole, the answer's stop said, and the ways a session ends.

The real CLI runs as a child process on a pseudo-terminal (tests/support/terminal.py), as a
user's shell runs it, against the offline stand-in or the test stand-in; what the terminal
shows is rebuilt from the bytes written to it (backspaces move the cursor back).
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from shelfsight.app import key_hints
from shelfsight.cli import app
from shelfsight.media.wav import write_wav
from shelfsight.playback import NEXT_STEP
from shelfsight.settings import load_settings
from shelfsight.standin import StandIn, StandInConfig, StandInThread
from shelfsight.ui.controls import (
    ControlQueue,
    KeyParser,
    Quit,
    TerminalKeys,
    TypedQuestion,
    Typing,
)
from shelfsight.ui.view import PlainView, print_paragraph
from tests.conftest import TEST_KEY, run_cli, standin_env
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


@pytest.mark.parametrize("view", ["--plain", "--screen-reader"])
def test_a_user_types_a_question_corrects_it_and_stops_the_answer(
    tmp_path: Path, view: str
) -> None:
    """One session as a screen-reader user has it, in both line-by-line views: the banner
    (wrapped to the width, or a sentence a line), the language and the keys once; every key
    echoed as typed, backspace erasing it; a line printed while typing goes above the question
    being typed; Esc cancels the question, then stops the answer, and says so."""
    sr = view == "--screen-reader"
    term = offline_run(tmp_path, view, "--language", "en-GB")
    try:
        term.wait_for("Ready:" if sr else "[listening]")
        term.press("where is teh")
        lines = wait_until(term, lambda lines: lines[-1] == "Ask: where is teh")
        assert lines[-1] == "Ask: where is teh", "each key shows as it is typed, before Enter"
        term.press("\x7f\x7f")
        lines = wait_until(term, lambda lines: lines[-1] == "Ask: where is t")
        assert lines[-1] == "Ask: where is t", "backspace erases on screen"
        assert term.screen.endswith(b"\x08 \x08\x08 \x08")
        term.press("he rice?\r" + "and the bread")  # the next question while the answer comes
        answer = "Third shelf from the top"
        lines = wait_until(
            term,
            lambda lines: (
                any(answer in line for line in lines) and lines[-1] == "Ask: and the bread"
            ),
        )
        asked = "You asked: where is the rice?" if sr else "You (typed): where is the rice?"
        assert asked in lines, lines
        assert lines.index("Ask: where is the rice?") < lines.index(asked), "Enter ends the line"
        assert lines[-1] == "Ask: and the bread", "lines printed meanwhile go above it"
        assert not any("and the bread" in line and answer in line for line in lines)
        term.press("\x1b")  # Esc while typing: the question is dropped
        lines = wait_until(term, lambda lines: "Ask: and the bread (cancelled)" in lines)
        assert "Ask: and the bread (cancelled)" in lines
        term.press("\x1b")  # Esc again: the answer, still playing, stops
        stopped = "Answer stopped." if sr else "· answer stopped"
        lines = wait_until(term, lambda lines: stopped in lines)
        assert stopped in lines, "Esc must say on screen that the answer stopped"
        term.press("q")
        assert term.close() == 0
    finally:
        term.proc.kill()
    lines = shown(term.screen.decode())
    assert lines.count("Language: English (en-GB)") == 1, lines
    keys = [line for line in lines if line.startswith("Keys:")]
    assert keys == ["Keys: type + Enter: ask in writing; Esc: stop answer; q: quit."], keys
    if sr:  # a sentence a line, never wrapped by shelfsight; nothing redrawn but the typing
        assert lines[:2] == [
            "Offline: no key, nothing leaves this computer.",
            "A built-in stand-in answers every question with the same canned answer; it does "
            "not see or hear anything.",
        ]
        assert b"\x1b" not in term.screen
    else:  # at word boundaries, within the width
        start = lines.index("Language: English (en-GB)")
        assert " ".join(" ".join(lines[:start]).split()) == OFFLINE, lines[:start]
        assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
        assert all(w in OFFLINE.split() for line in lines[:start] for w in line.split())
    assert "answered in" not in term.screen.decode(), "the offline stand-in's latency is no news"


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


def test_the_key_parser_erases_a_word_or_the_line_as_a_shell_does() -> None:
    parser = KeyParser()
    assert parser.feed("where is the  \x17", 0.0)[-1] == Typing("where is ")
    assert parser.feed("\x15", 0.0)[-1] == Typing("")
    assert parser.feed("rice\r", 0.0)[-2:] == [TypedQuestion("rice"), Typing(None)]


# ---- ending a session by ending the input -------------------------------------------------------


def test_ctrl_d_on_an_empty_line_ends_the_session_but_not_in_the_middle_of_a_question(
    tmp_path: Path,
) -> None:
    term = offline_run(tmp_path, "--plain")
    try:
        term.wait_for("[listening]")
        term.press("a\x04b")  # Ctrl-D inside a question does nothing, as in a shell
        lines = wait_until(term, lambda lines: lines[-1] == "Ask: ab")
        assert lines[-1] == "Ask: ab", "the session still reads keys"
        term.press("\x7f\x7f\x04")  # emptied: now Ctrl-D ends the session
        assert term.close() == 0
    finally:
        term.proc.kill()
    lines = shown(term.screen.decode())
    assert lines[lines.index("Ask:") + 1].startswith("· session:"), "the prompt closed first"


@pytest.mark.anyio
async def test_closing_the_terminal_window_ends_the_session() -> None:
    """The terminal going away reads as end of file (EIO on Linux): that is `q`, and the
    reader stops (it used to wake on the dead terminal forever)."""
    master, slave = pty.openpty()
    controls = ControlQueue()
    keys = TerminalKeys(controls, fd=slave)
    try:
        os.write(master, b"ric")
        got = [await asyncio.wait_for(controls.queue.get(), 10) for _ in range(3)]
        assert got[-1] == Typing("ric")
        os.close(master)
        got.append(await asyncio.wait_for(controls.queue.get(), 10))
        got.append(await asyncio.wait_for(controls.queue.get(), 10))
        assert got[-2:] == [Typing(None), Quit()], got  # the half-typed question is dropped
    finally:
        keys.close()
        os.close(slave)


def test_a_script_that_pipes_questions_ends_the_session_after_the_answer_though_the_mic_is_live(
    standin: StandInThread, tmp_path: Path
) -> None:
    """The mic file is two minutes of silence, a stand-in for a live microphone: the session
    ends when the piped question is answered, not when the mic stops (a hang would time out
    the run). Standard input that carried no question at all (/dev/null) ends nothing: every
    other run of the suite (run_cli) has its mic drive the session that way."""
    mic = write_wav(tmp_path / "live.wav", bytes(32000 * 120))
    proc = subprocess.run(
        [sys.executable, "-m", "shelfsight", "run", "--camera", "none", "--mic", str(mic),
         "--speaker", "out.wav"],
        input="where is the oat milk?\n", capture_output=True, text=True, timeout=60,
        env={**os.environ, **standin_env(standin)}, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "You (typed): where is the oat milk?" in out
    assert "input ended; waiting for the answer to finish" in out
    assert out.index("shelfsight: Third shelf") < out.index("· session:")
    sent_s = sum(len(c.audio_bytes()) for c in standin.server.connections) / 32000
    assert sent_s < 60, f"{sent_s:.0f} s of the mic went out: the end of input was ignored"


# ---- what `run` says about itself ---------------------------------------------------------------


def test_an_answer_from_the_service_says_how_long_it_took_and_in_which_language(
    tmp_path: Path,
) -> None:
    config = StandInConfig(api_keys=frozenset({TEST_KEY}), think_s=0.3)
    with StandIn.start_in_thread(config) as standin:
        proc = subprocess.run(
            [sys.executable, "-m", "shelfsight", "run", "--camera", "none", "--mic", "none",
             "--speaker", "out.wav", "--language", "de-DE"],
            input="where is the oat milk?\n", capture_output=True, text=True, timeout=60,
            env={**os.environ, **standin_env(standin)}, cwd=tmp_path,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Sprache: Deutsch (de-DE)" in proc.stdout.splitlines(), "in the user's language"
    latency = re.search(r"\(Antwort nach (\d+,\d\d) s\)", proc.stdout)
    assert latency and float(latency[1].replace(",", ".")) >= 0.3, proc.stdout
    assert "Tasten:" not in proc.stdout, "no keys to press when questions come from a pipe"


def test_an_answer_that_began_before_the_question_ended_shows_no_latency() -> None:
    """0 s is what an answer gets that began before the user finished: the reply to something
    said earlier, not a wait anyone had. (The screen-reader view never shows latencies.)"""
    out = io.StringIO()
    view = PlainView(out)
    view.answer_said("Top shelf.")
    view.turn_done(0.0, interrupted=False)
    assert "Top shelf." in out.getvalue() and "answered in" not in out.getvalue()
    view.answer_said("Left end.")
    view.turn_done(0.42, interrupted=False)
    assert "Left end.  (answered in 0.42 s)" in out.getvalue()


def test_the_demos_last_words_wrap_at_word_boundaries_on_a_terminal() -> None:
    """Printed outside a session's view (after it), on a terminal 60 columns wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    try:
        with open(os.dup(slave), "w") as out:
            print_paragraph(NEXT_STEP, out)
        lines = shown(os.read(master, 65536).decode())[:-1]
    finally:
        os.close(master)
        os.close(slave)
    assert len(lines) > 1 and all(len(line) <= 60 for line in lines), lines
    assert " ".join(" ".join(lines).split()) == NEXT_STEP, "no word broken or lost"
    piped = io.StringIO()
    print_paragraph(NEXT_STEP, piped)
    assert piped.getvalue() == NEXT_STEP + "\n", "into a pipe: whole"


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


# ---- scripts/setup says what it is doing --------------------------------------------------------


STUB = "#!/bin/sh\n"


def fake_machine(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """A copy of scripts/setup in an empty project, and a PATH whose python, pip, ldconfig and
    apt-get only write down how they were called (so nothing is installed)."""
    project, bin_dir, log = tmp_path / "project", tmp_path / "bin", tmp_path / "calls.log"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup", project / "scripts" / "setup")
    bin_dir.mkdir()
    venv_python = (  # as pip, it talks unless told --quiet
        f'{STUB}echo "venv-python $*" >> {log}\n'
        'case "$*" in *--quiet*) ;; *) echo "Requirement already satisfied: pip";; esac\n'
    )
    stubs = {
        "python3.11": f'{STUB}echo "python $*" >> {log}\n'
        'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin"\n'
        f"cat > \"$3/bin/python\" <<'EOF'\n{venv_python}EOF\n"
        'chmod +x "$3/bin/python"; fi\n',
        "ldconfig": f"{STUB}echo libportaudio.so.2 libGL.so.1 libglib-2.0.so.0\n",
        "apt-get": f'{STUB}echo "apt-get $*" >> {log}\n',
    }
    for name in ("pulseaudio", "parec", "espeak-ng", "sox"):
        stubs[name] = STUB
    for name, text in stubs.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHON": "python3.11"}
    return project, env, log


def test_setup_says_what_it_is_doing_one_line_a_step_and_is_quiet_otherwise(
    tmp_path: Path,
) -> None:
    project, env, log = fake_machine(tmp_path)
    runs = [
        subprocess.run(
            [str(project / "scripts" / "setup")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        for _ in range(2)
    ]
    first, again = ([line for line in r.stdout.splitlines() if "apt-get" not in line] for r in runs)
    assert all(r.returncode == 0 for r in runs), runs
    assert first == [
        "setup: creating .venv with python3.11",
        "setup: installing the Python packages into .venv (pip; a minute on a first run)",
        "setup: done; the command is .venv/bin/shelfsight",
    ], first
    assert again == [
        "setup: checking the Python packages in .venv (pip)",
        "setup: done; the command is .venv/bin/shelfsight",
    ], again
    calls = log.read_text().splitlines()
    assert sum("-m venv" in call for call in calls) == 1, "run again, it keeps the .venv"
    assert all("--quiet" in call for call in calls if "pip" in call), calls
