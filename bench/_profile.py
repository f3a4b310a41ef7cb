"""py-spy (PyPI `py-spy`, optional) on a running client, summarised as shares of one core.

`py-spy record --threads --format raw` writes one line per distinct stack:
`thread (TID): NAME;outer frame;...;innermost frame COUNT`. Here py-spy also samples threads
that wait (a lock, the selector, an idle worker), so stacks whose innermost frame is such a
wait are dropped; a count divided by (rate x seconds) is then a share of one core, and the
total comes out close to the /proc figure. Native code shows as the Python line calling it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE_HZ = 100
_LOCATION = re.compile(r" \((?P<where>[^()]*)\)$")
IDLE_LEAVES = (
    "Condition.wait (threading.py",
    "EpollSelector.select (selectors.py",
    "_worker (concurrent/futures/thread.py:81)",  # an idle to_thread worker: queue.get()
)


def py_spy() -> str | None:
    """The py-spy executable beside this Python, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path) -> bool:
    """Sample `pid` for `seconds` (blocking); False if py-spy is missing or failed."""
    exe = py_spy()
    if exe is None:
        return False
    args = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--threads"]
    args += ["--rate", str(RATE_HZ), "--format", "raw", "-o", str(out)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    return done.returncode == 0 and out.exists()


def _stacks(path: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.strip().split(";")
        if count.isdigit() and len(frames) > 1 and not frames[-1].startswith(IDLE_LEAVES):
            out.append((frames, int(count)))
    return out


def _short(frame: str, *, line: bool) -> str:
    """`name (path/to/file.py:12)` -> `name (file.py:12)`, or `name (file.py)`."""
    match = _LOCATION.search(frame)
    if not match:
        return frame
    where = match["where"].rsplit("/", 1)[-1]
    return f"{frame[: match.start()]} ({where if line else where.split(':')[0]})"


def _is_ours(frame: str) -> bool:
    """Frames worth naming inclusively: the product and its Live API path, not the runners."""
    wanted = ("shelfsight/", "genai/", "websockets/")
    runners = ("shelfsight/cli.py", "shelfsight/__main__.py", "shelfsight/app.py")
    return any(w in frame for w in wanted) and not any(r in frame for r in runners)


def thread_names(path: Path) -> dict[int, str]:
    """Thread id -> name, from py-spy's `thread (TID): NAME` stack roots."""
    names = {}
    for line in path.read_text().splitlines():
        match = re.match(r"thread \((\d+)\): ([^;]*)", line)
        if match:
            names[int(match[1])] = match[2]
    return names


def print_os_threads(path: Path, shares: dict[int, float], top: int = 8) -> None:
    """Every OS thread's CPU share (from /proc), named where it is a Python thread."""
    names = thread_names(path)
    print(f"\nOS threads (/proc): {sum(shares.values()):.1%} of one core in all")
    for tid, share in sorted(shares.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {share:6.1%}  {names.get(tid, '(not a Python thread: FFmpeg/OpenCV/BLAS)')}")


def summarise(
    path: Path, seconds: float, os_threads: dict[int, float] | None = None, top: int = 12
) -> None:
    """Print where the CPU went: per thread, per line (self) and per function (inclusive)."""
    if os_threads:
        print_os_threads(path, os_threads)
    stacks = _stacks(path)
    per_core = RATE_HZ * seconds
    threads: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for frames, count in stacks:
        threads[frames[0].split(": ", 1)[-1]] += count
        lines[_short(frames[-1], line=True)] += count
        for name in {_short(f, line=False) for f in frames[1:] if _is_ours(f)}:
            functions[name] += count
    total = sum(threads.values())
    print(f"\nprofile: {total / per_core:.1%} of one core busy, sampled over {seconds:.0f} s")
    for title, counter in (
        ("per thread", threads),
        ("per line (self: the line running, native code it calls included)", lines),
        ("per function of shelfsight, google-genai, websockets (inclusive)", functions),
    ):
        print(f"  {title}:")
        for name, count in counter.most_common(top):
            print(f"    {count / per_core:6.1%}  {name}")
