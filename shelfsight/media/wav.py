"""WAV files: read any common encoding (for the file mic), write mono PCM16 (fixtures, demo)."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import soxr

from shelfsight.errors import UserError
from shelfsight.media.pcm import MIC_RATE_HZ, float_to_pcm16


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Whole file as float32 (frames, channels) and its rate; PCM 8/16/24/32-bit or float 32/64."""
    tag, channels, rate, bits, pcm = _parse_wav(path)
    frame_bytes = channels * bits // 8
    raw = np.frombuffer(pcm[: len(pcm) // frame_bytes * frame_bytes], dtype=np.uint8)
    return _decode(raw, tag, bits).reshape(-1, channels), rate


def _parse_wav(path: Path) -> tuple[int, int, int, int, bytes]:
    """(format tag, channels, rate, bits, sample bytes), with one-line errors for bad files."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"WAV file not found: {path}") from None
    except OSError as e:
        raise UserError(f"cannot read WAV file {path}: {e.strerror}") from None
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise UserError(f"{path} is not a WAV file; give a .wav recording")
    fmt, pcm = _wav_chunks(data, path)
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: real tag opens the subformat
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if (tag, bits) not in _WAV_ENCODINGS or channels == 0 or rate == 0:
        raise UserError(
            f"{path}: unsupported WAV encoding (format {tag}, {bits}-bit); "
            "convert it, e.g. `sox in.wav -b 16 out.wav`"
        )
    return tag, channels, rate, bits, pcm


_WAV_ENCODINGS = {(1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64)}  # (format tag, bits)


def _wav_chunks(data: bytes, path: Path) -> tuple[bytes, bytes]:
    """The fmt and data chunks; a data size past the end (a cut-off recording) reads to EOF."""
    fmt: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data" and fmt is not None and len(fmt) >= 16:
            return fmt, body
        pos += 8 + size + (size & 1)
    raise UserError(f"{path} is a damaged WAV file (no fmt/data chunk)")


def _decode(raw: np.ndarray, tag: int, bits: int) -> np.ndarray:
    if bits == 8:
        return (raw.astype(np.float32) - 128) / 128
    if bits == 24:  # little-endian 3-byte ints into the top of an int32
        b = raw.reshape(-1, 3).astype(np.int32)
        return ((b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) / 2**31).astype(np.float32)
    if tag == 3:
        return raw.view("<f4" if bits == 32 else "<f8").astype(np.float32)
    return (raw.view("<i2" if bits == 16 else "<i4") / float(2 ** (bits - 1))).astype(np.float32)


def write_wav(path: Path, pcm16: bytes, rate_hz: int = MIC_RATE_HZ) -> Path:
    """Write mono PCM16 as a WAV file in one go (fixtures, benchmarks, the demo)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(pcm16)
    return path


def load_mic_pcm(path: Path) -> bytes:
    """A WAV file of any rate and channel count as 16 kHz mono PCM16.

    A file already in that format (every shelfsight recording) is passed through as it is,
    without a float copy: a half-hour mic file would otherwise take ~0.5 GB on the way.
    """
    tag, channels, rate, bits, pcm = _parse_wav(path)
    if (tag, channels, rate, bits) == (1, 1, MIC_RATE_HZ, 16):
        return pcm[: len(pcm) // 2 * 2]
    samples, rate = read_wav(path)
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if rate != MIC_RATE_HZ:
        mono = soxr.resample(mono, rate, MIC_RATE_HZ)
    return float_to_pcm16(mono)
