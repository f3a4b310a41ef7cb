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
from shelfsight.guide.box import PixelBox
from shelfsight.guide.guide import Guide, GuideStats, Why
from shelfsight.media.camera import Frame
from shelfsight.media.frames import EncodedFrame, encode_jpeg
from shelfsight.media.off_loop import start_daemon

log = logging.getLogger(__name__)

FRAME_WAIT_S = 0.5  # no camera frame this long: the cue falls silent until frames come back
SAMPLE_EVERY_S = 0.25  # how often a cue is handed to the loop for the recording
TURN_PICTURE_S = 4.0  # a box comes within this long of the question it answers (see mark)
CLOSE_UP_EVERY_S = 0.5  # in reach: a fresh close-up this often...
CLOSE_UP_KEEP_S = 1.5  # ...kept this long after the item was last in reach (a wobble)
CLOSE_UP_MARGIN = 0.15  # of the box's size on every side
CLOSE_UP_QUALITY = 88  # small print survives
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
class Leading:
    """The model cannot see the item and pointed `direction`: the ticks lead that way."""

    name: str
    direction: str


@dataclass(frozen=True)
class Confirmed:
    """The model confirmed the followed item: the chime may play."""

    name: str


@dataclass(frozen=True)
class Say:
    """A few words for the user ("a bit lower", "I've lost the ..."), in no language yet."""

    text: Phrase


@dataclass(frozen=True)
class AskAgain:
    """Ask the model about this newest picture, silently (guide.guide.Ask): where the item is
    ("lost"), whether it is in view yet ("look"), whether `box_2d` is it ("confirm")."""

    name: str
    frame: EncodedFrame
    why: Why = "lost"
    box_2d: tuple[int, int, int, int] | None = None


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


GuideNews = Guiding | Leading | Confirmed | Say | AskAgain | CueSample | Stopped


# -- commands from the loop ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    box_2d: tuple[float, float, float, float]
    name: str
    frame: EncodedFrame  # the picture the model saw when it gave the box


@dataclass(frozen=True)
class _Lead:
    direction: str  # a key of guide.guide.DIRECTIONS (checked by the function)
    name: str


@dataclass(frozen=True)
class _Stop:
    why: str


class _TurnDone:
    """The model finished a turn: a question of the guide's was answered, call or not."""


_Command = _Mark | _Lead | _TurnDone | _Stop


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
        "with its box; if not, call point_camera with the way to move the camera. Do not speak."
    )


def look_text(name: str) -> str:
    """Sent with a fresh picture while the camera turns the way the model pointed."""
    return (
        f"Guide: is the {name} in this picture now? If so, call mark_item with its box; if "
        "not, call point_camera with the way to move the camera. Do not speak."
    )


def confirm_text(name: str, box_2d: tuple[int, int, int, int]) -> str:
    """Sent with the newest picture before the chime: is the followed box really the item?"""
    return (
        f"Guide check: the box {list(box_2d)} in this picture is being followed as the {name}. "
        f"Call mark_item with the {name}'s box in this picture (the same box if that is it; "
        "read the label: a look-alike next to it is not it), or point_camera if it is not in "
        "view. Do not speak."
    )


