"""The guide on its own thread, over every camera frame.

Loop thread: `frame_sent`, `mark`, `stop` and `news()`; they post a command or read what the
worker posted. Worker thread: takes the newest camera frame (`FrameStream.next_frame`; the
camera decodes every frame only while guiding), steps the `Guide` (tracking is CPU work that
must never run on the event loop), sets the cue on the sound (`CueSink.set`, mixed by the
speaker's audio thread), and hands what the user must hear or the model must be asked to the
loop with `call_soon_threadsafe`.

Bounds: commands wait in a queue of 8 (full: the command is refused and logged; the loop posts
a few a minute); news waits in a queue of 32 for the loop (full: a new cue sample is
dropped, other news drops the oldest, see `_deliver`). A slow worker skips camera frames, it
never queues them. A fault while guiding (a tracker bug, an odd frame) is logged and told
as a stop (`Stopped(failed=True)`); the worker then waits for the next mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from shelfsight.core.guidance import Guidance
from shelfsight.core.phrases import Phrase
from shelfsight.errors import BadArgs
from shelfsight.guide.guide import Guide, GuideStats
from shelfsight.media.camera import Frame
from shelfsight.media.frames import EncodedFrame, encode_jpeg
from shelfsight.media.off_loop import start_daemon

log = logging.getLogger(__name__)

FRAME_WAIT_S = 0.5  # no camera frame this long: the cue falls silent until frames come back
SAMPLE_EVERY_S = 0.25  # how often a cue is handed to the loop for the recording
STOP_WORDS = re.compile(r"\b(stop|stop guiding|enough|got it|i have it|i've got it)\b", re.I)


class FrameStream(Protocol):
    """What the worker needs of the camera (`shelfsight.media.camera.Camera`)."""

    def follow(self, on: bool) -> None: ...
    def next_frame(self, after_seq: int, timeout_s: float) -> Frame | None: ...


class CueSink(Protocol):
    """Where the cue goes (`shelfsight.media.guidance_audio.GuideSound`); any thread."""

    def set(self, cue: Guidance | None) -> None: ...


# -- what the worker tells the loop -------------------------------------------------------------


@dataclass(frozen=True)
class Guiding:
    name: str


@dataclass(frozen=True)
class Say:
    """A few words for the user ("a bit lower", "I've lost the ..."), in no language yet."""

    text: Phrase


@dataclass(frozen=True)
class AskAgain:
    """The item is lost: ask the model where it is, with this newest picture."""

    name: str
    frame: EncodedFrame


@dataclass(frozen=True)
class CueSample:
    """The cue now (a few times a second, for the recording); `seq` is the camera frame's."""

    cue: Guidance | None
    seq: int


@dataclass(frozen=True)
class Stopped:
    name: str
    why: str
    failed: bool = False  # the worker stopped itself on a fault (the loop did not ask)


GuideNews = Guiding | Say | AskAgain | CueSample | Stopped


# -- commands from the loop ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    box_2d: tuple[float, float, float, float]
    name: str
    frame: EncodedFrame  # the picture the model saw when it gave the box


@dataclass(frozen=True)
class _Stop:
    why: str


class _Close:
    pass


GUIDE_ME = "Guide me to it."  # what the guide key asks, as a typed question


def says_stop(text: str) -> bool:
    """The user's words end guiding ("stop", "got it", ...)."""
    return STOP_WORDS.search(text) is not None


def ask_again_text(name: str) -> str:
    """The re-ask, sent with the newest picture as one turn (the stand-in's tests match it)."""
    return (
        f"The guide has lost the {name}. If you can see it in this picture, call mark_item "
        "with its box; if not, tell me in a few words how to move the camera."
    )


