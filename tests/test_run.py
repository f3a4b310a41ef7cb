"""`shelfsight run` end to end: the real CLI in a child process, the real google-genai client,
real TLS to the local stand-in, a real video file as camera and WAV files as mic and speaker."""

from __future__ import annotations

import wave
from pathlib import Path

import cv2
import numpy as np

from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.standin import StandInThread
from tests.conftest import ASSETS, TEST_KEY, run_cli, standin_env
from tests.support.listen import silence_cues

QUESTION_WAV = ASSETS / "question.wav"


def read_wav_pcm(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.readframes(w.getnframes()), w.getframerate()


def test_a_spoken_question_is_answered_into_the_speaker_file(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "answer.wav"
    result = run_cli(
        "run",
        "--camera",
        str(shelf_video),
        "--mic",
        str(QUESTION_WAV),
        "--speaker",
        str(out),
        env=standin_env(standin),
    )
    assert result.code == 0, result.stderr
    assert TEST_KEY not in result.stdout + result.stderr

    conn = standin.server.connections[-1]
    # Every sample of the question reached the endpoint, in order, from before its first
    # syllable (only speech goes up, with 0.3 s before it), followed only by silence.
    question = load_mic_pcm(QUESTION_WAV)
    sent = conn.audio_bytes()
    at = question.find(sent[:640])
    first_loud = int(np.flatnonzero(np.abs(np.frombuffer(question, "<i2")) > 500)[0]) * 2
    assert 0 <= at <= first_loud - 3200, "the first syllable and 0.1 s before it went up"
    assert sent[: len(question) - at] == question[at:]
    assert not any(sent[len(question) - at :])
    # The answer landed whole, byte for byte, in the speaker file, after some leading silence.
    played, rate = read_wav_pcm(out)
    assert rate == 24000
    answer_pcm = standin.server.config.answers[0].answer_pcm24k
    start = played.find(answer_pcm)
    assert start > 0, "answer audio missing or cut from the speaker file"
    assert silence_cues(played[:start]) == bytes(start), "only cues before the answer"
    # Pictures went out as JPEGs of the shelf (the first, and the question's).
    frames = conn.frames()
    assert len(frames) >= 1
    image = cv2.imdecode(np.frombuffer(frames[0], np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and max(image.shape[:2]) <= 1024
    # The transcript is on screen.
    assert "You: " + standin.server.config.answers[0].question_text in result.stdout
    assert "shelfsight: " + standin.server.config.answers[0].answer_text in result.stdout
    # The setup asked for what the product needs.
    setup = conn.setup or {}
    assert "systemInstruction" in setup and "third shelf" in str(setup["systemInstruction"]).lower()


def test_frames_are_fresh_and_about_one_a_second(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    """Each frame sent shows the video position at its send time, not a buffered old one."""
    from tests.support.scene import read_frame_number

    long_mic = tmp_path / "long.wav"
    write_wav(long_mic, load_mic_pcm(QUESTION_WAV) + bytes(16000 * 2 * 3), 16000)
    result = run_cli(
        "run",
        "--camera",
        str(shelf_video),
        "--mic",
        str(long_mic),
        "--speaker",
        "out.wav",
        "--fps",
        "2",
        *("--pictures", "timer"),  # the sampler's own pace (the default sends fewer)
        env=standin_env(standin),
    )
    assert result.code == 0, result.stderr
    events = standin.server.connections[-1].received("video")
    assert len(events) >= 6
    gaps = np.diff([e.t_monotonic for e in events])
    assert 0.3 < float(np.median(gaps)) < 0.7  # --fps 2
    numbers = [
        read_frame_number(cv2.imdecode(np.frombuffer(e.data, np.uint8), cv2.IMREAD_COLOR))
        for e in events
    ]
    video_frames = 90  # 3 s at 30 fps, looping
    for (a, b), gap in zip(zip(numbers, numbers[1:], strict=False), gaps, strict=True):
        advanced = (b - a) % video_frames
        expected = (gap * 30) % video_frames
        error = min(abs(advanced - expected), video_frames - abs(advanced - expected))
        assert error <= 6, f"frame {b} after {a} over {gap:.2f} s: stale by {error} frames"


def test_frames_slow_down_while_nobody_talks_and_speed_up_for_a_question(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    question = load_mic_pcm(QUESTION_WAV)
    quiet_s = 6.0
    mic = tmp_path / "mic.wav"
    write_wav(mic, bytes(int(32000 * quiet_s)) + question + bytes(32000 * 4), 16000)
    result = run_cli(
        "run",
        "--camera",
        str(shelf_video),
        "--mic",
        str(mic),
        "--speaker",
        "out.wav",
        "--fps",
        "1",
        "--idle-fps",
        "0.2",
        *("--pictures", "timer", "--send-audio", "always"),  # the timer, timed from the mic
        env=standin_env(standin),
    )
    assert result.code == 0, result.stderr
    conn = standin.server.connections[-1]
    t0 = conn.received("audio")[0].t_monotonic
    times = [e.t_monotonic - t0 for e in conn.received("video")]
    idle = [t for t in times if 0.5 < t < quiet_s - 0.2]
    busy = [t for t in times if quiet_s + 0.5 < t < quiet_s + 4.5]  # question, then answer
    assert len(idle) <= 2, f"idle frames at {idle}"
    assert len(busy) >= 3, f"frames while asking at {busy}"
