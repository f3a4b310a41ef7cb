"""A WAV file as the mic: any length streams in bounded memory; a header that lies is refused
in one line (exit 2), never a hang, a huge allocation or a silent run."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from shelfsight.errors import UserError
from shelfsight.media.wav import MicWavReader, load_mic_pcm
from tests.conftest import run_cli


def _wav(
    path: Path,
    samples: bytes,
    *,
    rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    tag: int = 1,
    block_align: int | None = None,
    byte_rate: int | None = None,
    data_size: int | None = None,
) -> Path:
    """A WAV file written byte by byte, so that its header can say anything."""
    align = channels * bits // 8 if block_align is None else block_align
    fmt = struct.pack(
        "<HHIIHH",
        tag,
        channels,
        rate,
        rate * align if byte_rate is None else byte_rate,
        align,
        bits,
    )
    size = len(samples) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", size) + samples
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def _speech_like(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2


def _pcm16(x: np.ndarray) -> bytes:
    return (x * 32767).astype("<i2").tobytes()


LIARS = {
    "a rate of 1 Hz": ({"rate": 1}, "rate of 1 Hz"),
    "a rate of 0xFFFFFFFF": ({"rate": 0xFFFFFFFF, "byte_rate": 0}, "rate of 4294967295 Hz"),
    "65535 channels": ({"channels": 65535, "block_align": 0, "byte_rate": 0}, "65535 channels"),
    "sizes that disagree": ({"block_align": 7}, "sizes disagree"),
    "float on 16-bit data": ({"tag": 3}, "unsupported WAV encoding"),
}


@pytest.mark.parametrize("header", LIARS.values(), ids=LIARS.keys())
def test_a_wav_whose_header_lies_is_refused_in_one_line(
    tmp_path: Path, header: tuple[dict[str, int], str]
) -> None:
    fields, said = header
    mic = _wav(tmp_path / "liar.wav", bytes(64 * 1024), **fields)
    result = run_cli(
        "run", "--camera", "none", "--mic", str(mic), "--speaker", str(tmp_path / "out.wav"),
        env={"GEMINI_API_KEY": "x"}, timeout_s=20,
    )  # fmt: skip
    assert result.code == 2, result.stdout + result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_float_header_on_integer_samples_is_refused(tmp_path: Path) -> None:
    ints = (_speech_like(1.0, 16000) * 2**31).astype("<i4").tobytes()
    mic = _wav(tmp_path / "liar.wav", ints, bits=32, tag=3)
    with pytest.raises(UserError, match="says 32-bit float but the samples are not"):
        load_mic_pcm(mic)


def test_a_wav_cut_off_mid_recording_plays_what_is_there(tmp_path: Path) -> None:
    pcm = _pcm16(_speech_like(1.0, 16000))
    mic = _wav(tmp_path / "cut.wav", pcm, data_size=10 * len(pcm))  # says 10 s, holds 1 s
    assert load_mic_pcm(mic) == pcm


def test_a_long_48_khz_stereo_wav_streams_in_bounded_memory(tmp_path: Path) -> None:
    """60 s of 48 kHz stereo (11 MB): reading it holds about one 0.5 s block at a time."""
    mono = _speech_like(60.0, 48000)
    stereo = np.repeat(mono[:, None], 2, axis=1).reshape(-1)
    mic = _wav(tmp_path / "long.wav", _pcm16(stereo), rate=48000, channels=2)
    tracemalloc.start()
    try:
        reader = MicWavReader(mic)
        total = 0
        while block := reader.read_block():
            total += len(block)
        reader.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == pytest.approx(60 * 16000 * 2, rel=0.001)  # all of it, at 16 kHz mono
    assert peak < 2 * 2**20, f"peak {peak / 2**20:.1f} MB for an 11 MB file"