def guide_text(ask: AskAgain) -> str:
    """What the model is asked with `ask.frame`."""
    if ask.why == "confirm" and ask.box_2d is not None:
        return confirm_text(ask.name, ask.box_2d)
    return look_text(ask.name) if ask.why == "look" else ask_again_text(ask.name)


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
        self._commands: queue.Queue[_Command | _Close] = queue.Queue(maxsize=8)
        self._news: asyncio.Queue[GuideNews] = asyncio.Queue(maxsize=32)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._last_sent: EncodedFrame | None = None
        self._turn_picture: tuple[EncodedFrame, float] | None = None  # (sent with a turn, when)
        self._following = False  # worker thread: the camera was told to follow
        self.name: str | None = None  # loop thread's view: what is being guided to, if anything
        self.cpu_s = 0.0  # worker thread CPU time while guiding (for the summary)
        # The newest close-up of the item in reach and when it was cut (time.monotonic()):
        # set by the worker thread, read by the loop (one reference, swapped whole).
        self._close_up: tuple[EncodedFrame, float] | None = None

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

    def frame_sent(self, frame: EncodedFrame, with_turn: bool = False) -> None:
        """The newest picture the model has. `with_turn`: it went with a question (typed, or
        the guide's own), which the model answers looking at that picture."""
        self._last_sent = frame
        if with_turn:
            self._turn_picture = (frame, time.monotonic())

    def mark(self, box_2d: tuple[float, float, float, float], name: str) -> None:
        """Guide to `box_2d` (checked) in the picture the model saw; BadArgs if none was sent.

        That picture is the one sent with the last question if that was in the last
        TURN_PICTURE_S (realtime frames sent while the model answers came after it looked),
        else the last one sent (a spoken question: the frames stream with the speech)."""
        picture = self._last_sent
        if self._turn_picture is not None:
            frame, t_sent = self._turn_picture
            if time.monotonic() - t_sent <= TURN_PICTURE_S:
                picture = frame
        if picture is None:
            raise BadArgs("No camera picture has been sent yet; ask again once one has.")
        self._command(_Mark(box_2d, name, picture))
        self.name = name

    def lead(self, direction: str, name: str) -> None:
        """The item is out of view: lead the camera `direction` until the model can mark it."""
        self._command(_Lead(direction, name))
        self.name = name

    def turn_done(self) -> None:
        """The model's turn ended (with or without a call): the guide may ask again."""
        self._command(_TurnDone())

    def stop(self, why: str) -> bool:
        """End guiding; False if it was not on."""
        if self.name is None:
            return False
        self._command(_Stop(why))
        self.name = None
        return True

    def close_up(self) -> EncodedFrame | None:
        """The item in reach, cut from the camera's full picture (not the whole picture shrunk
        to 768 px), so the model can read its small print; None unless the guide is on the
        item, confirmed and near, or was in the last CLOSE_UP_KEEP_S."""
        close_up = self._close_up
        if close_up is None or time.monotonic() - close_up[1] > CLOSE_UP_KEEP_S:
            return None
        return close_up[0]

    async def news(self) -> AsyncIterator[GuideNews]:
        while True:
            yield await self._news.get()

    def _command(self, command: _Command) -> None:
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
                now = time.monotonic()
                step = self._guide.step(frame.image, frame.t_capture, now, frame.seq)
                self._sound.set(step.cue)
                if step.cue is not None and step.cue.on_target and step.track is not None:
                    self._cut_close_up(frame, step.track.box, now)
                if step.say:
                    self._post(Say(step.say))
                if step.ask is not None and self._guide.name is not None:
                    picture = self._encode(frame)
                    self._post(AskAgain(self._guide.name, picture, step.ask.why, step.ask.box_2d))
                if time.monotonic() - t_sample >= SAMPLE_EVERY_S:
                    t_sample = time.monotonic()
                    self._post(CueSample(step.cue, seq))
            except Exception as exc:  # a fault here must not leave the user guided by silence
                log.exception("guide failed")
                self._fail(exc)
            self.cpu_s = time.thread_time() - cpu0
        self._follow(False)
        self._sound.set(None)

    def _next_command(self, *, wait: bool) -> _Command | _Close | None:
        try:
            return self._commands.get(block=wait)
        except queue.Empty:
            return None

    def _apply(self, command: _Command) -> None:
        was_active = self._guide.active
        match command:
            case _Mark(box_2d=box_2d, name=name, frame=frame):
                image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
                if image is None:  # our own JPEG: cannot happen unless memory is short
                    log.error("guide: the marked picture could not be decoded")
                    return
                if self._guide.mark(box_2d, name, image, frame.seq):
                    self._post(Confirmed(name))
                    return
                self._sound.set(None)
                self._follow(True)
                self._post(Guiding(name))
            case _TurnDone():
                self._guide.answered()
            case _Lead(direction=direction, name=name):
                self._guide.lead(direction, name)
                self._follow(True)
                self._post(Leading(name, direction))
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

    def _cut_close_up(self, frame: Frame, box: PixelBox, now: float) -> None:
        """Worker thread: the box and a margin from the full-resolution frame, JPEG'd."""
        last = self._close_up
        if last is not None and now - last[1] < CLOSE_UP_EVERY_S:
            self._close_up = (last[0], now)  # still in reach: the last cut stays fresh
            return
        height, width = frame.image.shape[:2]
        mx, my = box.w * CLOSE_UP_MARGIN, box.h * CLOSE_UP_MARGIN
        x0, y0 = max(0, int(box.x - mx)), max(0, int(box.y - my))
        x1, y1 = min(width, int(box.x + box.w + mx)), min(height, int(box.y + box.h + my))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return
        crop = frame.image[y0:y1, x0:x1]
        jpeg, w, h = encode_jpeg(crop, self._max_side, CLOSE_UP_QUALITY)
        self._close_up = (EncodedFrame(jpeg, w, h, frame.t_capture, now, frame.seq), now)

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
