"""Soak: a whole shopping trip through goAways and server errors, with nothing lost.

The real CLI (`shelfsight run`) runs in a child process against the stand-in (on a thread of
this process): a looping shelf video as camera, a WAV mic asking the bundled question every
20 s over a faint noise floor, a WAV speaker. Every connection gets a goAway 60 s after its
setup; every 7 minutes every open connection is closed with 1011.

Printed: questions asked vs answered, mic seconds captured vs delivered (each 20 ms mic chunk
is unique thanks to the noise floor, so each chunk the stand-in received is placed in the mic
file; re-sent chunks count once), the reconnect gap (stand-in clock: last audio on a connection
to first audio on the next), and the client's resident memory 20 s in and at the end.
Targets: every question answered, 100 % of mic audio delivered, gap < 1 s, RSS growth < 20 MB.

    python -m bench.soak [--minutes 30] [--go-away-every-s 60] [--crash-every-min 7]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.standin import (
    ConnectionFaults,
    ConnectionRecord,
    StandIn,
    StandInConfig,
    client_env,
)
from tests.support.scene import write_shelf_video

ROOT = Path(__file__).resolve().parent.parent
QUESTION_WAV = ROOT / "shelfsight" / "assets" / "question.wav"
RATE_HZ = 16_000
CHUNK_BYTES = 640  # the client's 20 ms mic chunk
NOISE_RMS = 30.0  # about -61 dBFS: below every speech threshold, but no two chunks alike


@dataclass(frozen=True)
class Mic:
    path: Path
    pcm: bytes
    questions_s: list[tuple[float, float]]  # (start, end) of each question in the file


def write_mic(folder: Path, minutes: float, every_s: float) -> Mic:
    question = np.frombuffer(load_mic_pcm(QUESTION_WAV), "<i2").astype(np.int32)
    total = int(minutes * 60 * RATE_HZ)
    signal = np.random.default_rng(7).normal(0.0, NOISE_RMS, total).astype(np.int32)
    spans = []
    for start_s in np.arange(5.0, minutes * 60 - 10.0, every_s):
        at = int(start_s * RATE_HZ)
        signal[at : at + len(question)] += question
        spans.append((float(start_s), float(start_s + len(question) / RATE_HZ)))
    pcm = np.clip(signal, -32768, 32767).astype("<i2").tobytes()
    path = folder / "mic.wav"
    write_wav(path, pcm, RATE_HZ)
    return Mic(path, pcm, spans)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_client(
    standin_url: str, ca: Path, folder: Path, mic: Path, args: argparse.Namespace, close_all: object
) -> tuple[int, float | None, float | None, float]:
    """Runs the CLI to the end; returns exit code, RSS at 20 s and at the end, and max RSS."""
    video = write_shelf_video(folder / "shelf.avi", seconds=3.0)
    env = {**os.environ, **client_env(standin_url, ca, "soak-key-not-secret")}
    command = [
        sys.executable,
        "-m",
        "shelfsight",
        "run",
        "--plain",
        "--camera",
        str(video),
        "--mic",
        str(mic),
        "--speaker",
        str(folder / "speaker.wav"),
    ]
    log = (folder / "client.log").open("w")
    child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    t0 = time.monotonic()
    crash_every_s = args.crash_every_min * 60
    next_crash = crash_every_s
    next_print = 20.0
    rss_start = rss_end = None
    rss_max = 0.0
    while child.poll() is None:
        time.sleep(1.0)
        elapsed = time.monotonic() - t0
        rss = rss_mb(child.pid)
        if rss is not None:
            rss_end, rss_max = rss, max(rss_max, rss)
            if rss_start is None and elapsed >= 20.0:
                rss_start = rss
        if elapsed >= next_crash:
            closed = close_all(1011)  # type: ignore[operator]
            print(f"  {elapsed / 60:5.1f} min: closed {closed} connection(s) with 1011", flush=True)
            next_crash += crash_every_s
        if elapsed >= next_print:
            print(f"  {elapsed / 60:5.1f} min: client RSS {rss or 0:.1f} MB", flush=True)
            next_print += 300.0
    log.close()
    return child.returncode, rss_start, rss_end, rss_max


def delivered_chunks(mic: bytes, connections: list[ConnectionRecord]) -> tuple[set[int], int, int]:
    """The mic chunk numbers the stand-in received, how many arrived more than once, and how
    many times a connection's audio skipped ahead of the chunk it should have continued with."""
    index = {mic[i : i + CHUNK_BYTES]: i // CHUNK_BYTES for i in range(0, len(mic), CHUNK_BYTES)}
    seen: set[int] = set()
    repeats = gaps = 0
    expected: int | None = None
    for conn in connections:
        for event in conn.received("audio"):
            k = index.get(event.data)
            if k is None:
                continue  # the silence the client sends after the mic file ended
            repeats += k in seen
            gaps += expected is not None and k > expected
            seen.add(k)
            expected = k + 1
    return seen, repeats, gaps


def answered_questions(mic: Mic, connections: list[ConnectionRecord]) -> tuple[set[int], int]:
    """Which questions got a completed answer (and how many answers came twice): each turn is
    placed in the mic file by the chunk its connection had received when the turn began."""
    index = {
        mic.pcm[i : i + CHUNK_BYTES]: i // CHUNK_BYTES for i in range(0, len(mic.pcm), CHUNK_BYTES)
    }
    answered: set[int] = set()
    twice = 0
    for conn in connections:
        audio = conn.received("audio")
        for turn in conn.turns():
            if turn.outcome != "completed" or not audio:
                continue
            n = min(len(audio), max(1, round(turn.input_audio_s / 0.02)))
            k = index.get(audio[n - 1].data)
            if k is None:
                continue
            t = k * 0.02
            for q, (_, end) in enumerate(mic.questions_s):
                if end <= t + 0.05 <= end + 4.0:
                    twice += q in answered
                    answered.add(q)
    return answered, twice


def reconnect_gaps(connections: list[ConnectionRecord]) -> tuple[list[float], list[float]]:
    """Seconds from the last audio on one connection to the first on the next: goAway
    switches and 1011 recoveries apart."""
    served = [c for c in connections if c.received("audio")]
    switches: list[float] = []
    recoveries: list[float] = []
    for old, new in zip(served, served[1:], strict=False):
        gap = new.received("audio")[0].t_monotonic - old.received("audio")[-1].t_monotonic
        server_closed = any(e.text.startswith("1011") for e in old.sent("close"))
        (recoveries if server_closed else switches).append(gap)
    return switches, recoveries


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q) * 1000:.0f} ms" if values else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--go-away-every-s", type=float, default=60.0)
    parser.add_argument("--go-away-time-left-s", type=float, default=10.0)
    parser.add_argument("--crash-every-min", type=float, default=7.0)
    parser.add_argument("--question-every-s", type=float, default=20.0)
    args = parser.parse_args()
    faults = ConnectionFaults(
        go_away_after_s=args.go_away_every_s, go_away_time_left_s=args.go_away_time_left_s
    )
    config = StandInConfig(default_faults=faults, keep_frames=False)
    with tempfile.TemporaryDirectory(prefix="shelfsight-soak-") as tmp:
        folder = Path(tmp)
        mic = write_mic(folder, args.minutes, args.question_every_s)
        print(
            f"soak: {args.minutes:g} min, goAway every {args.go_away_every_s:g} s, "
            f"1011 every {args.crash_every_min:g} min, {len(mic.questions_s)} questions",
            flush=True,
        )
        with StandIn.start_in_thread(config) as standin:
            code, rss_start, rss_end, rss_max = run_client(
                standin.base_url, standin.ca_pem_path, folder, mic.path, args, standin.close_all
            )
            connections = standin.server.connections
            log_tail = (folder / "client.log").read_text().splitlines()[-5:]
        report(code, mic, connections, (rss_start, rss_end, rss_max), log_tail)


