"""Ctrl-C and SIGTERM end a run within 2 s, cleanly, with the speaker file intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from shelfsight.audio import load_mic_pcm, write_wav
from shelfsight.standin import StandInThread
from tests.conftest import ASSETS, standin_env


@pytest.mark.parametrize(("sig", "expected_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_signal_ends_the_run_quickly_and_cleanly(
    standin: StandInThread, shelf_video: Path, tmp_path: Path, sig: int, expected_code: int
) -> None:
    mic = tmp_path / "long.wav"
    write_wav(mic, load_mic_pcm(ASSETS / "question.wav") + bytes(16000 * 2 * 30))
    out = tmp_path / "out.wav"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shelfsight",
            "run",
            "--camera",
            str(shelf_video),
            "--mic",
            str(mic),
            "--speaker",
            str(out),
        ],
        env={**os.environ, **standin_env(standin)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not standin.server.turns_completed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert standin.server.turns_completed, "the question was never answered"
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