class GuideWorker:
    """Guide mode for one run. `start`/`close` from the loop (or any thread, once each)."""

    def __init__(
        self,
        camera: FrameStream,
        sound: CueSink,
        *,
        max_side: int = 768,
        jpeg_quality: int = 80,
    ) -> None:
        self._camera, self._sound = camera, sound
        self._max_side, self._jpeg_quality = max_side, jpeg_quality
        self._guide = Guide()
        self._commands: queue.Queue[_Mark | _Stop | _Close] = queue.Queue(maxsize=8)
        self._news: asyncio.Queue[GuideNews] = asyncio.Queue(maxsize=32)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._last_sent: EncodedFrame | None = None
        self._following = False  # worker thread: the camera was told to follow
        self.name: str | None = None  # loop thread's view: what is being guided to, if anything
        self.cpu_s = 0.0  # worker thread CPU time while guiding (for the summary)

    @property
    def active(self) -> bool:
        return self.name is not None

    @property
    def stats(self) -> GuideStats:
        """Counts (read from any thread; each is a plain int the worker increments)."""
        return self._guide.stats

    def start(self) -> None:
        """On the loop thread: news is posted to this loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = start_daemon(self._run, "guide")  # OpenCV tracking: the exit waits

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._commands.put_nowait(_Close())
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self._sound.set(None)

    # -- loop thread ------------------------------------------------------------------------

    def frame_sent(self, frame: EncodedFrame) -> None:
        """The newest picture the model has: a box it gives is about this one."""
        self._last_sent = frame

    def mark(self, box_2d: tuple[float, float, float, float], name: str) -> None:
        """Guide to `box_2d` (checked) in the last picture sent; BadArgs if none was."""
        if self._last_sent is None:
            raise BadArgs("No camera picture has been sent yet; ask again once one has.")
        self._command(_Mark(box_2d, name, self._last_sent))
        self.name = name

    def stop(self, why: str) -> bool:
        """End guiding; False if it was not on."""
        if self.name is None:
            return False
        self._command(_Stop(why))
        self.name = None
        return True

    async def news(self) -> AsyncIterator[GuideNews]:
        while True:
            yield await self._news.get()

    def _command(self, command: _Mark | _Stop) -> None:
        try:
            self._commands.put_nowait(command)
        except queue.Full:
            log.warning("guide worker busy: %s dropped", type(command).__name__)

    # -- worker thread ----------------------------------------------------------------------

    def _run(self) -> None:
        seq = -1
        t_sample = 0.0
        cpu0 = time.thread_time()
        while True:
            command = self._next_command(wait=not self._guide.active)
            if isinstance(command, _Close):
                break
            try:
                if command is not None:
                    self._apply(command)
                    seq = -1
                    continue
                if not self._guide.active:
                    continue
                frame = self._camera.next_frame(seq, FRAME_WAIT_S)
                if frame is None:
                    self._sound.set(None)  # the camera has stalled: its own cue says so
                    continue
                seq = frame.seq
                step = self._guide.step(frame.image, frame.t_capture, time.monotonic())
                self._sound.set(step.cue)
                if step.say:
                    self._post(Say(step.say))
                if step.ask_again and self._guide.name is not None:
                    self._post(AskAgain(self._guide.name, self._encode(frame)))
                if time.monotonic() - t_sample >= SAMPLE_EVERY_S:
                    t_sample = time.monotonic()
                    self._post(CueSample(step.cue, seq))
            except Exception as exc:  # a fault here must not leave the user guided by silence
                log.exception("guide failed")
                self._fail(exc)
            self.cpu_s = time.thread_time() - cpu0
        self._follow(False)
        self._sound.set(None)

    def _next_command(self, *, wait: bool) -> _Mark | _Stop | _Close | None:
        try:
            return self._commands.get(block=wait)
        except queue.Empty:
            return None

    def _apply(self, command: _Mark | _Stop) -> None:
        was_active = self._guide.active
        match command:
            case _Mark(box_2d=box_2d, name=name, frame=frame):
                image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
                if image is None:  # our own JPEG: cannot happen unless memory is short
                    log.error("guide: the marked picture could not be decoded")
                    return
                self._guide.mark(box_2d, name, image)
                self._sound.set(None)
                self._follow(True)
                self._post(Guiding(name))
            case _Stop(why=why):
                stopped = self._guide.name or "item"
                self._guide.stop()
                self._sound.set(None)
                self._follow(False)
                if was_active:
                    self._post(Stopped(stopped, why))

    def _fail(self, exc: Exception) -> None:
        """Guiding ends, said and shown like any stop; the worker waits for the next mark."""
        name = self._guide.name or "item"
        self._guide.stop()
        self._sound.set(None)
        self._follow(False)
        self._post(Stopped(name, f"the guide failed: {type(exc).__name__}", failed=True))

    def _follow(self, on: bool) -> None:
        """The camera decodes every frame only while guiding; told once per change."""
        if on != self._following:
            self._following = on
            self._camera.follow(on)

    def _encode(self, frame: Frame) -> EncodedFrame:
        jpeg, width, height = encode_jpeg(frame.image, self._max_side, self._jpeg_quality)
        return EncodedFrame(jpeg, width, height, frame.t_capture, time.monotonic(), frame.seq)

    def _post(self, news: GuideNews) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: the run is over
            loop.call_soon_threadsafe(self._deliver, news)

    def _deliver(self, news: GuideNews) -> None:
        """Loop thread. A full queue (the loop far behind): a cue sample is not worth keeping;
        anything else pushes out the oldest news."""
        if isinstance(news, Stopped) and news.failed:
            self.name = None  # the loop's stop() clears it otherwise
        if self._news.full() and isinstance(news, CueSample):
            return
        if self._news.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._news.get_nowait()
        self._news.put_nowait(news)
