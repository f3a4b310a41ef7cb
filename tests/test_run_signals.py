"""Ctrl-C and SIGTERM end a run within 2 s, cleanly, with the speaker file intact."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from shelfsight.standin import StandInThread
from tests.conftest import standin_env, start_answered_run


def stop_with(proc: subprocess.Popen[str], sig: int, expected_code: int) -> None:
    """Send `sig`; the run must end with `expected_code` within 2 s, without a traceback."""
    sent = time.monotonic()
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=15)
    took = time.monotonic() - sent
    assert proc.returncode == expected_code, stderr
    assert took < 2.0, f"took {took:.2f} s to stop"
    assert "Traceback" not in stderr


@pytest.mark.parametrize(("sig", "expected_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_signal_ends_the_run_quickly_and_cleanly(
    standin: StandInThread, shelf_video: Path, tmp_path: Path, sig: int, expected_code: int
) -> None:
    out = tmp_path / "out.wav"
    proc = start_answered_run(
        standin, tmp_path, "--camera", str(shelf_video), "--speaker", str(out)
    )
    try:
        stop_with(proc, sig, expected_code)
    finally:
        proc.kill()
    with wave.open(str(out), "rb") as w:  # readable, and holds what played so far
        assert w.getframerate() == 24000 and w.getnframes() > 24000


@pytest.mark.parametrize(("sig", "expected_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_signal_ends_the_run_while_a_camera_stream_never_answers(
    standin: StandInThread, tmp_path: Path, sig: int, expected_code: int
) -> None:
    """A stream that accepts the connection and never sends a byte: opening it blocks for
    seconds, and Ctrl-C or SIGTERM must still end the program at once."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shelfsight",
                "run",
                "--camera",
                f"http://127.0.0.1:{port}/video",
                "--mic",
                "none",
                "--speaker",
                str(tmp_path / "out.wav"),
            ],
            env={**os.environ, **standin_env(standin)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            listener.settimeout(20)
            conn, _ = listener.accept()  # the camera is opening now, and will hear nothing
            with conn:
                stop_with(proc, sig, expected_code)
        finally:
            proc.kill()
