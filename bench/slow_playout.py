"""Answers arriving slower than real time: gaps heard, start delay and finish, before and after.

On a slow phone downlink an answer's audio (24 kHz PCM16, ~512 kbit/s as the Live API's base64
JSON) arrives slower than it plays: measured 1.4x slower at 256 kbit/s (ratio 0.7) and 2.8x at
128 kbit/s (0.36). Each row is a session of answers of 2.5-8 s through one real `JitterBuffer`
(so what it learns carries from answer to answer, as in a speaker sink), on a simulated clock:
40 ms chunks arrive at `ratio` x real time, each 0..jitter late (in order, as over TCP), and a
20 ms audio clock pops it as `WavSpeaker` does. The next answer's first chunk comes PAUSE_S
after the previous one finished playing (the user asks again). "before" is the margin alone
(`max_hold_s=0`, the buffer as it was); "after" adds the slow-link hold.

gaps: holes heard between an answer's first and last sample (one per dropout); "1st" is each
session's first answer (the link not yet known slow: it starts at once and runs dry within
300 ms); start: from the answer's first chunk received to its first sample played; last chunk:
when its last chunk arrived (no policy can end before that); end: its last sample played;
notice: answers whose wait reached SLOW_NOTICE_S (when the session says "slow connection:
answers may lag").

    .venv/bin/python -m bench.slow_playout [--sessions 5] [--answers 12] [--jitter-ms 20]
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

from bench._common import pct, table
from shelfsight.media.playout import MAX_HOLD_S, SLOW_NOTICE_S, JitterBuffer

RATE_HZ = 24_000
CHUNK_S = 0.04
BLOCK_S = 0.02
BLOCK_BYTES = int(RATE_HZ * BLOCK_S) * 2
CHUNK_BYTES = int(RATE_HZ * CHUNK_S) * 2
PAUSE_S = 2.0
TICK_PHASE_S = 0.0037  # the audio clock's ticks never coincide with an arrival


class SimClock:
    """The simulated monotonic clock the buffer reads (seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Heard:
    """What a listener heard of one answer (seconds from its first chunk received)."""

    gaps: int
    start_s: float
    end_s: float
    last_chunk_s: float
    noticed: bool  # the buffer's slow_wait_s reached SLOW_NOTICE_S


def arrival_offsets(seconds: float, ratio: float, jitter_s: float, rng: random.Random) -> list:
    """Arrival times of an answer's 40 ms chunks (from when the first was due), in order."""
    out, last = [], 0.0
    for i in range(max(1, round(seconds / CHUNK_S))):
        last = max(last, i * CHUNK_S / ratio + rng.uniform(0.0, jitter_s))
        out.append(last)
    return out


class Session:
    """One speaker: a JitterBuffer on a simulated clock, fed answers one after another."""

    def __init__(self, *, slow_hold: bool = True, told_ends: bool = False) -> None:
        self.told_ends = told_ends  # the buffer is told where each answer ends, as a session does
        self.clock = SimClock()
        self.buffer = JitterBuffer(
            RATE_HZ, clock=self.clock, max_hold_s=MAX_HOLD_S if slow_hold else 0.0
        )
        if told_ends:
            self.buffer.answer_ended()  # connected: no answer under way
        self.tick = 0  # the next audio clock tick
        self.t_free = 1.0  # when the next answer may come

    def tick_at(self, k: int) -> float:
        return k * BLOCK_S + TICK_PHASE_S

    def answer(self, arrivals: list[float], *, clear_after_s: float | None = None) -> Heard:
        """Feed one answer whose chunks arrive at `arrivals` (offsets), play it to its end
        (or clear() it `clear_after_s` after its first chunk), and report what was heard."""
        t0 = self.t_free + arrivals[0]
        times = [self.t_free + a for a in arrivals]
        total = len(times) * CHUNK_BYTES
        chunk = b"\x01\x00" * (CHUNK_BYTES // 2)
        played, gaps, in_gap, noticed = 0, 0, False, False
        first: float | None = None
        i = 0
        while played < total:
            t_tick = self.tick_at(self.tick)
            if i < len(times) and times[i] <= t_tick:
                self.clock.now = times[i]
                self.buffer.push(chunk)
                i += 1
                if i == len(times) and self.told_ends:
                    self.buffer.answer_ended()  # the turn is complete
                continue
            if clear_after_s is not None and t_tick >= t0 + clear_after_s:
                self.clock.now = t0 + clear_after_s
                self.buffer.clear()
                self.t_free = self.clock.now + PAUSE_S
                return Heard(gaps, -1.0 if first is None else first - t0, -1.0, 0.0, noticed)
            self.clock.now = t_tick
            self.tick += 1
            got = len(self.buffer.pop(BLOCK_BYTES))
            noticed = noticed or self.buffer.slow_wait_s >= SLOW_NOTICE_S
            if got and first is None:
                first = t_tick
            played += got
            if got == BLOCK_BYTES:
                in_gap = False
            elif first is not None and played < total and not in_gap:
                gaps, in_gap = gaps + 1, True
            if played >= total:
                end = t_tick + got / 2 / RATE_HZ
        assert first is not None
        self.t_free = end + PAUSE_S
        return Heard(gaps, first - t0, end - t0, times[-1] - t0, noticed)


def run(ratio: float, jitter_s: float, answers: int, seed: int, slow_hold: bool) -> list[Heard]:
    rng = random.Random(seed)  # the same answers and arrivals for both policies
    session = Session(slow_hold=slow_hold)
    heard = []
    for _ in range(answers):
        seconds = rng.uniform(2.5, 8.0)
        heard.append(session.answer(arrival_offsets(seconds, ratio, jitter_s, rng)))
    return heard


def row(label: str, policy: str, sessions: list[list[Heard]]) -> list[str]:
    heard = [h for s in sessions for h in s]
    gaps = [h.gaps for h in heard]
    later = [h.gaps for s in sessions for h in s[1:]]
    start = [h.start_s for h in heard]
    late = [h.end_s - h.last_chunk_s for h in heard]
    return [
        label,
        policy,
        f"{sum(gaps) / len(gaps):.2f}",
        f"{max(s[0].gaps for s in sessions)} / {max(later)}",
        f"{sum(1 for g in gaps if g)}/{len(gaps)}",
        f"{pct(start, 50):.2f} / {max(start):.2f}",
        f"{pct([h.last_chunk_s for h in heard], 50):.2f}",
        f"{pct([h.end_s for h in heard], 50):.2f}",
        f"{pct(late, 50):.2f} / {max(late):.2f}",
        f"{sum(h.noticed for h in heard)}/{len(heard)}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--answers", type=int, default=12)
    ap.add_argument("--jitter-ms", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rows = []
    cases = [(r, args.jitter_ms) for r in (1.0, 0.7, 0.36)] + [(1.0, 60.0), (3.0, 20.0)]
    seeds = range(args.seed, args.seed + args.sessions)
    for ratio, jitter_ms in cases:
        label = f"{ratio:g}x, {jitter_ms:g} ms"
        for policy, hold in (("before", False), ("after", True)):
            sessions = [run(ratio, jitter_ms / 1000, args.answers, s, hold) for s in seeds]
            rows.append(row(label, policy, sessions))
    table(
        f"slow playout: {args.sessions} sessions of {args.answers} answers of 2.5-8 s per row, "
        "40 ms chunks, simulated clock\n(goals: 0.7x <= 1 gap per answer; 0.36x 0-1 gaps, "
        "starting later; 1x: start unchanged)",
        [
            [
                "arrival, jitter",
                "policy",
                "gaps/answer",
                "max gaps: 1st / later",
                "answers with gaps",
                "start s p50 / max",
                "last chunk s p50",
                "end s p50",
                "end - last chunk s p50 / max",
                "notice",
            ],
            *rows,
        ],
    )


if __name__ == "__main__":
    main()
