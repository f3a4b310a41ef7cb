"""Ctrl-C and SIGTERM end a run within 2 s, cleanly, with the speaker file intact."""

from __future__ import annotations

import signal
import time
import wave
from pathlib import Path

import pytest

from shelfsight.standin import StandInThread
from tests.conftest import start_answered_run


@pytest.mark.parametrize(("sig", "expected_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_signal_ends_the_run_quickly_and_cleanly(
    standin: StandInThread, shelf_video: Path, tmp_path: Path, sig: int, expected_code: int
) -> None:
    out = tmp_path / "out.wav"
    proc = start_answered_run(
        standin, tmp_path, "--camera", str(shelf_video), "--speaker", str(out)
    )
    try:
        sent = time.monotonic()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == expected_code, stderr
    assert took < 2.0, f"took {took:.2f} s to stop"
    assert "Traceback" not in stderr
    with wave.open(str(out), "rb") as w:  # readable, and holds what played so far
        assert w.getframerate() == 24000 and w.getnframes() > 24000
