"""Mic sources and speaker sinks on real WAV files, plus the device path where PortAudio allows."""

from __future__ import annotations

import asyncio
import shutil
import struct
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from shelfsight.errors import UserError
from shelfsight.media.mic import MicChunk
from shelfsight.media.open_audio import list_audio_devices, open_mic, open_speaker
from shelfsight.media.pcm import MIC_CHUNK_BYTES, SILENCE_DBFS, rms_dbfs, to_mono_pcm16
from shelfsight.media.sound_devices import PORTAUDIO_MISSING, MicConverter, SpeakerRenderer
from shelfsight.media.speaker import JitterBuffer
from tests.conftest import ASSETS


def tone(freq_hz: float, seconds: float, rate_hz: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def pcm16(x: np.ndarray) -> bytes:
    return (x * 32767).astype("<i2").tobytes()


def write_wav_int16(path: Path, samples: np.ndarray, rate_hz: int) -> Path:
    """samples: float (frames, channels) in [-1, 1]."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm16(samples))
    return path


def write_wav_float32(path: Path, samples: np.ndarray, rate_hz: int) -> Path:
    """IEEE-float WAV (format tag 3), which Python's wave module cannot write."""
    channels = samples.shape[1]
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate_hz, rate_hz * channels * 4, channels * 4, 32)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    riff += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    return path


def dominant_hz(pcm: bytes, rate_hz: int) -> float:
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * rate_hz / len(x)


async def read_all(spec: str) -> tuple[list[MicChunk], float]:
    mic = open_mic(spec)
    await mic.start()
    t0 = time.monotonic()
    chunks = []
    while (chunk := await mic.read()) is not None:
        chunks.append(chunk)
    mic.close()
    return chunks, time.monotonic() - t0


# --- mic from a WAV file -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate_hz", "channels", "writer", "seconds", "freq_hz"),
    [
        (44100, 2, write_wav_int16, 1.0, 440.0),
        (8000, 1, write_wav_float32, 0.5, 1000.0),
    ],
)
def test_wav_question_streams_as_16k_mono_chunks_in_real_time(
    tmp_path: Path, rate_hz: int, channels: int, writer, seconds: float, freq_hz: float
) -> None:
    samples = np.repeat(tone(freq_hz, seconds, rate_hz)[:, None], channels, axis=1)
    path = writer(tmp_path / "question.wav", samples, rate_hz)

    chunks, elapsed = asyncio.run(read_all(str(path)))

    assert all(len(c.pcm) == MIC_CHUNK_BYTES for c in chunks)
    assert abs(len(chunks) * 0.02 - seconds) <= 0.02
    assert seconds * 0.9 <= elapsed <= seconds + 1.5  # paced by the wall clock, not instant
    steps = np.diff([c.t_capture for c in chunks])
    assert np.allclose(steps, 0.02, atol=1e-6)  # capture times on a fixed 20 ms grid
    assert abs(dominant_hz(b"".join(c.pcm for c in chunks), 16000) - freq_hz) < 5


def test_16k_mono_wav_question_passes_through_unchanged(tmp_path: Path) -> None:
    pcm = pcm16(tone(300, 0.2, 16000))
    path = write_wav_int16(tmp_path / "q.wav", np.frombuffer(pcm, "<i2")[:, None] / 32767, 16000)
    chunks, _ = asyncio.run(read_all(str(path)))
    assert b"".join(c.pcm for c in chunks) == pcm


def test_missing_or_non_wav_question_file_is_a_user_error(tmp_path: Path) -> None:
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("this is not audio")
    for path, words in ((tmp_path / "missing.wav", "not found"), (not_wav, "not a WAV file")):
        with pytest.raises(UserError, match=words):
            asyncio.run(read_all(str(path)))


# --- speaker into a WAV file ---------------------------------------------------------------------


def read_wav_pcm(path: Path) -> tuple[int, int, bytes]:
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


def test_answer_written_to_wav_speaker_sits_on_the_wall_clock(tmp_path: Path) -> None:
    path = tmp_path / "answer.wav"
    clip = pcm16(tone(500, 0.5, 24000) + 0.01)  # no zero samples inside the clip
    played: list[bytes] = []

    async def scenario() -> tuple[float, int]:
        speaker = open_speaker(str(path), on_played=lambda pcm, t: played.append(pcm))
        t0 = time.monotonic()
        speaker.start()
        await asyncio.sleep(0.3)
        speaker.play(clip)
        speaker.keep()  # as the conversation does when answer audio comes
        await asyncio.sleep(0.7)
        rate, _, so_far = read_wav_pcm(path)  # the header is valid while still open
        assert rate == 24000 and 0.8 <= len(so_far) / 48000 <= 1.3
        await asyncio.sleep(0.5)
        speaker.close()
        return time.monotonic() - t0, speaker.underruns

    wall_s, underruns = asyncio.run(scenario())
    rate, channels, data = read_wav_pcm(path)
    assert (rate, channels) == (24000, 1)
    assert abs(len(data) / 48000 - wall_s) <= 0.1
    start = data.find(clip)
    assert 0.25 <= start / 48000 <= 0.45
    assert not any(data[:start]) and not any(data[start + len(clip) :])
    assert b"".join(played) == data
    assert underruns == 0


