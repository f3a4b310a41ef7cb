"""Speaker sinks: the contract, the half both sinks share, and a WAV file sink.

24 kHz mono PCM16 goes through a thread-safe jitter buffer (`shelfsight.media.playout`, which
also decides how long an answer on a slow link waits) that a clock thread (WAV) or the
PortAudio callback (`shelfsight.media.sound_devices.DeviceSpeaker`) drains. An `Overlay` (guide
mode's ticks) is mixed over it by that same thread, block by block, so it never waits behind
queued speech: `mix` gives the stereo block and the mono mix that was really played (the echo
canceller's reference).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import stat
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from shelfsight.errors import UserError
from shelfsight.media.pcm import CHUNK_S, SPEAKER_BLOCK_BYTES, SPEAKER_RATE_HZ
from shelfsight.media.playout import LATE_GAP_S, SLOW_NOTICE_S, JitterBuffer  # noqa: F401

log = logging.getLogger(__name__)

PlayedCallback = Callable[[bytes, float], None]


class Overlay(Protocol):
    """Sound mixed over the answer on the audio thread (guidance), 24 kHz stereo."""

    def render(self, frames: int) -> np.ndarray | None: ...  # int16 (frames, 2); None: silent


def mix(mono_pcm: bytes, overlay: Overlay | None) -> tuple[np.ndarray | None, bytes]:
    """Audio thread: (stereo int16 (n, 2) or None when the overlay is silent, the mono mix
    as PCM16 bytes). The answer goes to both sides; the sum is clipped, never wrapped."""
    extra = None if overlay is None else overlay.render(len(mono_pcm) // 2)
    if extra is None:  # the usual case, every block: no conversion
        return None, mono_pcm
    answer = np.frombuffer(mono_pcm, np.int16).astype(np.int32)
    stereo = np.clip(answer[:, None] + extra.astype(np.int32), -32768, 32767)
    mono = (stereo.sum(axis=1) // 2).astype(np.int16)
    return stereo.astype(np.int16), mono.tobytes()


class SpeakerSink(Protocol):
    """Plays 24 kHz mono PCM16 from a jitter buffer; methods on the loop thread, except that
    `on_played(pcm24k, t_monotonic)` runs on the audio thread for every block played."""

    name: str
    on_played: PlayedCallback | None
    xruns: int  # the sound device's own underflows (0 for files)

    @property
    def underruns(self) -> int: ...
    @property
    def playout_margin_s(self) -> float: ...

    def start(self) -> None: ...
    def play(self, pcm24k: bytes) -> None: ...
    def clear(self) -> None: ...
    @property
    def pending_s(self) -> float: ...
    @property
    def slow_wait_s(self) -> float: ...  # held back now for a slow downlink (wall s)
    def expect_slow_link(self) -> None: ...  # the upload is slow: judge answers so till measured
    def answer_ended(self) -> None: ...  # all of the sound played so far has come (turn complete)
    async def drained(self) -> None: ...
    def keep(self) -> None: ...  # answer audio came: what is played is worth keeping
    def discard(self) -> None: ...  # the run failed: close, keeping only what keep() kept
    def close(self) -> None: ...  # the run ended: close, keeping what was played


class BufferedSink:
    """The half both sinks share: the loop thread fills a jitter buffer, an audio thread drains it.

    `underruns` counts audio that arrived within LATE_GAP_S after the buffer ran dry: a gap a
    listener heard mid-answer (the jitter buffer grows its margin on each).
    `on_played(pcm24k, t_monotonic)` runs on the audio thread for every block played (silence
    included), with the time it is heard; set it before `start()`.
    `slow_wait_s`, `slow_hold_s` and `max_slow_wait_s` say when an answer waits for a slow
    link (below).
    """

    def __init__(self, name: str, rate_hz: int, on_played: PlayedCallback | None) -> None:
        self.name = name
        self.on_played = on_played
        self.xruns = 0
        self._buffer = JitterBuffer(rate_hz)
        self._closed = False
        # A drained() waiter: created and awaited on the loop thread, released by the audio
        # thread; the pair is read and written only under `_drain_lock`.
        self._drain_lock = threading.Lock()
        self._drain_event: asyncio.Event | None = None
        self._drain_loop: asyncio.AbstractEventLoop | None = None

    @property
    def underruns(self) -> int:
        return self._buffer.underruns

    @property
    def playout_margin_s(self) -> float:
        """The largest playout margin the jitter buffer needed (seconds)."""
        return self._buffer.max_margin_seen_s

    @property
    def slow_wait_s(self) -> float:
        """Loop thread, polled: while an answer is held back because it arrives slower than real
        time, how long it has waited (wall seconds since its first chunk, or since the hole it
        refills after; `slow_hold_s` says how much audio it waits for); 0.0 otherwise (playing,
        idle, or only the jitter margin's 20-120 ms). Once it reaches SLOW_NOTICE_S (1 s) the
        conversation should say "slow connection: answers may lag", once: the silence is the
        link, not a hang. A wait lasts at most MAX_WAIT_S (10 s)."""
        return self._buffer.slow_wait_s

    def expect_slow_link(self) -> None:
        """Loop thread: the upload was found slow; until an answer is measured, expect the
        downlink to be slow too (see `JitterBuffer.expect_slow`)."""
        self._buffer.expect_slow()

    def answer_ended(self) -> None:
        """Loop thread: everything pushed so far is whole (an answer's turn is complete, or
        a sound of ours was pushed): see `JitterBuffer.answer_ended`."""
        self._buffer.answer_ended()

    @property
    def slow_hold_s(self) -> float:
        """Audio (seconds) the current slow-link wait holds back before playing, beyond the
        jitter margin, at most MAX_HOLD_S (3 s); 0.0 when not waiting for a slow link."""
        return self._buffer.hold_s

    @property
    def max_slow_wait_s(self) -> float:
        """The longest slow-link wait so far (wall seconds, measured when playback began)."""
        return self._buffer.max_slow_wait_s

    def play(self, pcm24k: bytes) -> None:
        self._buffer.push(pcm24k)

    def clear(self) -> None:
        self._buffer.clear()

    @property
    def pending_s(self) -> float:
        return self._buffer.pending_bytes / 2 / self._buffer.rate_hz

    async def drained(self) -> None:
        """Returns once the buffer is empty (or the sink is closed); the audio thread wakes it."""
        with self._drain_lock:
            if self._closed or self._is_drained():
                return
            if self._drain_event is None:
                self._drain_loop = asyncio.get_running_loop()
                self._drain_event = asyncio.Event()
            event = self._drain_event
        await event.wait()

    def _is_drained(self) -> bool:
        return self._buffer.pending_bytes == 0

    def keep(self) -> None:
        """A device keeps nothing: what it played has been heard."""

    def discard(self) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def _wake_drained(self) -> None:
        """Audio thread, after every block: releases drained() waiters once the buffer is empty."""
        with self._drain_lock:
            event, loop = self._drain_event, self._drain_loop
            if event is None or loop is None or not (self._closed or self._is_drained()):
                return
            self._drain_event = self._drain_loop = None
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

    Mono, as every reader of these files expects: an overlay is mixed in as its downmix (the
    guide's pitch, tick rate and chime are there, left/right is not).

    A clock thread writes one 20 ms block per tick on absolute deadlines (catching up after a
    stall), silence when nothing is queued, so the file's timeline is what a listener heard and
    its length is the wall time the sink was open. The header is patched and the file flushed
    on every block, so the file is a valid WAV at every moment, even after a crash.

    It is written under a temporary name in the same folder, and moved into place (os.replace)
    by `keep()` (the conversation calls it when answer audio comes) or by `close()` (a run that
    ended); `discard()` (a run that failed before any answer) removes it. So a file the user
    already had is replaced only by one that holds something, never truncated by a failed run.
    `start()` runs on a worker thread, the rest on the loop thread; `_lock` orders them.
    """

    def __init__(
        self, path: Path, on_played: PlayedCallback | None = None, overlay: Overlay | None = None
    ) -> None:
        super().__init__(f"WAV file {path}", SPEAKER_RATE_HZ, on_played)
        self._path = path
        self._overlay = overlay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._part: Path | None = None  # the file while not yet in place

    def start(self) -> None:
        with self._lock:
            if self._closed:  # closed before it opened: another device failed
                return
            self._part, file = self._create_part()
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

    def _create_part(self) -> tuple[Path, BinaryIO]:
        """A new file next to the target, with the target's permissions if it exists."""
        path = self._path
        if not path.parent.is_dir():
            raise UserError(f"cannot write speaker WAV {path}: its folder does not exist")
        if path.exists() and not os.access(path, os.W_OK):
            raise UserError(f"cannot write speaker WAV {path}: Permission denied")
        part = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as e:
            raise UserError(f"cannot write speaker WAV {path}: {e.strerror}") from None
        with contextlib.suppress(OSError):
            os.chmod(fd, stat.S_IMODE(path.stat().st_mode))
        return part, os.fdopen(fd, "wb")

    def _run_clock(self, file: BinaryIO, writer: wave.Wave_write) -> None:
        t0 = time.monotonic()
        n = 0
        try:
            while not self._stop.is_set():
                while t0 + n * CHUNK_S <= time.monotonic():  # catch up on missed deadlines
                    block = self._buffer.pop(SPEAKER_BLOCK_BYTES).ljust(SPEAKER_BLOCK_BYTES, b"\0")
                    _, block = mix(block, self._overlay)
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

    def keep(self) -> None:
        """Put the file in place now (once); the clock thread writes on into it there."""
        with self._lock:
            part, self._part = self._part, None
            if part is None:
                return
            try:
                os.replace(part, self._path)
            except OSError as e:
                self._part = part
                raise UserError(f"cannot write speaker WAV {self._path}: {e.strerror}") from None

    def discard(self) -> None:
        """Stop; a file not yet kept is removed, and one the user had stays as it was."""
        self._end()
        with self._lock:
            part, self._part = self._part, None
        if part is not None:
            part.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop, and put the file in place: the run ended, so what was played is the file."""
        self._end()
        with contextlib.suppress(UserError):  # the folder went away: nothing to keep it in
            self.keep()

    def _end(self) -> None:
        with self._lock:  # a start() under way finishes first, or never begins
            self._closed = True
            thread = self._thread
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self._wake_drained()