def report(
    code: int,
    mic: Mic,
    connections: list[ConnectionRecord],
    rss: tuple[float | None, float | None, float],
    log_tail: list[str],
) -> None:
    seen, repeats, gaps = delivered_chunks(mic.pcm, connections)
    answered, twice = answered_questions(mic, connections)
    switches, recoveries = reconnect_gaps(connections)
    captured_s = len(mic.pcm) / 2 / RATE_HZ
    delivered_s = len(seen) * 0.02
    all_gaps = switches + recoveries
    rss_start, rss_end, rss_max = rss
    print(f"\nclient exit code           {code}")
    print(
        f"connections                {len(connections)} "
        f"({len(switches)} goAway switches, {len(recoveries)} 1011 recoveries)"
    )
    print(
        f"questions asked / answered {len(mic.questions_s)} / {len(answered)}"
        f"  (answered twice: {twice})"
    )
    print(
        f"mic captured / delivered   {captured_s:.1f} s / {delivered_s:.1f} s "
        f"({100 * delivered_s / captured_s:.2f} %); re-sent {repeats * 0.02:.1f} s, "
        f"skips {gaps}"
    )
    print(
        f"reconnect gap              p50 {pct(all_gaps, 50)}, max "
        f"{max(all_gaps) * 1000 if all_gaps else float('nan'):.0f} ms; goAway p50 "
        f"{pct(switches, 50)}, 1011 p50 {pct(recoveries, 50)}"
    )
    print(
        f"client RSS                 {rss_start or 0:.1f} MB at 20 s, {rss_end or 0:.1f} MB "
        f"at end (growth {(rss_end or 0) - (rss_start or 0):+.1f} MB, max {rss_max:.1f} MB)"
    )
    print("client log tail:\n  " + "\n  ".join(log_tail))


if __name__ == "__main__":
    main()
