"""Session recordings: a folder written as the session goes, readable at every moment.

Layout of a session folder:

    manifest.json   settings, model, versions, start time (never the key); rewritten at the end
    events.jsonl    one JSON object per line: {"t": seconds since start, "type": ..., ...}
    mic.wav         the 16 kHz mono PCM16 audio sent to the Live API, contiguous
    answer.wav      the 24 kHz mono PCM16 answer audio received, contiguous; `answer_audio`
                    events give each chunk's byte offset and arrival time
    frames/NNNNNN.jpg  every frame sent; `frame` events give its send time

All writing happens on one writer thread fed by a queue, so the event loop never waits on the
disk. Each event line and each audio chunk is flushed as it is written and the WAV headers are
patched on every write, so after Ctrl-C, a crash or SIGKILL the folder holds a complete,
readable record up to that moment.

A recording never ends the session. When a write fails (disk full, folder removed, no
permission) or the disk falls `MAX_PENDING_BYTES` behind, the recording stops there: `on_stop`
gets one line saying why and where (the caller shows it), nothing more is queued (memory stays
flat), and the manifest is still finalised if the disk lets it, with `recording_stopped_at_s`
and `recording_error`. The queue's policy: unbounded by count, bounded by bytes; past the bound
the recording stops rather than the loop waiting or memory growing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import queue
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shelfsight import __version__
from shelfsight.core.pcm import MIC_RATE_HZ, SPEAKER_RATE_HZ
from shelfsight.core.phrases import phrase
from shelfsight.errors import UserError

log = logging.getLogger(__name__)

ANSWER_RATE_HZ = SPEAKER_RATE_HZ
Job = Callable[[], None]
MANIFEST_RESERVE_BYTES = 16 * 1024  # room for the final manifest, even on a full disk
MAX_PENDING_BYTES = 64 * 1024 * 1024  # about 15 min of audio and frames the disk may fall behind


def session_folder_name(now: datetime | None = None) -> str:
    return (now or datetime.now()).strftime("%Y-%m-%dT%H-%M-%S")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"shelfsight": __version__, "python": platform.python_version()}
    for package in ("google-genai", "opencv-python", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    found["platform"] = platform.platform()
    return found


class Recorder:
    """Records one session into `folder`; methods are cheap and safe to call from the loop."""

    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        on_stop: Callable[[str], None] | None = None,
    ) -> None:
        """`on_stop(line)` is called once, on the writer thread, if the recording stops early."""
        self.on_stop = on_stop
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "frames").mkdir(exist_ok=True)
            if (folder / "events.jsonl").exists():
                raise UserError(f"{folder} already holds a recording: pick a new folder.")
            self._events = open(folder / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise UserError(f"Cannot record into {folder}: {exc.strerror or exc}") from None
        self.folder = folder
        self._t0 = time.monotonic()
        started = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._manifest = {
            "format": 1,
            "started_at": started,
            "versions": versions(),
            **manifest,
        }
        try:
            self._write_manifest()
            self._mic = _open_wav(folder / "mic.wav", MIC_RATE_HZ)
            self._answer = _open_wav(folder / "answer.wav", ANSWER_RATE_HZ)
        except OSError as exc:
            self._events.close()
            raise UserError(f"Cannot record into {folder}: {exc.strerror or exc}") from None
        self._answer_bytes = 0
        self._frames = 0
        self._mic_started = False
        self._lock = threading.Lock()
        self._pending_bytes = 0  # queued and not yet written (loop adds, writer subtracts)
        self.error: str | None = None  # why the recording stopped early
        self.stopped_at_s: float | None = None
        self._jobs: queue.SimpleQueue[tuple[Job, int] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="recorder", daemon=True)
        self._thread.start()
        self.event("session_start", wall=started)

    def now(self) -> float:
        return round(time.monotonic() - self._t0, 4)

    def event(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"t": self.now(), "type": kind, **fields}, ensure_ascii=False)
        self._queue(lambda: self._write_line(line), len(line))

    def mic(self, pcm: bytes) -> None:
        if not self._mic_started:
            self._mic_started = True
            self.event("mic_start")
        self._queue(lambda: _append(self._mic, pcm), len(pcm))

    def answer_audio(self, pcm: bytes) -> None:
        self.event("answer_audio", offset=self._answer_bytes, bytes=len(pcm))
        self._answer_bytes += len(pcm)
        self._queue(lambda: _append(self._answer, pcm), len(pcm))

    def frame(self, jpeg: bytes, *, width: int, height: int, age_ms: float | None = None) -> None:
        self._frames += 1
        name = f"frames/{self._frames:06d}.jpg"
        path = self.folder / name
        self.event("frame", file=name, width=width, height=height, bytes=len(jpeg), age_ms=age_ms)

        def write() -> None:
            path.write_bytes(jpeg)

        self._queue(write, len(jpeg))

    def _queue(self, job: Job, nbytes: int) -> None:
        """Hand a write to the writer thread; nothing once the recording has stopped."""
        if self.error is not None:
            return
        with self._lock:
            self._pending_bytes += nbytes
            behind = self._pending_bytes > MAX_PENDING_BYTES
        if behind:
            self._stop(f"the disk fell {MAX_PENDING_BYTES // 2**20} MB behind")
            return
        self._jobs.put((job, nbytes))

    def close(self, **summary: Any) -> None:
        """Finish the folder: last event, final manifest; idempotent."""
        if not self._thread.is_alive():
            return
        self.event("session_end")
        self._manifest.update(
            ended_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            duration_s=self.now(),
            frames=self._frames,
            **summary,
        )
        self._jobs.put((self._finish_manifest, 0))  # runs even after a failure: "if possible"
        self._jobs.put(None)
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            log.warning(
                "recording into %s is still being written; it finishes on its own", self.folder
            )

    def _write_loop(self) -> None:
        """Writer thread: runs every job in order, then closes the files itself, so nothing
        is closed under a write that is still going (a slow disk outlasting close())."""
        try:
            while (entry := self._jobs.get()) is not None:
                job, nbytes = entry
                with self._lock:
                    self._pending_bytes -= nbytes
                if self.error is not None and job != self._finish_manifest:
                    continue  # stopped: drop what was queued before the stop was seen
                try:
                    job()
                except OSError as exc:
                    self._stop(exc.strerror or str(exc))
        finally:
            for closer in (self._mic.close, self._answer.close, self._events.close):
                with contextlib.suppress(OSError):
                    closer()

    def _stop(self, why: str) -> None:
        """End the recording here (any thread); the session goes on."""
        with self._lock:
            if self.error is not None:
                return
            self.error, self.stopped_at_s = why, self.now()
        log.warning("recording into %s stopped at %.1f s: %s", self.folder, self.stopped_at_s, why)
        if self.on_stop is not None:
            at_s, folder = self.stopped_at_s, self.folder
            self.on_stop(phrase("recording_stopped", seconds=at_s, why=why, folder=folder))

    def _finish_manifest(self) -> None:
        if self.error is not None:
            self._manifest.update(
                recording_stopped_at_s=self.stopped_at_s, recording_error=self.error
            )
        with contextlib.suppress(OSError):  # the disk may still be full
            self._write_manifest()

    def _write_line(self, line: str) -> None:
        self._events.write(line + "\n")
        self._events.flush()

    def _write_manifest(self) -> None:
        """Replace the manifest atomically; on a full disk, overwrite it in place instead.

        The manifest is padded with spaces (valid JSON) to `MANIFEST_RESERVE_BYTES`, so the
        final one fits in blocks the file already holds when no new block can be had.
        """
        text = json.dumps(self._manifest, indent=2, default=str) + "\n"
        data = text.ljust(MANIFEST_RESERVE_BYTES).encode("utf-8")
        path, tmp = self.folder / "manifest.json", self.folder / "manifest.json.tmp"
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not path.is_file() or path.stat().st_size < len(data):
                raise
            with open(path, "r+b") as out:
                out.write(data)
                out.truncate(len(data))


def _open_wav(path: Path, rate_hz: int) -> wave.Wave_write:
    wav = wave.open(str(path), "wb")
    wav.setnchannels(1)
    wav.setsampwidth(2)
    wav.setframerate(rate_hz)
    wav.writeframes(b"")  # header on disk now: an empty recording is still a valid WAV
    wav._file.flush()  # type: ignore[attr-defined]
    return wav


def _append(wav: wave.Wave_write, pcm: bytes) -> None:
    """Append and patch the header (wave does so when nframes was not preset), then flush."""
    wav.writeframes(pcm)
    wav._file.flush()  # type: ignore[attr-defined]


# ---- reading a recording back ---------------------------------------------------------------


@dataclass(frozen=True)
class RecordedSession:
    folder: Path
    manifest: dict[str, Any]
    events: list[dict[str, Any]]

    @property
    def duration_s(self) -> float:
        return float(
            self.manifest.get("duration_s") or (self.events[-1]["t"] if self.events else 0)
        )

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def answer_pcm(self) -> bytes:
        return _read_wav(self.folder / "answer.wav")

    def mic_pcm(self) -> bytes:
        return _read_wav(self.folder / "mic.wav")


def load_session(folder: Path) -> RecordedSession:
    """Read a session folder, tolerating a cut-off last event line (a killed recorder)."""
    if not (folder / "events.jsonl").is_file():
        raise UserError(f"{folder} is not a shelfsight recording (no events.jsonl).")
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        manifest = {}
    events: list[dict[str, Any]] = []
    for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the line being written when the process died
    return RecordedSession(folder, manifest, events)


def _read_wav(path: Path) -> bytes:
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise UserError(f"Cannot read {path}: {exc}") from None


class NullRecorder:
    """Stands in for `Recorder` when a session is not recorded."""

    folder: Path | None = None

    def event(self, kind: str, **fields: Any) -> None:
        pass

    def mic(self, pcm: bytes) -> None:
        pass

    def answer_audio(self, pcm: bytes) -> None:
        pass

    def frame(self, jpeg: bytes, *, width: int, height: int, age_ms: float | None = None) -> None:
        pass

    def close(self, **summary: Any) -> None:
        pass
