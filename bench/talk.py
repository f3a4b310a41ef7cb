"""Push-to-talk timing as a user gets it: the talk key typed on a real pseudo-terminal running
`shelfsight run --mode ptt`, the stand-in (in this process) stamping what arrives.

- key -> activity_start: from writing the key to the terminal to the stand-in receiving the
  signal (terminal, key reader thread, loop, outbox, TLS websocket). Target p95 < 100 ms.
- key -> activity_end, minus the 0.3 s tail: what the second press adds over the tail it
  promises (the tail is counted on the mic's capture clock, so a lagging mic shows here).
  Target p95 < 100 ms.

Idle, then with two processes spinning on the 2 cores (the machine busy with something else).
Clocks: CLOCK_MONOTONIC, shared between processes (Linux).

    python -m bench.talk [--turns 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

from bench._common import ms3, shelf_video, table
from bench.jitter import spin
from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.session.turns import PushToTalk
from shelfsight.settings import DEFAULT_MODEL
from shelfsight.standin import StandIn, StandInConfig, StandInThread
from tests.conftest import ASSETS, TEST_KEY, standin_env
from tests.support.terminal import Terminal

TALK_S = 1.5  # how long each question is "held" between the two presses
TAIL_S = PushToTalk.tail_s


def presses(standin: StandInThread, work: Path, turns: int) -> tuple[list[float], list[float]]:
    """Runs `turns` push-to-talk turns; (start lags, end lags beyond the tail) in seconds."""
    question = load_mic_pcm(ASSETS / "question.wav")[: int(32000 * TALK_S)]
    mic = write_wav(work / "mic.wav", (question + bytes(32000 * 4)) * turns)
    video = shelf_video(work / "shelf.avi", seconds=10, size=(1280, 720))
    args = ["run", "--mode", "ptt", "--camera", str(video), "--mic", str(mic)]
    term = Terminal([*args, "--speaker", str(work / "out.wav")], standin_env(standin))
    pressed: list[tuple[float, float]] = []
    try:
        if "space: talk" not in term.wait_for("space: talk"):
            raise SystemExit(f"shelfsight never showed its keys:\n{term.read()[-2000:]}")
        # Connected and streaming (a key pressed before that waits for the connection, which
        # is not what this measures).
        deadline = time.monotonic() + 20
        while not _streaming(standin) and time.monotonic() < deadline:
            time.sleep(0.05)
        for n in range(turns):
            t_start = term.press(" ")
            time.sleep(TALK_S)
            t_end = term.press(" ")
            pressed.append((t_start, t_end))
            deadline = time.monotonic() + 15
            while standin.server.turns_completed <= n and time.monotonic() < deadline:
                time.sleep(0.02)
            term.read(0.5)
        term.press("q")
        term.close()
    finally:
        term.proc.kill()
    got = [e for c in standin.server.connections for e in c.received()]
    starts = [e.t_monotonic for e in got if e.kind == "activity_start"]
    ends = [e.t_monotonic for e in got if e.kind == "activity_end"]
    if len(starts) != turns or len(ends) != turns:
        raise SystemExit(f"{turns} turns pressed, {len(starts)} starts / {len(ends)} ends arrived")
    start_lags = [s - p for s, (p, _) in zip(starts, pressed, strict=True)]
    end_lags = [e - p - TAIL_S for e, (_, p) in zip(ends, pressed, strict=True)]
    return start_lags, end_lags


def _streaming(standin: StandInThread) -> bool:
    return any(c.received("video") for c in standin.server.connections)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=10)
    args = ap.parse_args()
    rows = [["CPU", "key -> activity_start ms p50 / p95 / max", "end beyond the tail ms", "n"]]
    config = StandInConfig(api_keys=frozenset({TEST_KEY}), models=frozenset({DEFAULT_MODEL}))
    for busy in (False, True):
        spinners = []
        if busy:
            stop_at = time.monotonic() + args.turns * 8 + 20
            spinners = [multiprocessing.Process(target=spin, args=(stop_at,)) for _ in range(2)]
            for p in spinners:
                p.start()
        try:
            with (
                tempfile.TemporaryDirectory() as tmp,
                StandIn.start_in_thread(config) as standin,
            ):
                start_lags, end_lags = presses(standin, Path(tmp), args.turns)
        finally:
            for p in spinners:
                p.terminate()
                p.join()
        rows.append(
            ["busy" if busy else "idle", ms3(start_lags), ms3(end_lags), str(len(start_lags))]
        )
    table("Push-to-talk through a terminal (targets: p95 < 100 ms both)", rows)


if __name__ == "__main__":
    main()
