"""Microphone sources and speaker sinks: WAV files here, sound devices in `audio_devices`.

A file and a device sit behind the same small contract, so tests and replays drive the same
pipeline as a live run. Mic side: 16 kHz mono PCM16 little-endian in 20 ms chunks. Speaker side:
24 kHz mono PCM16, as the Gemini Live API returns it, through a thread-safe jitter buffer that a
clock thread (WAV) or the PortAudio callback (device) drains.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

import numpy as np
import soxr

from shelfsight.errors import UserError

log = logging.getLogger(__name__)

MIC_RATE_HZ = 16000
SPEAKER_RATE_HZ = 24000
CHUNK_S = 0.02  # one mic chunk, one speaker clock tick
MIC_CHUNK_BYTES = int(MIC_RATE_HZ * CHUNK_S) * 2  # 640
SPEAKER_BLOCK_BYTES = int(SPEAKER_RATE_HZ * CHUNK_S) * 2  # 960
SILENCE_DBFS = -120.0  # what rms_dbfs reports for digital silence
LATE_GAP_S = 0.5  # audio arriving this soon after the buffer ran dry counts as an underrun

PlayedCallback = Callable[[bytes, float], None]


@dataclass(frozen=True)
class MicChunk:
    pcm: bytes  # 16 kHz mono PCM16, 20 ms (640 bytes)
    t_capture: float  # time.monotonic() of the first sample (an estimate for devices)


@dataclass(frozen=True)
class AudioDeviceInfo:
    name: str
    index: int
    kind: Literal["in", "out"]
    channels: int
    default_rate_hz: float
    is_default: bool


class MicSource(Protocol):
    """20 ms chunks of 16 kHz mono PCM16; start/read/close on the loop thread."""

    name: str

    async def start(self) -> None: ...
    async def read(self) -> MicChunk | None: ...
    def close(self) -> None: ...


class SpeakerSink(Protocol):
    """Plays 24 kHz mono PCM16 from a jitter buffer; methods on the loop thread, except that
    `on_played(pcm24k, t_monotonic)` runs on the audio thread for every block played."""

    name: str
    on_played: PlayedCallback | None
    underruns: int

    def start(self) -> None: ...
    def play(self, pcm24k: bytes) -> None: ...
    def clear(self) -> None: ...
    @property
    def pending_s(self) -> float: ...
    async def drained(self) -> None: ...
    def close(self) -> None: ...


# --- pure helpers -------------------------------------------------------------------------------


def mono_float(samples: np.ndarray | bytes | memoryview, channels: int) -> np.ndarray:
    """Interleaved int16 (or bytes of it) or float samples -> float32 mono in [-1, 1)."""
    x = samples if isinstance(samples, np.ndarray) else np.frombuffer(samples, dtype=np.int16)
    scale = 1 / 32768 if x.dtype == np.int16 else 1.0
    x = x.reshape(-1, channels).astype(np.float32)
    return (x[:, 0] if channels == 1 else x.mean(axis=1)) * np.float32(scale)


def float_to_pcm16(x: np.ndarray) -> bytes:
    return np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes()


def to_mono_pcm16(samples: np.ndarray | bytes | memoryview, channels: int) -> bytes:
    """Interleaved int16 (array or bytes) or float samples -> mono PCM16, channels averaged."""
    if not isinstance(samples, np.ndarray):
        if channels == 1:
            return bytes(samples)
    elif channels == 1 and samples.dtype == np.int16:
        return samples.astype("<i2").tobytes()
    return float_to_pcm16(mono_float(samples, channels))


def rms_dbfs(pcm16: bytes) -> float:
    """RMS level of PCM16 relative to full scale (a full-scale sine reads -3 dB)."""
    x = np.frombuffer(pcm16, dtype=np.int16).astype(np.float64)
    if x.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(x * x))) / 32768
    return max(SILENCE_DBFS, 20 * np.log10(rms)) if rms > 0 else SILENCE_DBFS


# --- WAV reading ---------------------------------------------------------------------------------


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


# --- WAV mic -------------------------------------------------------------------------------------


class WavMic:
    """A WAV file played into the pipeline as a mic would: 20 ms chunks on wall-clock deadlines.

    The clock starts at `start()`; a late reader gets the backlog at once (nothing is dropped),
    and chunk n always carries t_capture = start + n * 20 ms, so pacing never drifts.
    The last chunk is padded with silence to a full 640 bytes.
    """

    def __init__(self, path: Path) -> None:
        self.name = f"WAV file {path}"
        self._path = path
        self._pcm = b""
        self._t0 = 0.0
        self._next = 0
        self._closed = False

    async def start(self) -> None:
        self._pcm = await asyncio.to_thread(load_mic_pcm, self._path)
        self._t0 = time.monotonic()

    async def read(self) -> MicChunk | None:
        offset = self._next * MIC_CHUNK_BYTES
        if self._closed or offset >= len(self._pcm):
            return None
        t_capture = self._t0 + self._next * CHUNK_S
        await asyncio.sleep(max(0.0, t_capture + CHUNK_S - time.monotonic()))
        self._next += 1
        pcm = self._pcm[offset : offset + MIC_CHUNK_BYTES]
        return MicChunk(pcm.ljust(MIC_CHUNK_BYTES, b"\0"), t_capture)

    def close(self) -> None:
        self._closed = True


# --- speaker side --------------------------------------------------------------------------------


class JitterBuffer:
    """Thread-safe FIFO of mono PCM16 between the loop thread (push) and an audio thread (pop).

    Bounded to `max_s` seconds; overflow drops the oldest audio and counts it in `dropped_s`.
    The lock is held only for a copy, so the audio callback never waits long.
    """

    def __init__(self, rate_hz: int, max_s: float = 60.0) -> None:
        self.rate_hz = rate_hz
        self.dropped_s = 0.0
        self._max_bytes = int(rate_hz * max_s) * 2
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._playing = False  # audio was pushed and has not yet run out
        self._dry_at: float | None = None  # monotonic time the audio last ran out mid-play

    def push(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise ValueError("PCM16 data must have an even number of bytes")
        with self._lock:
            self._buf += pcm
            self._playing = self._playing or bool(pcm)
            excess = len(self._buf) - self._max_bytes
            if excess > 0:
                del self._buf[:excess]
                self.dropped_s += excess / 2 / self.rate_hz

    def pop(self, n_bytes: int) -> bytes:
        """Up to n_bytes of the oldest audio (fewer when running dry)."""
        with self._lock:
            out = bytes(self._buf[:n_bytes])
            del self._buf[:n_bytes]
            if len(out) < n_bytes and self._playing:
                self._playing = False
                self._dry_at = time.monotonic()
        return out

    def clear(self) -> None:
        with self._lock:
            self._buf.clear()
            self._playing = False
            self._dry_at = None

    def ran_dry_within(self, seconds: float) -> bool:
        """True (once) if queued audio ran out less than `seconds` ago: a gap mid-answer."""
        with self._lock:
            dry_at, self._dry_at = self._dry_at, None
        return dry_at is not None and time.monotonic() - dry_at < seconds

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)


class BufferedSink:
    """The half both sinks share: the loop thread fills a jitter buffer, an audio thread drains it.

    `underruns` counts audio that arrived within LATE_GAP_S after the buffer ran dry: a gap a
    listener heard mid-answer. `on_played(pcm24k, t_monotonic)` runs on the audio thread for
    every block played (silence included), with the time it is heard; set it before `start()`.
    """

    def __init__(self, name: str, rate_hz: int, on_played: PlayedCallback | None) -> None:
        self.name = name
        self.on_played = on_played
        self.underruns = 0
        self._buffer = JitterBuffer(rate_hz)
        self._closed = False
        self._drain_event: asyncio.Event | None = None  # created and awaited on the loop thread
        self._drain_loop: asyncio.AbstractEventLoop | None = None

    def play(self, pcm24k: bytes) -> None:
        if self._buffer.ran_dry_within(LATE_GAP_S):
            self.underruns += 1
        self._buffer.push(pcm24k)

    def clear(self) -> None:
        self._buffer.clear()

    @property
    def pending_s(self) -> float:
        return self._buffer.pending_bytes / 2 / self._buffer.rate_hz

    async def drained(self) -> None:
        """Returns once the buffer is empty (or the sink is closed); the audio thread wakes it."""
        if self._closed or self._is_drained():
            return
        if self._drain_event is None:
            self._drain_loop = asyncio.get_running_loop()
            self._drain_event = asyncio.Event()
        await self._drain_event.wait()

    def _is_drained(self) -> bool:
        return self._buffer.pending_bytes == 0

    def _wake_drained(self) -> None:
        """Audio thread, after every block: releases drained() waiters once the buffer is empty."""
        event, loop = self._drain_event, self._drain_loop
        if event is None or loop is None or not (self._closed or self._is_drained()):
            return
        self._drain_event = None
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass

    def _notify_played(self, pcm24k: bytes, t_monotonic: float) -> None:
        """Audio thread: a failing callback is logged, never allowed to stop playback."""
        if self.on_played is not None:
            try:
                self.on_played(pcm24k, t_monotonic)
            except Exception:
                log.exception("on_played callback failed")


class WavSpeaker(BufferedSink):
    """Writes 24 kHz mono PCM16 to a WAV file on a real-time clock, as a device would play it.

    A clock thread writes one 20 ms block per tick on absolute deadlines (catching up after a
    stall), silence when nothing is queued, so the file's timeline is what a listener heard and
    its length is the wall time the sink was open. The header is patched and the file flushed
    on every block, so the file is a valid WAV at every moment, even after a crash.
    """

    def __init__(self, path: Path, on_played: PlayedCallback | None = None) -> None:
        super().__init__(f"WAV file {path}", SPEAKER_RATE_HZ, on_played)
        self._path = path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self._path.parent.is_dir():
            raise UserError(f"cannot write speaker WAV {self._path}: its folder does not exist")
        try:
            file = self._path.open("wb")
        except OSError as e:
            raise UserError(f"cannot write speaker WAV {self._path}: {e.strerror}") from None
        writer = wave.open(file, "wb")
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SPEAKER_RATE_HZ)
        writer.writeframes(b"")  # header now, so the file is valid from the start
        file.flush()
        self._thread = threading.Thread(
            target=self._run_clock, args=(file, writer), name="wav-speaker", daemon=True
        )
        self._thread.start()

    def _run_clock(self, file: BinaryIO, writer: wave.Wave_write) -> None:
        t0 = time.monotonic()
        n = 0
        try:
            while not self._stop.is_set():
                while t0 + n * CHUNK_S <= time.monotonic():  # catch up on missed deadlines
                    block = self._buffer.pop(SPEAKER_BLOCK_BYTES).ljust(SPEAKER_BLOCK_BYTES, b"\0")
                    writer.writeframes(block)
                    file.flush()
                    self._notify_played(block, t0 + n * CHUNK_S)
                    n += 1
                self._wake_drained()
                self._stop.wait(max(0.0, t0 + n * CHUNK_S - time.monotonic()))
        except OSError:
            log.exception("writing %s failed; speaker output stops", self._path)
        finally:
            writer.close()
            file.close()
            self._wake_drained()

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._wake_drained()


# --- opening by spec -----------------------------------------------------------------------------


def is_wav_spec(spec: str) -> bool:
    """A --mic/--speaker value names a file if it ends in .wav or looks like a path."""
    return spec.lower().endswith(".wav") or os.sep in spec or "/" in spec or Path(spec).is_file()


def open_mic(spec: str) -> MicSource:
    """`default`, a device name substring or index, or a WAV path; the device is found now."""
    if is_wav_spec(spec):
        return WavMic(Path(spec).expanduser())
    from shelfsight.audio_devices import DeviceMic

    return DeviceMic.find(spec)


def open_speaker(spec: str, on_played: PlayedCallback | None = None) -> SpeakerSink:
    """`default`, a device name substring or index, or a WAV path to write."""
    if is_wav_spec(spec):
        return WavSpeaker(Path(spec).expanduser(), on_played)
    from shelfsight.audio_devices import DeviceSpeaker

    return DeviceSpeaker.find(spec, on_played)


def list_audio_devices() -> list[AudioDeviceInfo]:
    """Every input and output device (a duplex device appears once per kind); needs PortAudio."""
    from shelfsight.audio_devices import list_devices

    return list_devices()
