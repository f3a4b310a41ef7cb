"""Holes and added delay of the speaker's jitter buffer under arrival jitter and a busy CPU.

Answer chunks (40 ms of 24 kHz PCM16) are paced at real time, the worst case (the service
usually sends faster), each delayed by a random 0..J ms and delivered in order, as over TCP.
The same arrivals feed two buffers, each drained by its own 20 ms real-time clock thread as
`WavSpeaker` drains it: the adaptive buffer (`JitterBuffer`) and one with no margin and no
slow-link hold (how the buffer behaved before). "holes" counts 20 ms blocks that came out short
between an answer's first and last sample; "added delay" is how long each chunk waited in the
buffer after it arrived (p95). "busy" runs two processes spinning on the 2 cores meanwhile.
Answers arriving slower than real time: `python -m bench.slow_playout`.

    .venv/bin/python -m bench.jitter [--answers 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import threading
import time
from dataclasses import dataclass, field

from bench._common import pct, table
from shelfsight.media.speaker import JitterBuffer

RATE_HZ = 24_000
CHUNK_S = 0.04
BLOCK_S = 0.02
BLOCK_BYTES = int(RATE_HZ * BLOCK_S) * 2
CHUNK_BYTES = int(RATE_HZ * CHUNK_S) * 2
PAUSE_S = 1.0


@dataclass
class Drain:
    """A 20 ms real-time clock thread popping one buffer; records what it played when."""

    buffer: JitterBuffer
    played_bytes: int = 0
    holes: int = 0
    last_full: bool = False
    t_played: list[tuple[float, int]] = field(default_factory=list)  # (t, bytes played before)

    def run(self, total_bytes: int, stop: threading.Event) -> None:
        t0, n = time.monotonic(), 0
        while not stop.is_set() and self.played_bytes < total_bytes:
            while t0 + n * BLOCK_S <= time.monotonic():
                block = self.buffer.pop(BLOCK_BYTES)
                self.t_played.append((time.monotonic(), self.played_bytes))
                started = self.played_bytes > 0
                was_full = self.last_full
                self.played_bytes += len(block)
                self.last_full = len(block) == BLOCK_BYTES
                if started and was_full and not self.last_full and self.played_bytes < total_bytes:
                    self.holes += 1  # one hole per dropout, however many blocks it lasts
                n += 1
            stop.wait(max(0.0, t0 + n * BLOCK_S - time.monotonic()))

    def waited_s(self, arrivals: list[float]) -> list[float]:
        """Per chunk: time from its arrival until its first sample was played."""
        out, k = [], 0
        for i, t_arrived in enumerate(arrivals):
            offset = i * CHUNK_BYTES
            while k + 1 < len(self.t_played) and self.t_played[k + 1][1] <= offset:
                k += 1
            out.append(max(0.0, self.t_played[k][0] - t_arrived))
        return out


def make_buffers() -> dict[str, JitterBuffer]:
    """One speaker's buffers, kept across its answers as a sink keeps its own."""
    return {
        "adaptive": JitterBuffer(RATE_HZ),
        "no margin": JitterBuffer(RATE_HZ, margin_s=0.0, min_s=0.0, max_s=0.0, max_hold_s=0.0),
    }


def one_answer(
    buffers: dict[str, JitterBuffer], jitter_s: float, seconds: float, rng: random.Random
) -> dict[str, tuple[int, list]]:
    n_chunks = int(seconds / CHUNK_S)
    drains = {name: Drain(b) for name, b in buffers.items()}
    stop = threading.Event()
    total = n_chunks * CHUNK_BYTES
    threads = [threading.Thread(target=d.run, args=(total, stop)) for d in drains.values()]
    chunk = b"\x01\x00" * (CHUNK_BYTES // 2)
    arrivals: list[float] = []
    t0 = time.monotonic() + PAUSE_S  # the user asks between answers
    for t in threads:
        t.start()
    last = t0
    for i in range(n_chunks):
        due = max(last, t0 + i * CHUNK_S + rng.uniform(0.0, jitter_s))
        time.sleep(max(0.0, due - time.monotonic()))
        last = time.monotonic()
        for b in buffers.values():
            b.push(chunk)
        arrivals.append(last)
    for t in threads:
        t.join(timeout=seconds + 2)
    stop.set()
    return {name: (d.holes, d.waited_s(arrivals)) for name, d in drains.items()}


def spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        sum(i * i for i in range(1000))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answers", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    rng = random.Random(12)
    rows = []
    for busy in (False, True):
        for jitter_ms in (0, 30, 60):
            spinners = []
            if busy:
                stop_at = time.monotonic() + args.answers * (args.seconds + 0.5) + 1
                spinners = [multiprocessing.Process(target=spin, args=(stop_at,)) for _ in range(2)]
                for p in spinners:
                    p.start()
            results: dict[str, tuple[list[int], list[float]]] = {}
            buffers = make_buffers()
            for _ in range(args.answers):
                answer = one_answer(buffers, jitter_ms / 1000, args.seconds, rng)
                for name, (holes, waited) in answer.items():
                    h, w = results.setdefault(name, ([], []))
                    h.append(holes)
                    w.extend(waited)
            for p in spinners:
                p.terminate()
                p.join()
            for name, (holes, waited) in results.items():
                with_holes = sum(1 for h in holes if h)
                rows.append(
                    [
                        "busy" if busy else "idle",
                        f"{jitter_ms} ms",
                        name,
                        f"{with_holes}/{len(holes)}",
                        str(sum(holes)),
                        f"{pct(waited, 50) * 1000:.0f}",
                        f"{pct(waited, 95) * 1000:.0f}",
                        f"{buffers[name].margin_s * 1000:.0f}",
                    ]
                )
    table(
        f"jitter buffer: {args.answers} answers of {args.seconds:g} s per row "
        "(target: no holes under 30-60 ms jitter, added delay p95 <= ~60 ms)",
        [
            [
                "cpu",
                "jitter",
                "buffer",
                "answers with holes",
                "holes",
                "delay p50 ms",
                "delay p95 ms",
                "margin ms at end",
            ],
            *rows,
        ],
    )


if __name__ == "__main__":
    main()