def test_barge_in_clear_drops_the_rest_of_the_answer(tmp_path: Path) -> None:
    path = tmp_path / "answer.wav"

    async def scenario() -> tuple[float, float]:
        speaker = open_speaker(str(path))
        speaker.start()
        speaker.play(pcm16(tone(500, 3.0, 24000) + 0.01))
        await asyncio.sleep(0.5)
        before = speaker.pending_s
        speaker.clear()
        after = speaker.pending_s
        await asyncio.sleep(0.3)
        speaker.close()
        return before, after

    before, after = asyncio.run(scenario())
    _, _, data = read_wav_pcm(path)
    audible_s = np.count_nonzero(np.frombuffer(data, np.int16)) / 24000
    assert 2.2 <= before <= 2.6 and after == 0.0
    assert 0.4 <= audible_s <= 0.6 + 0.1


def test_drained_returns_once_the_answer_has_played(tmp_path: Path) -> None:
    path = tmp_path / "answer.wav"
    clip = pcm16(tone(500, 0.3, 24000) + 0.01)

    async def scenario() -> float:
        speaker = open_speaker(str(path))
        speaker.start()
        speaker.play(clip)
        speaker.keep()
        t0 = time.monotonic()
        await asyncio.wait_for(speaker.drained(), timeout=3.0)
        waited = time.monotonic() - t0
        assert speaker.pending_s == 0.0
        assert clip in read_wav_pcm(path)[2]  # already written when drained() returns
        speaker.close()
        return waited

    assert 0.25 <= asyncio.run(scenario()) <= 1.5


def test_audio_arriving_after_a_gap_counts_as_an_underrun(tmp_path: Path) -> None:
    async def scenario() -> int:
        speaker = open_speaker(str(tmp_path / "answer.wav"))
        speaker.start()
        speaker.play(pcm16(tone(500, 0.1, 24000)))
        await asyncio.sleep(0.25)  # the 0.1 s ran out: the listener hears a gap
        speaker.play(pcm16(tone(500, 0.1, 24000)))
        speaker.close()
        return speaker.underruns

    assert asyncio.run(scenario()) == 1


def an_earlier_answer(path: Path) -> bytes:
    """A speaker file left by an earlier run (alone in its folder), returned as its bytes."""
    path.parent.mkdir()
    shutil.copy(ASSETS / "answer.wav", path)
    return path.read_bytes()


def test_a_run_that_fails_before_any_answer_leaves_my_earlier_file_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out" / "answer.wav"
    earlier = an_earlier_answer(path)
    speaker = open_speaker(str(path))
    speaker.start()
    speaker.play(pcm16(tone(500, 0.2, 24000) + 0.01))  # a cue, not an answer
    time.sleep(0.3)
    assert path.read_bytes() == earlier  # while it runs, too
    speaker.discard()
    assert path.read_bytes() == earlier
    assert [p.name for p in path.parent.iterdir()] == ["answer.wav"]  # no temporary file left


