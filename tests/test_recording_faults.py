"""A recording that cannot be written ends the recording, never the session.

A real full filesystem (a small tmpfs, where this machine lets root mount one) for the whole
CLI, and the same failure injected under a `Recorder` for machines where it cannot be mounted.
"""

from __future__ import annotations

import errno
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shelfsight.session.recording import Recorder
from shelfsight.standin import StandInThread
from tests.conftest import ASSETS, run_cli, standin_env


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 160 KB filesystem: room for the start of a recording, not for its frames."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the injected test covers it")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_stops_the_recording_in_one_line_and_the_session_goes_on(
    standin: StandInThread, small_disk: Path, shelf_video: Path, tmp_path: Path
) -> None:
    folder = small_disk / "session"
    args = ["run", "--camera", str(shelf_video), "--fps", "3", "--idle-fps", "0"]
    args += ["--mic", str(ASSETS / "question.wav"), "--speaker", str(tmp_path / "out.wav")]
    result = run_cli(*args, "--plain", "--record", str(folder), env=standin_env(standin))
    out = result.stdout + result.stderr
    assert result.code == 0, out
    assert "Traceback" not in out
    stopped = [line for line in out.splitlines() if "recording stopped at" in line]
    assert len(stopped) == 1 and "No space left on device" in stopped[0], out
    assert standin.server.turns_completed == 1, "the question was still answered"
    assert (tmp_path / "out.wav").stat().st_size > 48_000, "and the answer played"
    manifest = json.loads((folder / "manifest.json").read_text())  # finalised in place
    assert manifest["recording_error"] == "No space left on device"
    assert manifest["connections"] == 1 and "ended_at" in manifest
    assert f"Recorded into {folder}" in out


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_recording_that_cannot_write_stops_once_and_stops_queueing(tmp_path: Path) -> None:
    told: list[str] = []
    stopped = threading.Event()

    def on_stop(line: str) -> None:
        told.append(line)
        stopped.set()

    recorder = Recorder(tmp_path / "rec", {"model": "m"}, on_stop)
    recorder._events = _FullDisk()  # type: ignore[assignment]  # the disk fills up now
    recorder.event("typed_text", text="where is the bread?")
    assert stopped.wait(5)
    for _ in range(2000):  # 40 s of mic audio and events after the failure
        recorder.mic(bytes(640))
        recorder.event("turn_latency", latency_s=0.5)
    assert recorder._jobs.qsize() == 0 and recorder._pending_bytes == 0, "memory stays flat"
    recorder.close(connections=1)
    assert len(told) == 1 and "No space left on device" in told[0]
    assert str(tmp_path / "rec") in told[0] and "the session goes on" in told[0]
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    assert manifest["recording_error"] == "No space left on device"
    assert manifest["connections"] == 1


def test_a_run_that_fails_to_start_says_nothing_about_a_recording(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    camera = str(tmp_path / "missing.mp4")
    result = run_cli(
        "run", "--camera", camera, "--record", str(folder), env={"GEMINI_API_KEY": "x"}
    )
    assert "Video file not found" in result.stderr
    assert result.code == 2
    assert "Recorded into" not in result.stdout + result.stderr
    assert not (folder / "events.jsonl").exists()
