"""Echo cancellation in a simulated room: the spoken answer played on a speaker comes back into
the mic; the canceller must remove it without removing a user who talks over it.

Real assets (answer.wav as the far end, question.wav as the user), the real WebRTC module, and
`tests.support.room` as the acoustic path. Most runs use a simulated clock (seconds of audio in a
fraction of a second); one runs a real WAV speaker thread against a real-time room mic.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from shelfsight.media.echo import EchoCanceller
from shelfsight.media.mic import MicChunk
from shelfsight.media.pcm import MIC_CHUNK_BYTES
from shelfsight.media.speaker import WavSpeaker
from shelfsight.media.wav import load_mic_pcm, read_wav
from shelfsight.standin.audio import EnergyVad
from tests.conftest import ASSETS
from tests.support.room import Room, RoomAcoustics, RoomMic, Simulation, fan_out, simulate

RATE_HZ = 16000
CONVERGED_S = 2.0  # AEC3 is well past converging by then (it takes well under 1 s here)
QUESTION_AT_S = 5.0
STORE = RoomAcoustics(echo_delay_ms=80, echo_gain_db=-6, reverb_ms=150, noise_dbfs=-60)


@pytest.fixture(scope="module")
def answer() -> bytes:
    """The spoken answer, 24 kHz PCM16, played twice (10 s)."""
    samples, rate = read_wav(ASSETS / "answer.wav")
    assert rate == 24000
    return (np.tile(samples[:, 0], 2) * 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def question() -> bytes:
    return load_mic_pcm(ASSETS / "question.wav")


@pytest.fixture(scope="module")
def echo_only(answer: bytes) -> Simulation:
    canceller = EchoCanceller()
    return simulate(Room(STORE), answer, canceller.process, canceller.on_played, duration_s=8)


@pytest.fixture(scope="module")
def double_talk(answer: bytes, question: bytes) -> Simulation:
    canceller = EchoCanceller()
    return simulate(
        Room(STORE), answer, canceller.process, canceller.on_played,
        voice_pcm16=question, voice_at_s=QUESTION_AT_S, duration_s=8,
    )  # fmt: skip


def energy_db(x: np.ndarray) -> float:
    return 10 * float(np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-20))


def after(x: np.ndarray, seconds: float) -> np.ndarray:
    return x[round(seconds * RATE_HZ) :]


def speech_starts(x: np.ndarray) -> list[float]:
    """Where the stand-in's detector (20 ms RMS above -35 dBFS for 100 ms) hears speech start."""
    vad = EnergyVad(RATE_HZ, threshold_dbfs=-35, window_ms=20, speech_ms=100, silence_ms=300)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    starts = []
    for i in range(0, len(pcm), MIC_CHUNK_BYTES):
        starts += [i / 2 / RATE_HZ for t in vad.feed(pcm[i : i + MIC_CHUNK_BYTES]) if t == "start"]
    return starts


def test_the_answer_echo_drops_by_20_db_once_converged(echo_only: Simulation) -> None:
    echo_db = energy_db(after(echo_only.echo, CONVERGED_S))
    assert echo_db > -35  # loud enough to matter: the raw mic would hear it as speech
    assert echo_db - energy_db(after(echo_only.cleaned, CONVERGED_S)) >= 20


def test_without_cancellation_the_echo_stays(answer: bytes) -> None:
    passthrough = EchoCanceller(enabled=False)
    sim = simulate(Room(STORE), answer, passthrough.process, passthrough.on_played, duration_s=4)
    assert np.array_equal(sim.cleaned, sim.mic)
    assert energy_db(after(sim.echo, 1)) - energy_db(after(sim.cleaned, 1)) < 1


def test_the_answer_alone_is_not_taken_for_a_question(echo_only: Simulation) -> None:
    assert speech_starts(after(echo_only.mic, CONVERGED_S)), "the raw echo should sound like speech"
    assert speech_starts(after(echo_only.cleaned, CONVERGED_S)) == []


def test_a_user_talking_over_the_answer_is_still_heard(
    double_talk: Simulation, echo_only: Simulation
) -> None:
    """Barge-in: the detector hears the question, and most of the voice survives."""
    starts = [t for t in speech_starts(double_talk.cleaned) if t >= CONVERGED_S]
    assert starts and QUESTION_AT_S <= starts[0] < QUESTION_AT_S + 1.0
    q = slice(round(QUESTION_AT_S * RATE_HZ), round((QUESTION_AT_S + 2.3) * RATE_HZ))
    voice_left = double_talk.cleaned[q] - echo_only.cleaned[q]
    assert energy_db(voice_left) > energy_db(double_talk.voice[q]) - 6


def test_headphones_mode_passes_the_mic_through_byte_exact() -> None:
    """--no-aec: the speaker's audio may be in the mic, and still nothing is changed."""
    canceller = EchoCanceller(enabled=False)
    rng = np.random.default_rng(3)
    for n in range(50):
        played = rng.integers(-32768, 32767, 480, dtype=np.int16).tobytes()  # 20 ms at 24 kHz
        canceller.on_played(played, 10.0 + n * 0.02)
        mic = played[:MIC_CHUNK_BYTES]
        assert canceller.process(mic, 10.0 + n * 0.02) is mic
        chunk = MicChunk(mic, 10.0 + n * 0.02)
        assert canceller.process_chunk(chunk) == chunk


