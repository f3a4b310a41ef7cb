"""A whole session run without looking at the screen: what is heard from the speaker, and what
a screen reader reads.

The real CLI runs in a child process against the stand-in (real SDK, real TLS), with an MJPEG
camera that drops out, a connection that fails for several seconds, a slow model, and a mic
that goes digitally silent. The speaker WAV is then listened to: every cue the session
recorded (events.jsonl `cue`) is found in it, by cross-correlation, at the moment recorded;
spoken status sentences are found the same way, rendered by the same speech engine.
"""

from __future__ import annotations

import json
import re
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shelfsight.media.earcons import Cue, EarconBank
from shelfsight.media.tts import StatusVoice, find_engine
from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.session.status import Spoken, spoken
from shelfsight.settings import DEFAULT_MODEL
from shelfsight.standin import ConnectionFaults, StandIn, StandInConfig
from tests.conftest import ASSETS, TEST_KEY, run_cli, standin_env
from tests.support.listen import find_sound, heard_cues
from tests.test_reconnect import MjpegServer

RATE_HZ = 16_000
ENGINE = find_engine()
needs_speech = pytest.mark.skipif(
    ENGINE is None, reason="no speech engine (scripts/setup installs espeak-ng)"
)


def speaker_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def cue_events(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] in ("cue", "camera", "connected")]


def session_mic(path: Path) -> Path:
    """Two questions, the second at 28 s, a -60 dBFS noise floor, then 5 s of a dead mic."""
    question = np.frombuffer(load_mic_pcm(ASSETS / "question.wav"), "<i2").astype(np.int32)
    signal = np.zeros(int(43 * RATE_HZ), np.int32)
    signal += np.random.default_rng(3).normal(0, 30, len(signal)).astype(np.int32)
    for start_s in (0.5, 28.0):
        at = int(start_s * RATE_HZ)
        signal[at : at + len(question)] += question
    signal[int(37 * RATE_HZ) : int(42 * RATE_HZ)] = 0  # muted: digital silence
    write_wav(path, np.clip(signal, -32768, 32767).astype("<i2").tobytes(), RATE_HZ)
    return path


@needs_speech
def test_a_whole_session_can_be_followed_by_ear_and_by_screen_reader(tmp_path: Path) -> None:
    # A server error at 18 s, then four refused reconnects: 3.9 to 7.8 s without a connection.
    refused = ConnectionFaults(refuse_http_status=503)
    faults = (ConnectionFaults(close_after_s=18.0), *[refused] * 4)
    config = StandInConfig(
        api_keys=frozenset({TEST_KEY}),
        models=frozenset({DEFAULT_MODEL}),
        connection_faults=faults,
        think_s=3.6,
    )
    camera = MjpegServer()
    mic_path = session_mic(tmp_path / "mic.wav")
    mic = load_mic_pcm(mic_path)
    out, rec = tmp_path / "speaker.wav", tmp_path / "rec"
    try:
        with StandIn.start_in_thread(config) as standin:

            def drop_camera() -> None:  # once the first answer has played, for 5 s
                deadline = time.monotonic() + 30
                while not standin.server.turns_completed and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(1.5)
                camera.up = False
                time.sleep(5.0)
                camera.up = True

            threading.Thread(target=drop_camera, daemon=True).start()
            result = run_cli(
                "run", "--camera", camera.url, "--mic", str(mic_path),
                "--speaker", str(out), "--record", str(rec), "--screen-reader",
                env={**standin_env(standin), "SHELFSIGHT_SILENT_MIC_S": "4"}, timeout_s=90,
            )  # fmt: skip
            received = b"".join(c.audio_bytes() for c in standin.server.connections)
    finally:
        camera.close()
    assert result.code == 0, result.stdout + result.stderr
    played, events = speaker_pcm(out), cue_events(rec)
    bank = EarconBank()
    heard = heard_cues(played, bank)
    recorded = [e for e in events if e["type"] == "cue" and e["cue"] != "status"]
    # Every cue recorded is heard, in order, each at the moment recorded (one offset for all:
    # the speaker file starts a moment after the recording does).
    assert [c for _, c in heard] == [e["cue"] for e in recorded], (heard, recorded)
    offsets = [t - e["t"] for (t, _), e in zip(heard, recorded, strict=True)]
    assert max(offsets) - min(offsets) < 0.15, offsets
    names = [e["cue"] for e in recorded]
    for cue in (Cue.READY, Cue.HEARD, Cue.THINKING, Cue.CAMERA_LOST, Cue.CAMERA_BACK):
        assert cue in names, names
    assert names.index(Cue.RECONNECTING) < names.index(Cue.BACK)
    # Each cue follows what it is about.
    camera_at = [e["t"] for e in events if e["type"] == "camera"]
    lost = next(e["t"] for e in recorded if e["cue"] == Cue.CAMERA_LOST)
    assert 0 <= lost - camera_at[0] < 1.0
    # Spoken status: said for what lasted or needed the user, heard in the speaker file.
    voice = StatusVoice(ENGINE)  # type: ignore[arg-type]
    said = [e for e in events if e["type"] == "cue" and e["cue"] == "status"]
    expected = {Spoken.CAMERA_LOST, Spoken.CAMERA_BACK, Spoken.NO_CONNECTION}
    expected |= {Spoken.CONNECTED_AGAIN, Spoken.MIC_SILENT}
    assert expected <= {e["status"] for e in said}, said
    for event in said:
        pcm = voice.render(event["text"])
        assert pcm is not None
        hits = find_sound(played, pcm, 0.9)
        assert any(abs(t - event["t"] - offsets[0]) < 0.15 for t in hits), event
    # Never over an answer: no cue starts inside an answer heard in the file.
    answer = config.answers[0].answer_pcm24k
    answers_at = find_sound(played, answer)
    assert len(answers_at) == 2
    for t, cue in heard:
        for a in answers_at:
            assert not a <= t < a + len(answer) / 48000, (cue, t, a)
    # No cue reached the endpoint as mic audio (no acoustic path here; the room test has one):
    # every 20 ms the stand-in received is a chunk of the mic file, or silence.
    mic_chunks = {mic[i : i + 640] for i in range(0, len(mic), 640)} | {bytes(640)}
    assert all(received[i : i + 640] in mic_chunks for i in range(0, len(received), 640))
    # The screen reader's text: one line per event, nothing redrawn or repeated.
    lines = result.stdout.splitlines()
    assert_screen_reader_friendly(result.stdout)
    assert "You said: Where are the gluten-free crackers?" in lines
    assert lines.count("shelfsight said: Third shelf from the top, right end, green bag.") == 2
    for fragment in ("camera stopped", "camera back", "retrying", "reconnected after"):
        assert any(fragment in line.lower() for line in lines), (fragment, lines)
    assert spoken(Spoken.MIC_SILENT) in lines
    (tmp_path / "screen-reader.txt").write_text(result.stdout)


ANSI = re.compile(r"\x1b\[|\x1b\]|\r|\x08")


def assert_screen_reader_friendly(text: str) -> None:
    assert not ANSI.search(text), "a redraw, cursor move or colour code"
    lines = text.splitlines()
    assert all(line.strip() for line in lines), "blank lines"
    assert all(a != b for a, b in zip(lines, lines[1:], strict=False)), "a repeated line"
    assert not any(ch in text for ch in "█▏⠋⠙⠹…"), "meter or spinner characters"
