"""What the benchmarks share: helper processes, test media, /proc sampling and the printout.

All times are time.monotonic() seconds (CLOCK_MONOTONIC, shared by every process on Linux),
so the stand-in's receive times, the camera's capture times and the client's own compare.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from shelfsight.media.wav import write_wav
from shelfsight.standin import client_env, synth_speech_pcm16
from tests.support.scene import write_shelf_video

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BENCH_KEY = "bench-key-not-secret"
MIC_RATE_HZ = 16000


# ---- figures -------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def ms(values: Sequence[float]) -> str:
    """p50 / p95 / max of seconds, printed in milliseconds."""
    if not values:
        return "no samples"
    v = [x * 1000 for x in values]
    return f"p50 {pct(v, 50):7.1f}  p95 {pct(v, 95):7.1f}  max {max(v):7.1f} ms  (n={len(v)})"


def ms3(values: Sequence[float]) -> str:
    """`p50 / p95 / max` of seconds in milliseconds, for table cells."""
    if not values:
        return "-"
    v = [x * 1000 for x in values]
    return f"{pct(v, 50):.1f} / {pct(v, 95):.1f} / {max(v):.1f}"


def table(title: str, rows: Sequence[Sequence[str]]) -> None:
    """A plain aligned table: the first row is the header."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for k, row in enumerate(rows):
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))


# ---- media -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MicScript:
    """A mic WAV of spoken questions; segments are (start, end) sample indices at 16 kHz."""

    path: Path
    segments: list[tuple[int, int]]
    n_samples: int


def question_mic(
    path: Path, *, turns: int, speech_s: float = 1.5, gap_s: float = 4.0, lead_s: float = 1.0
) -> MicScript:
    """`turns` questions of `speech_s`, each followed by `gap_s` of silence for the answer."""
    speech = synth_speech_pcm16(speech_s, MIC_RATE_HZ)
    parts, segments, pos = [bytes(int(lead_s * MIC_RATE_HZ) * 2)], [], int(lead_s * MIC_RATE_HZ)
    for _ in range(turns):
        segments.append((pos, pos + len(speech) // 2))
        parts += [speech, bytes(int(gap_s * MIC_RATE_HZ) * 2)]
        pos += len(speech) // 2 + int(gap_s * MIC_RATE_HZ)
    write_wav(path, b"".join(parts), MIC_RATE_HZ)
    return MicScript(path, segments, pos)


def shelf_video(path: Path, *, seconds: float, size: tuple[int, int], fps: float = 30.0) -> Path:
    """An MJPEG AVI of numbered shelf frames; the camera loops it at its own frame rate."""
    if not path.exists():
        write_shelf_video(path, seconds=seconds, fps=fps, size=size)
    return path


# ---- helper processes ------------------------------------------------------------------------


class Helper:
    """A `bench/_servers.py` process: `ready` is its first JSON line, `finish()` its report.
    `prefix` goes before the command (e.g. `ip netns exec NAME`)."""

    def __init__(self, *args: str, prefix: Sequence[str] = ()) -> None:
        self._proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "bench._servers", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench helper {args[0]} failed to start")
        self.ready: dict[str, Any] = json.loads(line)
        self._report: dict[str, Any] | None = None

    def finish(self) -> dict[str, Any]:
        if self._report is None:
            out, _ = self._proc.communicate("dump\n", timeout=120)
            self._report = json.loads(out.strip().splitlines()[-1])
        return self._report

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


@dataclass
class Connection:
    """One connection as the stand-in saw it (see _servers.standin_records)."""

    received: list[tuple[float, str, int, int | None]]
    sent: list[tuple[float, str, int]]
    turns: list[tuple[str, float, float | None, str]]

    def got(self, kind: str) -> list[tuple[float, str, int, int | None]]:
        return [e for e in self.received if e[1] == kind]

    def gave(self, kind: str) -> list[tuple[float, str, int]]:
        return [e for e in self.sent if e[1] == kind]


class StandInProcess(Helper):
    def __init__(
        self,
        *,
        speed: float = 1.0,
        answer: str = "speech",
        answer_s: float = 1.5,
        extra: Sequence[str] = (),
        prefix: Sequence[str] = (),
    ):
        super().__init__(
            "standin",
            *("--speed", str(speed), "--answer", answer, "--answer-s", str(answer_s)),
            *extra,
            prefix=prefix,
        )
        self.base_url: str = self.ready["base_url"]
        self.ca_pem: str = self.ready["ca_pem"]

    def env(self) -> dict[str, str]:
        """What points the real SDK in a child process at this stand-in."""
        return client_env(self.base_url, self.ca_pem, BENCH_KEY)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_pem)

    def connections(self) -> list[Connection]:
        return [
            Connection(
                [tuple(e) for e in c["received"]],  # type: ignore[misc]
                [tuple(e) for e in c["sent"]],  # type: ignore[misc]
                [tuple(t) for t in c["turns"]],  # type: ignore[misc]
            )
            for c in self.finish()["connections"]
        ]


class MjpegProcess(Helper):
    def __init__(self, *, size: str = "1280x720", fps: float = 30.0) -> None:
        super().__init__("mjpeg", "--size", size, "--fps", str(fps))
        self.url: str = self.ready["url"]

    def made(self) -> dict[int, float]:
        """Frame number -> monotonic time the camera began it."""
        return {int(n): float(t) for n, t in self.finish()["made"]}


# ---- the client as a child process -----------------------------------------------------------


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without any real key, endpoint or shelfsight setting, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "SHELFSIGHT_")) and k != "SSL_CERT_FILE"
    }
    # An empty config, never the user's (a config named by SHELFSIGHT_CONFIG must exist).
    env["SHELFSIGHT_CONFIG"] = os.devnull
    return {**env, **extra}


CLI = [sys.executable, "-m", "shelfsight"]
NAIVE = [sys.executable, "-m", "bench._naive"]


def start_child(argv: Sequence[str], env: dict[str, str], log: IO[str]) -> subprocess.Popen[str]:
    """A child with its output in `log` (a pipe could fill up and block it)."""
    return subprocess.Popen(
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


@dataclass
class ProcSample:
    t_monotonic: float
    cpu_s: float  # user + system CPU time of the whole process (all threads)
    rss_mb: float


def sample_proc(pid: int) -> ProcSample | None:
    """CPU time and resident memory of a live process from /proc (None once it has gone)."""
    import time

    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_s = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return ProcSample(time.monotonic(), cpu_s, rss_kb / 1024)


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a live process, by thread id (empty once it has gone)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


@dataclass
class Windows:
    """Time windows [(start, end)] on the monotonic clock, for classifying events."""

    spans: list[tuple[float, float]] = field(default_factory=list)

    def contains(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.spans)

    def total_s(self) -> float:
        return sum(b - a for a, b in self.spans)


def pairs(items: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    return zip(items, items[1:], strict=False)
