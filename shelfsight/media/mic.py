"""Microphone sources: the contract, and a WAV file that plays into it like a mic.

A file and a device (`shelfsight.media.sound_devices.DeviceMic`) sit behind the same small
contract, so tests and replays drive the same pipeline as a live run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shelfsight.media.pcm import CHUNK_S, MIC_CHUNK_BYTES
from shelfsight.media.wav import load_mic_pcm


@dataclass(frozen=True)
class MicChunk:
    pcm: bytes  # 16 kHz mono PCM16, 20 ms (640 bytes)
    t_capture: float  # time.monotonic() of the first sample (an estimate for devices)


class MicSource(Protocol):
    """20 ms chunks of 16 kHz mono PCM16; start/read/close on the loop thread."""

    name: str

    async def start(self) -> None: ...
    async def read(self) -> MicChunk | None: ...
    def close(self) -> None: ...


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