def test_a_mic_chunk_that_is_not_whole_10_ms_frames_is_refused() -> None:
    with pytest.raises(ValueError, match="10 ms"):
        EchoCanceller().process(bytes(300), 0.0)


def test_speaker_playing_long_before_the_mic_opens(answer: bytes) -> None:
    """A backlog of stale reference (3 s of silence) is skipped, not fed as if current."""
    canceller = EchoCanceller()
    for n in range(150):
        canceller.on_played(bytes(960), 997.0 + n * 0.02)
    sim = simulate(Room(STORE), answer, canceller.process, canceller.on_played, duration_s=5)
    assert canceller.stats.ref_dropped_s >= 2.5
    assert (
        energy_db(after(sim.echo, CONVERGED_S)) - energy_db(after(sim.cleaned, CONVERGED_S)) >= 20
    )


def test_reference_fed_from_another_thread_while_the_mic_is_processed(answer: bytes) -> None:
    """A feeder thread races the mic at full speed: at most 2 blocks ahead, never behind."""
    room, canceller = Room(STORE), EchoCanceller()
    t0, n_chunks = 1000.0, 250
    fed, processed = [0], [0]  # counters each side publishes for the other
    errors: list[BaseException] = []

    def feed() -> None:
        try:
            for n in range(n_chunks):
                while n > processed[0] + 2:
                    time.sleep(0)
                block = answer[n * 960 : (n + 1) * 960]
                fan_out(room.on_played, canceller.on_played)(block, t0 + n * 0.02)
                fed[0] = n + 1
        except BaseException as e:  # re-raised by the test below
            errors.append(e)

    feeder = threading.Thread(target=feed)
    feeder.start()
    echo, cleaned = [], []
    for n in range(n_chunks):
        while fed[0] <= n and feeder.is_alive():
            time.sleep(0)
        t = t0 + n * 0.02
        out = canceller.process(room.capture(t, bytes(MIC_CHUNK_BYTES)), t)
        assert len(out) == MIC_CHUNK_BYTES
        cleaned.append(np.frombuffer(out, "<i2") / 32768)
        echo.append(room.echo(t, MIC_CHUNK_BYTES // 2))
        processed[0] = n + 1
    feeder.join(timeout=10)
    assert not errors
    erle = energy_db(after(np.concatenate(echo), 2)) - energy_db(after(np.concatenate(cleaned), 2))
    assert erle >= 20


def test_live_wav_speaker_into_a_room_mic(tmp_path: Path, answer: bytes) -> None:
    """The full shape on real threads and the wall clock: WavSpeaker -> room -> RoomMic."""
    room, canceller = Room(STORE), EchoCanceller()
    speaker = WavSpeaker(
        tmp_path / "out.wav", on_played=fan_out(room.on_played, canceller.on_played)
    )
    mic = RoomMic(room, duration_s=3.5)

    async def run() -> tuple[np.ndarray, np.ndarray]:
        await mic.start()
        echo, cleaned = [], []
        while (chunk := await mic.read()) is not None:
            out = canceller.process_chunk(chunk)
            assert out.t_capture == chunk.t_capture
            cleaned.append(np.frombuffer(out.pcm, "<i2") / 32768)
            echo.append(room.echo(chunk.t_capture, MIC_CHUNK_BYTES // 2))
        return np.concatenate(echo), np.concatenate(cleaned)

    speaker.start()
    speaker.play(answer[: 24000 * 2 * 4])
    try:
        echo, cleaned = asyncio.run(run())
    finally:
        speaker.close()
    assert energy_db(after(echo, 1.5)) > -35
    assert energy_db(after(echo, 1.5)) - energy_db(after(cleaned, 1.5)) >= 20
    assert canceller.stats.ref_frames >= 300


def test_the_room_delays_and_attenuates_what_was_played(answer: bytes) -> None:
    room = Room(RoomAcoustics(echo_delay_ms=100, echo_gain_db=-10, reverb_ms=0))
    for n in range(100):  # 2 s
        room.on_played(answer[n * 960 : (n + 1) * 960], 50.0 + n * 0.02)
    echo = room.echo(50.0, 32000)
    played = soxr.resample(np.frombuffer(answer[: 2 * 48000], "<i2") / 32768, 24000, RATE_HZ)
    assert np.abs(echo[:1590]).max() < 1e-3  # nothing comes back in the first 100 ms
    lag = np.argmax(np.correlate(echo[:24000], played[:20000], mode="valid"))
    assert 1600 <= lag <= 1604  # 100 ms, plus the speaker's few-sample response
    level_db = energy_db(echo[1600:]) - energy_db(played[:-1600])
    assert -11.5 < level_db < -8.5
