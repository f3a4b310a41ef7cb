"""A `LiveLink` (real google-genai client, real TLS) against a stand-in, its events collected,
fed by the test: the link on its own, without devices or a conversation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from shelfsight.live.link import LiveLink, ServerEvent
from shelfsight.live.setup import Endpoint, live_config, make_client
from shelfsight.media.frames import EncodedFrame
from shelfsight.media.wav import load_mic_pcm
from shelfsight.settings import Settings
from shelfsight.standin import StandIn
from tests.conftest import ASSETS, TEST_KEY

CHUNK_S = 0.02
CHUNK_BYTES = 640  # 20 ms of 16 kHz PCM16, the client's mic chunk
SPEECH_DBFS = -40.0  # a chunk this loud is speech (the bundled question, not the noise floor)


class LinkRun:
    """A LiveLink against `server` (or through a relay at `port` on 127.0.0.1), with its
    events collected in `events`. `settings` sets the setup (e.g. mode="ptt")."""

    def __init__(
        self,
        server: StandIn,
        *,
        port: int | None = None,
        settings: Settings | None = None,
        **link_args: Any,
    ) -> None:
        url = server.base_url if port is None else f"https://127.0.0.1:{port}"
        client = make_client(TEST_KEY, Endpoint(url, server.client_ssl_context()))
        setup = settings or Settings()
        self.link = LiveLink(
            connect=client.aio.live.connect,
            model=setup.model,
            config_for=lambda handle: live_config(setup, "Answer briefly.", handle),
            **link_args,
        )
        self.events: list[ServerEvent] = []
        self._changed = asyncio.Event()

    async def collect(self) -> None:
        async for event in self.link.events():
            self.events.append(event)
            self._changed.set()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, predicate: Any, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def stream(self, pcm: bytes) -> None:
        """Send `pcm` (16 kHz PCM16) as a live mic would: 20 ms chunks at real time, each
        flagged as speech when it is loud."""
        next_t = time.monotonic()
        for i in range(0, len(pcm) - CHUNK_BYTES + 1, CHUNK_BYTES):
            chunk = pcm[i : i + CHUNK_BYTES]
            self.link.send_audio(chunk, speech=_dbfs(chunk) > SPEECH_DBFS)
            next_t += CHUNK_S
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))

    async def ask(self, question_pcm: bytes) -> None:
        """Push-to-talk: press, say `question_pcm`, release."""
        self.link.activity_start()
        await self.stream(question_pcm)
        self.link.activity_end()


def noise(seconds: float, seed: int) -> bytes:
    """A quiet room's mic: -60 dBFS noise, never speech."""
    samples = np.random.default_rng(seed).normal(0, 30, int(seconds * 16_000))
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def question() -> bytes:
    """The bundled spoken question, 16 kHz PCM16."""
    return load_mic_pcm(ASSETS / "question.wav")


async def hands_free(run: LinkRun, asks_at_s: Sequence[float], total_s: float) -> None:
    """A mic that streams all along: quiet noise, with the question at each time given."""
    spoken, t = question(), 0.0
    for at_s in asks_at_s:
        await run.stream(noise(at_s - t, seed=int(at_s)))
        await run.stream(spoken)
        t = at_s + len(spoken) / 32_000
    await run.stream(noise(total_s - t, seed=0))


async def push_to_talk(run: LinkRun, asks_at_s: Sequence[float], total_s: float) -> None:
    """Nothing sent between questions; each question between a press and a release."""
    spoken, t0 = question(), time.monotonic()
    for at_s in asks_at_s:
        await asyncio.sleep(max(0.0, t0 + at_s - time.monotonic()))
        await run.ask(spoken)
    await asyncio.sleep(max(0.0, t0 + total_s - time.monotonic()))


def _dbfs(chunk: bytes) -> float:
    samples = np.frombuffer(chunk, "<i2").astype(np.float64)
    rms = float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0
    return 20 * np.log10(max(rms, 1e-9) / 32768)


def jpeg_frame(jpeg: bytes) -> EncodedFrame:
    now = time.monotonic()
    return EncodedFrame(jpeg=jpeg, width=4, height=3, t_capture=now, t_encoded=now, seq=0)
