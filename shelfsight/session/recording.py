"""Session recordings: a folder written as the session goes, readable at every moment.

Layout of a session folder:

    manifest.json   settings, model, versions, start time (never the key); rewritten at the end
    events.jsonl    one JSON object per line: {"t": seconds since start, "type": ..., ...}
    mic.wav         the 16 kHz mono PCM16 audio sent to the Live API, contiguous
    answer.wav      the 24 kHz mono PCM16 answer audio received, contiguous; `answer_audio`
                    events give each chunk's byte offset and arrival time
    frames/NNNNNN.jpg  every frame sent; `frame` events give its send time

All writing happens on one writer thread fed by an unbounded queue, so the event loop never
waits on the disk. Each event line and each audio chunk is flushed as it is written and the WAV
headers are patched on every write, so after Ctrl-C, a crash or SIGKILL the folder holds a
complete, readable record up to that moment.
"""

from __future__ import annotations

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
from shelfsight.errors import UserError

log = logging.getLogger(__name__)

MIC_RATE_HZ = 16000
ANSWER_RATE_HZ = 24000
Job = Callable[[], None]


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

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
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
        self._write_manifest()
        self._mic = _open_wav(folder / "mic.wav", MIC_RATE_HZ)
        self._answer = _open_wav(folder / "answer.wav", ANSWER_RATE_HZ)
        self._answer_bytes = 0
        self._frames = 0
        self._mic_started = False
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="recorder", daemon=True)
        self._thread.start()
        self.event("session_start", wall=started)

    def now(self) -> float:
        return round(time.monotonic() - self._t0, 4)

    def event(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"t": self.now(), "type": kind, **fields}, ensure_ascii=False)
        self._jobs.put(lambda: self._write_line(line))

    def mic(self, pcm: bytes) -> None:
        if not self._mic_started:
            self._mic_started = True
            self.event("mic_start")
        self._jobs.put(lambda: _append(self._mic, pcm))

    def answer_audio(self, pcm: bytes) -> None:
        self.event("answer_audio", offset=self._answer_bytes, bytes=len(pcm))
        self._answer_bytes += len(pcm)
        self._jobs.put(lambda: _append(self._answer, pcm))

    def frame(self, jpeg: bytes, *, width: int, height: int, age_ms: float | None = None) -> None:
        self._frames += 1
        name = f"frames/{self._frames:06d}.jpg"
        path = self.folder / name
        self.event("frame", file=name, width=width, height=height, bytes=len(jpeg), age_ms=age_ms)

        def write() -> None:
            path.write_bytes(jpeg)

        self._jobs.put(write)

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
        self._jobs.put(self._write_manifest)
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
            while (job := self._jobs.get()) is not None:
                job()
        finally:
            for wav in (self._mic, self._answer):
                wav.close()
            self._events.close()

    def _write_line(self, line: str) -> None:
        self._events.write(line + "\n")
        self._events.flush()

    def _write_manifest(self) -> None:
        tmp = self.folder / "manifest.json.tmp"
        tmp.write_text(json.dumps(self._manifest, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.folder / "manifest.json")


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
