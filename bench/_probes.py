"""Probes on the real pipeline for bench/latency.py, injected the way tests inject parts.

`probed_parts` opens the devices and link that `run_conversation` takes as arguments: the mic
wrapped to log each chunk's capture time, the speaker's `play` timed and its `on_played`
chained to log each block played, and the link wrapped to log when each answer chunk came out
of the SDK.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from shelfsight.app import Devices, make_link, open_devices
from shelfsight.live.link import AnswerAudio, ServerEvent
from shelfsight.live.setup import Endpoint
from shelfsight.media.mic import MicChunk, MicSource
from shelfsight.settings import Settings


class Probe:
    """What a run did, with time.monotonic() times; `on_played` runs on the audio thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mic: list[tuple[float, int]] = []  # (capture time of first sample, samples)
        self._played: list[tuple[float, bytes]] = []  # blocks holding any non-silent sample
        self._received: list[float] = []  # client receive time of each answer chunk
        self._handed: list[float] = []  # when each answer chunk was handed to speaker.play()
        self.turn_latency_s: list[float | None] = []  # what shelfsight itself reported
        self.flushed_bytes = 0

    def on_mic(self, t_capture: float, n_samples: int) -> None:
        self._mic.append((t_capture, n_samples))

    def on_played(self, pcm24k: bytes, t_monotonic: float) -> None:
        if pcm24k.strip(b"\0"):
            with self._lock:
                self._played.append((t_monotonic, pcm24k))

    def on_answer(self, t_received: float) -> None:
        self._received.append(t_received)

    def on_play(self, t_monotonic: float) -> None:
        self._handed.append(t_monotonic)

    def play_calls(self) -> list[float]:
        return list(self._handed)

    def mic_chunks(self) -> list[tuple[float, int]]:
        return list(self._mic)

    def played_blocks(self) -> list[tuple[float, bytes]]:
        with self._lock:
            return list(self._played)

    def answer_received(self) -> list[float]:
        return list(self._received)

    def ramp_samples_played(self) -> int:
        return sum(int(np.count_nonzero(np.frombuffer(b, "<i2"))) for _, b in self.played_blocks())


class TimedMic:
    """A MicSource that logs each chunk's capture time as the pipeline reads it."""

    def __init__(self, mic: MicSource, probe: Probe) -> None:
        self._mic, self._probe = mic, probe

    @property
    def name(self) -> str:
        return self._mic.name

    async def start(self) -> None:
        await self._mic.start()

    async def read(self) -> MicChunk | None:
        chunk = await self._mic.read()
        if chunk is not None:
            self._probe.on_mic(chunk.t_capture, len(chunk.pcm) // 2)
        return chunk

    def close(self) -> None:
        self._mic.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mic, name)


class QuietView:
    """A View that prints nothing and keeps the per-turn latency shelfsight reports."""

    def __init__(self, probe: Probe) -> None:
        self._probe = probe

    def turn_done(self, latency_s: float | None, interrupted: bool) -> None:
        self._probe.turn_latency_s.append(latency_s)

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def _chain(first: Callable[[bytes, float], None] | None, probe: Probe) -> Callable[..., None]:
    def played(pcm24k: bytes, t_monotonic: float) -> None:
        if first is not None:
            first(pcm24k, t_monotonic)
        probe.on_played(pcm24k, t_monotonic)

    return played


class TimedLink:
    """The real link, with the time each answer chunk came out of the SDK reported."""

    def __init__(self, link: Any, probe: Probe) -> None:
        self._link, self._probe = link, probe

    def __getattr__(self, name: str) -> Any:
        return getattr(self._link, name)

    async def events(self) -> AsyncIterator[ServerEvent]:
        async for event in self._link.events():
            if isinstance(event, AnswerAudio):
                self._probe.on_answer(event.t_received)
            yield event


@contextlib.asynccontextmanager
async def probed_parts(
    probe: Probe, settings: Settings, key: str, endpoint: Endpoint
) -> AsyncIterator[dict[str, Any]]:
    """run_conversation's devices and link, opened here and reporting to `probe`; pass the
    yielded dict as keyword arguments (`run_conversation(..., **parts)`)."""
    async with open_devices(settings) as devices:
        sink = devices.speaker
        sink.on_played = _chain(sink.on_played, probe)  # read by the clock thread per block
        play = sink.play

        def timed_play(pcm24k: bytes) -> None:
            probe.on_play(time.monotonic())
            play(pcm24k)

        sink.play = timed_play  # type: ignore[method-assign]
        mic = TimedMic(devices.mic, probe) if devices.mic is not None else None
        yield {
            "devices": Devices(devices.camera, mic, sink),
            "link": TimedLink(make_link(settings, key, endpoint), probe),
        }
    if not probe.played_blocks():
        raise RuntimeError("no speaker block reached the probe: was on_played replaced?")
