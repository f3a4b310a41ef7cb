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
from shelfsight.media.wav import MicWavReader


@dataclass(frozen=True)
class MicChunk:
    pcm: bytes  # 16 kHz mono PCM16, 20 ms (640 bytes)
    t_capture: float  # time.monotonic() of the first sample (an estimate for devices)


class MicSource(Protocol):
    """20 ms chunks of 16 kHz mono PCM16; start/read/close on the loop thread."""

    name: str
    dropped_chunks: int  # chunks lost because the loop read too late (0 for files)
    xruns: int  # the sound device's own overflows (0 for files)

    async def start(self) -> None: ...
    async def read(self) -> MicChunk | None: ...
    def close(self) -> None: ...


class WavMic:
    """A WAV file played into the pipeline as a mic would: 20 ms chunks on wall-clock deadlines.

    The clock starts at `start()`; a late reader gets the backlog at once (nothing is dropped),
    and chunk n always carries t_capture = start + n * 20 ms, so pacing never drifts.
    The last chunk is padded with silence to a full 640 bytes. The file streams from disk a
    block at a time (`MicWavReader`, on a worker thread), so any length takes bounded memory;
    a header that lies raises UserError at `start()` (or at the block that shows it).
    """

    def __init__(self, path: Path) -> None:
        self.name = f"WAV file {path}"
        self._path = path
        self._reader: MicWavReader | None = None
        self._pcm = b""  # the current block, from `_pos`
        self._pos = 0
        self._eof = False
        self._t0 = 0.0
        self._next = 0
        self._closed = False
        self.dropped_chunks = self.xruns = 0  # a file loses nothing
        self._filling = False

    async def start(self) -> None:
        self._reader = await asyncio.to_thread(MicWavReader, self._path)
        await self._fill()
        self._t0 = time.monotonic()

    async def read(self) -> MicChunk | None:
        if not self._closed and len(self._pcm) - self._pos < MIC_CHUNK_BYTES and not self._eof:
            await self._fill()
        if self._closed or self._pos >= len(self._pcm):
            return None
        t_capture = self._t0 + self._next * CHUNK_S
        await asyncio.sleep(max(0.0, t_capture + CHUNK_S - time.monotonic()))
        self._next += 1
        pcm = self._pcm[self._pos : self._pos + MIC_CHUNK_BYTES]
        self._pos += MIC_CHUNK_BYTES
        return MicChunk(pcm.ljust(MIC_CHUNK_BYTES, b"\0"), t_capture)

    async def _fill(self) -> None:
        reader = self._reader
        assert reader is not None, "start() first"
        self._filling = True
        try:
            block = await asyncio.to_thread(reader.read_block)
        finally:
            self._filling = False
            if self._closed:
                reader.close()
        self._eof = not block
        self._pcm, self._pos = self._pcm[self._pos :] + block, 0

    def close(self) -> None:
        self._closed = True
        if self._reader is not None and not self._filling:
            self._reader.close()
