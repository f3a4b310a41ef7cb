"""WAV files: stream any common encoding from disk as 16 kHz mono PCM16 (the file mic), read
small ones whole, write mono PCM16 (fixtures, demo).

`MicWavReader` holds one block (`BLOCK_S` of the file) at a time, so a file of any length and
rate streams in bounded memory. A header is believed only if it is self-consistent and plausible
for audio (rate, channels, block alignment, encoding); a file whose header lies gets one line
saying what is wrong, never a hang, a huge allocation or silence. A data size past the end of
the file (a cut-off recording) reads to the end of the file. Any thread; one reader per file.
"""

from __future__ import annotations

import struct
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soxr

from shelfsight.errors import UserError
from shelfsight.media.pcm import MIC_RATE_HZ, float_to_pcm16

BLOCK_S = 0.5  # of the file, read and converted at a time
MIN_RATE_HZ, MAX_RATE_HZ = 4_000, 384_000
MAX_CHANNELS = 32
MAX_FMT_BYTES = 1024  # a fmt chunk is 16-40 bytes; a larger one is not a WAV header
_WAV_ENCODINGS = {(1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64)}  # (format tag, bits)
_CONVERT_HINT = "convert it, e.g. `sox in.wav -b 16 -r 16000 out.wav`"


class MicWavReader:
    """A WAV file as 16 kHz mono PCM16, block by block (`read_block()`; b"" at the end)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file: BinaryIO = open(path, "rb")  # noqa: SIM115  # closed by close()
        except FileNotFoundError:
            raise UserError(f"WAV file not found: {path}") from None
        except OSError as e:
            raise UserError(f"cannot read WAV file {path}: {e.strerror}") from None
        try:
            self.tag, self.channels, self.rate_hz, self.bits, self._left = self._header()
        except BaseException:
            self._file.close()
            raise
        self._frame_bytes = self.channels * self.bits // 8
        self._block_bytes = max(1, int(self.rate_hz * BLOCK_S)) * self._frame_bytes
        self._pass_through = (self.tag, self.channels, self.rate_hz, self.bits) == (
            1,
            1,
            MIC_RATE_HZ,
            16,
        )
        self._resampler = (
            None
            if self.rate_hz == MIC_RATE_HZ
            else soxr.ResampleStream(self.rate_hz, MIC_RATE_HZ, 1, dtype="float32")
        )
        self._done = False

    def read_block(self) -> bytes:
        """The next ~`BLOCK_S` of the file as 16 kHz mono PCM16; b"" once it has ended."""
        out = b""
        while not self._done and not out:
            out = self._next_block()
        return out

    def _next_block(self) -> bytes:
        raw = self._file.read(min(self._block_bytes, self._left))
        raw = raw[: len(raw) // self._frame_bytes * self._frame_bytes]
        self._left -= len(raw)
        last = not raw or self._left <= 0
        if self._pass_through:
            self._done = last
            return raw
        samples = _decode(np.frombuffer(raw, dtype=np.uint8), self.tag, self.bits)
        if not np.all(np.isfinite(samples)) or (samples.size and np.abs(samples).max() > 16):
            raise UserError(
                f"{self.path}: the header says {self.bits}-bit float but the samples are not "
                f"floating-point audio; {_CONVERT_HINT}"
            )
        mono = samples.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=last)
        self._done = last
        return float_to_pcm16(mono)

    def close(self) -> None:
        self._file.close()

    def _header(self) -> tuple[int, int, int, int, int]:
        """(format tag, channels, rate, bits, data bytes left), checked; the file is left at
        the start of the samples."""
        f, path = self._file, self.path
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise UserError(f"{path} is not a WAV file; give a .wav recording")
        fmt: bytes | None = None
        while len(chunk := f.read(8)) == 8:
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                if not 16 <= size <= MAX_FMT_BYTES:
                    raise UserError(f"{path} is a damaged WAV file (fmt chunk of {size} bytes)")
                fmt = f.read(size + (size & 1))
            elif cid == b"data" and fmt is not None:
                return (*_check_fmt(fmt, path), size)
            else:
                f.seek(size + (size & 1), 1)
        raise UserError(f"{path} is a damaged WAV file (no fmt/data chunk)")


def _check_fmt(fmt: bytes, path: Path) -> tuple[int, int, int, int]:
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: real tag opens the subformat
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if (tag, bits) not in _WAV_ENCODINGS:
        raise UserError(
            f"{path}: unsupported WAV encoding (format {tag}, {bits}-bit); {_CONVERT_HINT}"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise UserError(f"{path}: the header claims {channels} channels; {_CONVERT_HINT}")
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise UserError(f"{path}: the header claims a rate of {rate} Hz; {_CONVERT_HINT}")
    if block_align != channels * bits // 8 or byte_rate != rate * block_align:
        raise UserError(
            f"{path} is a damaged WAV file (its sizes disagree: {channels} channels of {bits} "
            f"bits, {block_align} bytes a frame, {byte_rate} bytes a second); {_CONVERT_HINT}"
        )
    return tag, channels, rate, bits


def _decode(raw: np.ndarray, tag: int, bits: int) -> np.ndarray:
    if bits == 8:
        return (raw.astype(np.float32) - 128) / 128
    if bits == 24:  # little-endian 3-byte ints into the top of an int32
        b = raw.reshape(-1, 3).astype(np.int32)
        return ((b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) / 2**31).astype(np.float32)
    if tag == 3:
        with np.errstate(over="ignore", invalid="ignore"):
            return raw.view("<f4" if bits == 32 else "<f8").astype(np.float32)
    return (raw.view("<i2" if bits == 16 else "<i4") / float(2 ** (bits - 1))).astype(np.float32)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Whole file as float32 (frames, channels) and its rate (small files: tests, benches)."""
    reader = MicWavReader(path)
    try:
        raw = reader._file.read(reader._left)
        raw = raw[: len(raw) // reader._frame_bytes * reader._frame_bytes]
        samples = _decode(np.frombuffer(raw, dtype=np.uint8), reader.tag, reader.bits)
        return samples.reshape(-1, reader.channels), reader.rate_hz
    finally:
        reader.close()


def load_mic_pcm(path: Path) -> bytes:
    """A whole WAV file of any rate and channel count as 16 kHz mono PCM16 (small files:
    tests, benches; the mic streams with `MicWavReader`)."""
    reader = MicWavReader(path)
    try:
        blocks = []
        while block := reader.read_block():
            blocks.append(block)
        return b"".join(blocks)
    finally:
        reader.close()


def write_wav(path: Path, pcm16: bytes, rate_hz: int = MIC_RATE_HZ) -> Path:
    """Write mono PCM16 as a WAV file in one go (fixtures, benchmarks, the demo)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(pcm16)
    return path
