"""`shelfsight doctor` checks: the real client against the stand-in, real media files."""

from __future__ import annotations

import dataclasses
import importlib.abc
import io
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from shelfsight.doctor import run_doctor
from shelfsight.live.setup import Endpoint
from shelfsight.media.wav import write_wav
from shelfsight.settings import Settings
from shelfsight.standin import StandInThread, synth_speech_pcm16
from tests.conftest import TEST_KEY

CHECKS = ["API key", "endpoint", "camera", "microphone", "speaker", "speech"]


def doctor(
    settings: Settings, standin: StandInThread | None, key: str | None
) -> tuple[int, dict[str, str]]:
    """Run the doctor; returns its exit code and each check's line by check name."""
    out = io.StringIO()
    endpoint = Endpoint()
    if standin is not None:
        endpoint = Endpoint(standin.base_url, standin.server.client_ssl_context())
    environ = {} if key is None else {"GEMINI_API_KEY": key}
    code = run_doctor(settings, endpoint=endpoint, environ=environ, out=out, listen_s=0.4)
    lines = out.getvalue().splitlines()
    by_name = {name: next((x for x in lines if x[6:].startswith(name)), "") for name in CHECKS}
    assert len(lines) == len(CHECKS), lines
    return code, by_name


@pytest.fixture
def files(shelf_video: Path, tmp_path: Path) -> Settings:
    """A video file as camera, a WAV of speech as microphone, a WAV file as speaker."""
    mic = write_wav(tmp_path / "speech.wav", synth_speech_pcm16(1.0, 16000), 16000)
    speaker = tmp_path / "doctor-tone.wav"
    return dataclasses.replace(
        Settings(), camera=str(shelf_video), mic=str(mic), speaker=str(speaker)
    )


def test_doctor_passes_every_check_with_the_endpoint_and_files(
    standin: StandInThread, files: Settings
) -> None:
    code, lines = doctor(files, standin, TEST_KEY)

    assert code == 0, lines
    assert all(line.startswith("ok ") for line in lines.values()), lines
    assert TEST_KEY not in "".join(lines.values())
    assert "640x360" in lines["camera"]
    # A real session was opened with the run's model and closed; no audio went out.
    conn = standin.server.connections[-1]
    assert conn.setup is not None and conn.received() == []
    standin.wait_until(lambda: conn.close_code is not None)
    # The speaker file holds the tone: about 0.3 s of sound.
    with wave.open(files.speaker, "rb") as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert 0.2 * 24000 < np.count_nonzero(samples) < 0.4 * 24000


def test_doctor_with_a_wrong_key_fails_the_key_line_and_says_what_to_do(
    standin: StandInThread, files: Settings
) -> None:
    wrong = "wrong-key-0123456789abcdef"
    code, lines = doctor(files, standin, wrong)

    assert code != 0
    assert lines["API key"].startswith("FAIL") and "rejected" in lines["API key"]
    assert "GEMINI_API_KEY" in lines["API key"]
    assert wrong not in "".join(lines.values())
    assert lines["camera"].startswith("ok") and lines["speaker"].startswith("ok")


def test_doctor_without_a_key_says_how_to_get_one_and_skips_the_endpoint(
    files: Settings,
) -> None:
    code, lines = doctor(files, None, None)

    assert code != 0
    assert lines["API key"].startswith("FAIL") and "GEMINI_API_KEY" in lines["API key"]
    assert lines["endpoint"].startswith("skip")


def test_doctor_with_a_silent_microphone_says_it_hears_nothing(
    standin: StandInThread, files: Settings, tmp_path: Path
) -> None:
    silent = write_wav(tmp_path / "silent.wav", bytes(16000 * 2), 16000)
    code, lines = doctor(dataclasses.replace(files, mic=str(silent)), standin, TEST_KEY)

    assert code != 0
    assert lines["microphone"].startswith("FAIL") and "silence" in lines["microphone"]


class _NoPortAudio(importlib.abc.MetaPathFinder):
    """Makes `import sounddevice` fail as it does on a machine without the PortAudio library."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


def test_doctor_without_portaudio_says_so_on_the_device_lines(
    standin: StandInThread, files: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    devices = dataclasses.replace(files, mic="default", speaker="default")

    code, lines = doctor(devices, standin, TEST_KEY)

    assert code != 0
    for name in ("microphone", "speaker"):
        assert lines[name].startswith("FAIL") and "PortAudio" in lines[name], lines[name]
    assert lines["camera"].startswith("ok") and lines["endpoint"].startswith("ok")
