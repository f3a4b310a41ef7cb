"""Sound through a real PulseAudio server, as on a Linux desktop: default devices, the answer
played whole, and not one libasound line on the terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shelfsight.media.wav import load_mic_pcm
from shelfsight.standin import ScriptedAnswer, StandIn, StandInConfig
from shelfsight.standin.audio import synth_speech_pcm16
from tests.conftest import ASSETS, TEST_KEY, standin_env
from tests.support.pulse import missing_tools, pulse_server

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or bool(missing_tools()),
    reason=f"PulseAudio cannot run here (missing: {', '.join(missing_tools()) or 'Linux'}); "
    "scripts/setup installs it on Debian/Ubuntu",
)


def _find(haystack: np.ndarray, needle: np.ndarray) -> tuple[int, float]:
    """(offset, correlation) of `needle` in `haystack`, by FFT cross-correlation."""
    n = 1 << (len(haystack) + len(needle)).bit_length()
    xc = np.fft.irfft(np.fft.rfft(haystack, n) * np.conj(np.fft.rfft(needle, n)), n)
    lag = int(np.argmax(xc[: len(haystack) - len(needle) + 1]))
    seg = haystack[lag : lag + len(needle)]
    corr = float(np.dot(seg, needle) / (np.linalg.norm(seg) * np.linalg.norm(needle) + 1e-12))
    return lag, corr


def test_the_answer_plays_whole_on_the_default_pulseaudio_devices(tmp_path: Path) -> None:
    answer = synth_speech_pcm16(2.0, 24000, level_dbfs=-18.0, f0_hz=180.0)
    config = StandInConfig(
        api_keys=frozenset({TEST_KEY}),
        answers=(ScriptedAnswer("where is the bread?", "Third shelf.", answer),),
    )
    with pulse_server() as pa, StandIn.start_in_thread(config) as standin:
        heard = pa.start_record("answer.monitor", 24000)
        env = {**os.environ, **standin_env(standin), **pa.env}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shelfsight",
                "run",
                "--camera",
                "none",
                "--mic",
                "default",
                "--speaker",
                "default",
                "--plain",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            while pa.source_outputs() < 2 and time.monotonic() < deadline:  # its mic is open
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            speak = subprocess.run(  # the user asks, into the default microphone
                [
                    "pacat",
                    "-p",
                    "-d",
                    "mic",
                    "--rate=16000",
                    "--channels=1",
                    "--format=s16le",
                    "--raw",
                ],
                input=bytes(16000) + load_mic_pcm(ASSETS / "question.wav") + bytes(32000),
                env={**os.environ, **pa.env},
                timeout=20,
                check=True,
            )
            assert speak.returncode == 0
            while not standin.server.turns_completed and time.monotonic() < deadline:
                time.sleep(0.05)
            if not standin.server.turns_completed:
                proc.send_signal(signal.SIGINT)
                raise AssertionError(f"never answered: {proc.communicate(timeout=10)}")
            want = np.frombuffer(answer, "<i2").astype(np.float32) / 32768
            while time.monotonic() < deadline:  # until the whole answer has come out
                got = np.frombuffer(bytes(heard.data[: len(heard.data) // 2 * 2]), "<i2")
                if np.count_nonzero(np.abs(got[-2400:]) > 30) == 0 and np.count_nonzero(
                    np.abs(got) > 300
                ) >= 0.9 * np.count_nonzero(np.abs(want * 32768) > 300):
                    break
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
        played = heard.stop()
    assert proc.returncode in (0, 130), err
    assert "ALSA lib" not in out + err, "libasound printed to the terminal"
    offset, corr = _find(played, want)
    assert corr > 0.98, f"the answer came out changed (correlation {corr:.3f})"
    segment = played[offset : offset + len(want)]
    block = 480  # 20 ms: a hole is a block gone silent where the answer has sound
    loud = np.abs(want[: len(segment) // block * block]).reshape(-1, block).max(axis=1) > 0.05
    got = np.abs(segment[: len(segment) // block * block]).reshape(-1, block).max(axis=1)
    inside = loud & (got < 0.005)
    holes = np.flatnonzero(inside[1:-1]) * 20 + 20  # the edge blocks only mark the alignment
    assert not holes.size, f"holes in the answer at {holes} ms; {err[-300:]}"
    assert " in answer playback" not in out + err
