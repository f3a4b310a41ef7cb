"""Recording a session, replaying it (offline and against the endpoint), and the demo."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import wave
from pathlib import Path

import pytest

from shelfsight.media.wav import load_mic_pcm
from shelfsight.session.recording import load_session
from shelfsight.standin import StandInThread
from tests.conftest import ASSETS, TEST_KEY, run_cli, standin_env, start_answered_run
from tests.support.terminal import Terminal

QUESTION = ASSETS / "question.wav"
DEMO = ASSETS / "demo-session"


def wav_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def frames_of(folder: Path) -> list[bytes]:
    session = load_session(folder)
    return [(folder / e["file"]).read_bytes() for e in session.of_type("frame")]


def record_one(standin: StandInThread, video: Path, folder: Path) -> None:
    result = run_cli(
        "run",
        "--camera",
        str(video),
        "--mic",
        str(QUESTION),
        "--speaker",
        "out.wav",
        "--record",
        str(folder),
        env=standin_env(standin),
    )
    assert result.code == 0, result.stderr


def test_a_recorded_session_holds_everything_and_never_the_key(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "rec"
    record_one(standin, shelf_video, folder)
    session = load_session(folder)
    conn = standin.server.connections[-1]
    # mic.wav is the mic as the link got it: what the endpoint received (the speech, with
    # what surrounds it) is in it, in order; answer.wav is exactly what the endpoint sent.
    mic, heard, at = wav_pcm(folder / "mic.wav"), conn.audio_bytes(), 0
    assert heard
    for i in range(0, len(heard), 640):
        at = mic.find(heard[i : i + 640], at)
        assert at >= 0, f"received audio at {i} is not the mic's, in order"
        at += 640
    assert wav_pcm(folder / "answer.wav") == standin.server.config.answers[0].answer_pcm24k
    assert frames_of(folder) == conn.frames()
    kinds = [e["type"] for e in session.events]
    for kind in (
        "session_start",
        "connected",
        "mic_start",
        "frame",
        "user_transcript",
        "answer_transcript",
        "answer_audio",
        "turn_complete",
        "turn_latency",
        "session_end",
    ):
        assert kind in kinds, kind
    assert session.manifest["model"] == "gemini-3.8-live"
    assert session.manifest["ended_at"]
    for path in folder.rglob("*"):
        if path.is_file():
            assert TEST_KEY.encode() not in path.read_bytes(), path


def test_offline_replay_sends_the_same_frames_and_audio_and_plays_the_recorded_answer(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    original = tmp_path / "rec"
    record_one(standin, shelf_video, original)
    again = tmp_path / "again"
    result = run_cli(
        "replay",
        str(original),
        "--offline",
        "--speaker",
        "replayed.wav",
        "--record",
        str(again),
    )
    assert result.code == 0, result.stderr
    assert frames_of(again) == frames_of(original)
    mic = wav_pcm(original / "mic.wav")
    assert wav_pcm(again / "mic.wav")[: len(mic)] == mic
    answer = wav_pcm(original / "answer.wav")
    assert answer in wav_pcm(tmp_path / "replayed.wav")
    question = standin.server.config.answers[0].question_text
    assert f"You: {question}" in result.stdout


def test_replay_against_the_endpoint_resends_frames_in_order_at_the_recorded_pace(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    original = tmp_path / "rec"
    record_one(standin, shelf_video, original)
    result = run_cli("replay", str(original), "--speaker", "r.wav", env=standin_env(standin))
    assert result.code == 0, result.stderr
    first, second = standin.server.connections[0], standin.server.connections[-1]
    assert second is not first
    assert second.frames() == first.frames()
    assert second.audio_bytes()[: len(first.audio_bytes())] == first.audio_bytes()
    t_first = [e.t_monotonic for e in first.received("video")]
    t_second = [e.t_monotonic for e in second.received("video")]
    for a, b in zip(
        [t - t_first[0] for t in t_first], [t - t_second[0] for t in t_second], strict=True
    ):
        assert abs(a - b) < 0.25


def test_a_recording_cut_by_sigkill_is_still_readable(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "killed"
    proc = start_answered_run(
        standin,
        tmp_path,
        "--camera",
        str(shelf_video),
        "--speaker",
        "o.wav",
        "--record",
        str(folder),
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    session = load_session(folder)
    assert "ended_at" not in session.manifest  # it really was cut short
    assert any(e["type"] == "turn_complete" for e in session.events)
    assert len(wav_pcm(folder / "mic.wav")) > len(load_mic_pcm(QUESTION))
    assert wav_pcm(folder / "answer.wav") == standin.server.config.answers[0].answer_pcm24k
    for event in session.of_type("frame")[:-1]:
        assert (folder / event["file"]).stat().st_size == event["bytes"]
    listed = run_cli("sessions", str(tmp_path))
    assert listed.code == 0 and "killed" in listed.stdout and "cut short" in listed.stdout


def test_demo_works_without_camera_mic_speaker_or_key(tmp_path: Path) -> None:
    result = run_cli("demo", "--plain", cwd=tmp_path)
    assert result.code == 0, result.stderr
    recorded = wav_pcm(DEMO / "answer.wav")
    written = tmp_path / "cache" / "shelfsight" / "demo-answer.wav"  # XDG_CACHE_HOME
    assert written.exists(), result.stdout
    assert recorded in wav_pcm(written)
    assert not list(tmp_path.glob("*.wav")), "the demo left a file in the working folder"
    assert "Third shelf from the top" in result.stdout
    assert str(written) in result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert "aistudio.google.com/apikey" in last and "shelfsight run --offline" in last


def test_sessions_lists_date_duration_questions_and_answers(tmp_path: Path) -> None:
    """Into a pipe: plain lines, the folder alone on its line, then its labelled values."""
    result = run_cli("sessions", str(ASSETS))
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    details = lines[lines.index(str(ASSETS / "demo-session")) + 1]
    assert "questions 1, answers 1" in details, details  # one question, one answer
    assert details.startswith("  started ") and details.endswith("status complete"), details


def test_sessions_given_one_recording_lists_it_with_a_path_that_replays_it(
    tmp_path: Path,
) -> None:
    result = run_cli("sessions", str(DEMO))
    assert result.code == 0, result.stderr
    pasted = result.stdout.splitlines()[1]
    assert Path(pasted) == DEMO


@pytest.mark.parametrize(("cols", "table"), [(200, True), (80, False)])
def test_sessions_is_a_table_on_a_wide_terminal_and_plain_lines_on_a_narrow_one(
    cols: int, table: bool
) -> None:
    """80 columns would fold every cell into one-word lines: plain lines instead, wrapped
    at word boundaries, the folder whole (it is pasted into `shelfsight replay`)."""
    # COLUMNS as the shell keeps it (rich reads it before the terminal's own size).
    term = Terminal(["sessions", str(DEMO)], env={"COLUMNS": str(cols)}, cols=cols)
    term.wait_for("complete", timeout_s=20)
    assert term.close() == 0  # then all it printed has been read
    screen = term.screen.decode(errors="replace")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", screen.replace("\r", ""))  # colours off
    lines = [line.rstrip() for line in shown.splitlines() if line.strip()]
    assert all(len(line) <= cols for line in lines), lines
    if table:
        header = next(line for line in lines if "folder" in line)
        assert all(cell.strip() for cell in header.split("┃")[1:-1]), header
        row = next(line for line in lines if line.startswith("│"))
        assert Path(row.split("│")[1].strip()) == DEMO
    else:
        assert not any("│" in line or "┃" in line for line in lines), lines
        assert str(DEMO) in lines and any("questions 1, answers 1" in line for line in lines)