def test_an_answer_is_in_place_at_once_and_stays_when_the_run_then_fails(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out" / "answer.wav"
    an_earlier_answer(path)
    clip = pcm16(tone(500, 0.2, 24000) + 0.01)

    async def scenario() -> None:
        speaker = open_speaker(str(path))
        speaker.start()
        speaker.play(clip)
        speaker.keep()  # answer audio came
        assert read_wav_pcm(path)[0] == 24000  # already this run's file, valid while written
        assert (ASSETS / "answer.wav").read_bytes() != path.read_bytes()
        await speaker.drained()
        speaker.discard()  # then the run failed

    asyncio.run(scenario())
    assert clip in read_wav_pcm(path)[2]
    assert [p.name for p in path.parent.iterdir()] == ["answer.wav"]


def test_a_run_that_ends_replaces_my_earlier_file_with_what_played(tmp_path: Path) -> None:
    path = tmp_path / "out" / "answer.wav"
    earlier = an_earlier_answer(path)
    path.chmod(0o640)
    speaker = open_speaker(str(path))
    speaker.start()
    time.sleep(0.2)
    speaker.close()  # the run ended (or was stopped): silence and cues are what was heard
    assert path.read_bytes() != earlier
    rate, _, data = read_wav_pcm(path)
    assert rate == 24000 and len(data) >= 0.1 * 48000 and not any(data)
    assert path.stat().st_mode & 0o777 == 0o640  # the file keeps the permissions it had
    assert [p.name for p in path.parent.iterdir()] == ["answer.wav"]


def test_a_speaker_closed_before_it_opened_writes_nothing(tmp_path: Path) -> None:
    """Another device failed while this one waited to open: its late start does nothing."""
    folder = tmp_path / "out"
    folder.mkdir()
    speaker = open_speaker(str(folder / "answer.wav"))
    speaker.discard()
    speaker.start()
    assert list(folder.iterdir()) == []


# --- device conversions (no PortAudio needed) and devices ---------------------------------------


def test_48k_stereo_device_blocks_become_16k_mono_chunks() -> None:
    converter = MicConverter(48000, 2)
    stereo = np.repeat(tone(440, 1.0, 48000)[:, None], 2, axis=1)
    chunks = []
    for i in range(50):
        block = pcm16(stereo[i * 960 : (i + 1) * 960])
        chunks += converter.feed(block, t_first=100.0 + i * 0.02)
    assert all(len(c.pcm) == MIC_CHUNK_BYTES for c in chunks)
    assert 47 <= len(chunks) <= 50  # the resampler holds back a few ms
    assert abs(chunks[0].t_capture - 100.0) < 0.03
    assert abs(dominant_hz(b"".join(c.pcm for c in chunks), 16000) - 440) < 5


def test_44k_device_speaker_plays_the_answer_and_reports_it_at_24k() -> None:
    buffer = JitterBuffer(24000)
    clip = pcm16(tone(440, 0.5, 24000) + 0.01)
    buffer.push(clip)
    reference: list[bytes] = []
    renderer = SpeakerRenderer(buffer, 44100, lambda pcm, t: reference.append(pcm))
    out = b"".join(renderer.render(441, t_dac=i * 0.01) for i in range(70))
    assert len(out) == 70 * 441 * 2
    audio = np.frombuffer(out, np.int16)
    assert abs(np.count_nonzero(np.abs(audio) > 200) / 44100 - 0.5) < 0.02
    assert abs(dominant_hz(out, 44100) - 440) < 5
    assert b"".join(reference).startswith(clip)  # on_played gets the 24 kHz original


def test_level_meter_and_downmix() -> None:
    assert abs(rms_dbfs(pcm16(tone(1000, 0.1, 16000, amplitude=1.0))) + 3.01) < 0.1
    assert rms_dbfs(bytes(640)) == SILENCE_DBFS
    stereo = np.array([[1000, 3000], [-2000, 0]], dtype=np.int16)
    assert np.frombuffer(to_mono_pcm16(stereo.ravel(), 2), np.int16).tolist() == [2000, -1000]


def test_unknown_device_names_what_is_wrong() -> None:
    try:
        import sounddevice  # noqa: F401
    except OSError:
        with pytest.raises(UserError) as missing:
            open_mic("no-such-microphone-xyz")
        assert str(missing.value) == PORTAUDIO_MISSING and "libportaudio2" in PORTAUDIO_MISSING
        with pytest.raises(UserError, match="PortAudio is not installed"):
            list_audio_devices()
        return
    kinds = {d.kind for d in list_audio_devices()}
    with pytest.raises(UserError, match="no microphone") as unknown:
        open_mic("no-such-microphone-xyz")
    if "in" in kinds:
        assert "available microphones" in str(unknown.value)
    with pytest.raises(UserError, match="no speaker"):
        open_speaker("no-such-speaker-xyz")


def test_late_answer_chunks_play_without_holes_once_the_margin_has_grown() -> None:
    """Playout waits for a margin; a hole grows it by the hole's length; calm shrinks it."""
    buffer = JitterBuffer(24000, margin_s=0.06, min_s=0.02, max_s=0.12)
    chunk = bytes(960 * 2)  # 40 ms
    buffer.push(chunk)
    block = 480 * 2  # 20 ms
    assert buffer.pop(block) == b"", "40 ms queued: still building the 60 ms margin"
    buffer.push(chunk)
    assert len(buffer.pop(block)) == block
    while len(buffer.pop(block)) == block:
        pass  # ran dry mid-answer
    buffer.push(chunk)  # the next chunk, late: a hole the listener heard
    assert buffer.underruns == 1 and buffer.margin_s >= 0.08
    grown = buffer.margin_s
    for _ in range(int(buffer.CALM_S / 0.02) + 10):  # 10 s played without a hole
        buffer.push(bytes(block))
        buffer.pop(block)
    assert buffer.margin_s < grown and buffer.underruns == 1
