"""Stand-ins for the conversation's parts, for tests that drive a `Conversation` directly: a
scripted link (records what is sent; the test pushes server events), a speaker that keeps
what it is given, a mic fed by the test, and a view that keeps every line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np

from shelfsight.core.frames import EncodedFrame
from shelfsight.live.events import FrameSent, ServerEvent
from shelfsight.live.link import LinkStats
from shelfsight.media.mic import MicChunk
from shelfsight.session.status import State

LOUD = (np.sin(np.arange(320) / 3) * 8000).astype("<i2").tobytes()  # 20 ms, about -15 dBFS
QUIET = bytes(640)


@dataclass
class ScriptedLink:
    """Records what the conversation sends; the test pushes server events."""

    sent: list[tuple[str, object]] = field(default_factory=list)
    queue: asyncio.Queue[ServerEvent] = field(default_factory=asyncio.Queue)
    speech_only: bool = False
    audio_backlog_s: float = 0.0  # nothing held back: everything "sent" at once

    def send_audio(self, pcm: bytes, *, speech: bool = False) -> None:
        self.sent.append(("audio", speech))

    def send_frame(self, frame: EncodedFrame) -> None:
        self.sent.append(("frame", frame.seq))
        self.queue.put_nowait(FrameSent(frame, 0.0))

    def send_text(self, text: str) -> None:
        self.sent.append(("text", text))

    def activity_start(self) -> None:
        self.sent.append(("activity_start", None))

    def activity_end(self) -> None:
        self.sent.append(("activity_end", None))

    async def events(self) -> AsyncIterator[ServerEvent]:
        while True:
            yield await self.queue.get()

    def drain_events(self) -> list[ServerEvent]:
        return []

    async def run(self) -> None:
        await asyncio.Event().wait()

    def stats(self) -> LinkStats:
        return LinkStats(1, 0, 0.0, 0.0, 0, 0)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.sent]


class MemorySpeaker:
    """A sink that plays nothing: what is queued stays until `play_all()` or `clear()`."""

    name = "memory"
    on_played = None
    underruns = 0

    def __init__(self) -> None:
        self.queued = bytearray()
        self.cleared = 0
        self.expects_slow = False  # told the upload is slow (so answers may come slowly)
        self.answers_ended = 0  # told that all audio so far has come
        self._drained = asyncio.Event()

    def start(self) -> None:
        pass

    def play(self, pcm24k: bytes) -> None:
        self.queued += pcm24k
        self._drained.clear()

    def clear(self) -> None:
        self.queued.clear()
        self.cleared += 1
        self._drained.set()

    def play_all(self) -> None:
        self.queued.clear()
        self._drained.set()

    @property
    def pending_s(self) -> float:
        return len(self.queued) / 48000

    @property
    def slow_wait_s(self) -> float:
        return 0.0

    def expect_slow_link(self) -> None:
        self.expects_slow = True

    def answer_ended(self) -> None:
        self.answers_ended += 1

    async def drained(self) -> None:
        if self.queued:
            await self._drained.wait()

    def keep(self) -> None:
        pass

    def discard(self) -> None:
        pass

    def close(self) -> None:
        pass


class QueueMic:
    name = "queue"

    def __init__(self) -> None:
        self.chunks: asyncio.Queue[MicChunk | None] = asyncio.Queue()
        self._n = 0

    async def start(self) -> None:
        pass

    def say(self, pcm: bytes, count: int = 1) -> None:
        for _ in range(count):
            self.chunks.put_nowait(MicChunk(pcm, self._n * 0.02))
            self._n += 1

    async def read(self) -> MicChunk | None:
        return await self.chunks.get()

    def close(self) -> None:
        pass


class Screen:
    def __init__(self) -> None:
        self.states: list[State] = []
        self.notices: list[str] = []

    def state(self, state: State) -> None:
        self.states.append(state)

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: None



async def until(predicate: Callable[[], bool], timeout_s: float = 2.0) -> None:
    """Poll the in-memory fakes (each step is a loop turn, no clock is involved)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


