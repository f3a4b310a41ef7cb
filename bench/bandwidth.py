"""Bytes up per minute (audio vs frames), and frames sent while the user is silent vs asking.

The real CLI runs against the stand-in (its own process, which records every message it
receives) with a 1280x720 30 fps video file as camera and a WAV mic that asks a question every
20 s, as a shopper would between long silences. "Asking" spans from the first sample of a
question reaching the wire to the end of its answer's playback; the rest is "silent".
shelfsight runs once with frames at full rate throughout (idle_fps off) and, where the
setting exists, once with `idle_fps` (frames slow down while nobody talks); the starter
script's shape (bench/_naive.py) runs beside it. Tokens are estimated with the published
rates (258 per frame at the default media resolution, 32 per second of audio).

    python -m bench.bandwidth [--minutes 2] [--idle-fps 0.2] [--skip-naive]
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench._common import (
    CLI,
    MIC_RATE_HZ,
    NAIVE,
    Connection,
    MicScript,
    StandInProcess,
    Windows,
    clean_env,
    question_mic,
    shelf_video,
    start_child,
    table,
)
from shelfsight.settings import Settings

ANSWER_S = 1.5
TOKENS_PER_FRAME, TOKENS_PER_AUDIO_S = 258, 32
WIRE_OVERHEAD_B = 100  # JSON around each base64 payload (an estimate; TLS/ws framing aside)


@dataclass(frozen=True)
class Run:
    name: str
    argv: list[str]
    env: dict[str, str]


@dataclass
class Traffic:
    name: str
    minutes: float
    audio_bytes: int
    frame_bytes: int
    messages: int
    frames_asking: int
    frames_silent: int
    asking_min: float
    silent_min: float

    def per_min(self, n: float) -> float:
        return n / self.minutes

    def wire_bytes(self) -> float:
        return (self.audio_bytes + self.frame_bytes) * 4 / 3 + self.messages * WIRE_OVERHEAD_B

    def trip_tokens(self, minutes: float = 30.0) -> float:
        frames = self.frames_asking + self.frames_silent
        audio_s = self.audio_bytes / 2 / MIC_RATE_HZ
        return (frames * TOKENS_PER_FRAME + audio_s * TOKENS_PER_AUDIO_S) * minutes / self.minutes


def asking_windows(conn: Connection, mic: MicScript) -> Windows:
    """From each question's first sample on the wire to the end of its answer's playback."""
    audio = conn.got("audio")
    ends, total = [], 0
    for _, _, n_bytes, _ in audio:
        total += n_bytes // 2
        ends.append(total)  # samples received up to and including this message
    first_answer = [t for t, kind, _ in conn.sent if kind == "audio"]
    windows = Windows()
    for (start, _), turn in zip(mic.segments, conn.turns, strict=False):
        k = bisect.bisect_right(ends, start)
        if k >= len(audio):
            break
        answer = [t for t in first_answer if t >= turn[1]]
        t_end = (answer[0] if answer else turn[1]) + ANSWER_S
        windows.spans.append((audio[k][0], t_end))
    return windows


def measure(run: Run, camera: Path, mic: MicScript, work: Path) -> Traffic:
    print(f"running {run.name} ...", flush=True)
    stem = work / run.name.replace(" ", "-").replace("=", "")
    media = ["--camera", str(camera), "--mic", str(mic.path), "--speaker", f"{stem}.wav"]
    with (
        StandInProcess(speed=4.0, answer_s=ANSWER_S) as standin,
        stem.with_suffix(".log").open("w") as log,
    ):
        proc = start_child([*run.argv, *media], clean_env({**standin.env(), **run.env}), log)
        if proc.wait(timeout=mic.n_samples / MIC_RATE_HZ + 120) != 0:
            raise SystemExit(f"{run.name} failed; see {stem}.log")
        conn = standin.connections()[0]
    audio, frames = conn.got("audio"), conn.got("video")
    t_first, t_last = conn.received[0][0], conn.received[-1][0]
    windows = asking_windows(conn, mic)
    asking = sum(windows.contains(t) for t, *_ in frames)
    minutes = (t_last - t_first) / 60
    return Traffic(
        run.name,
        minutes,
        sum(e[2] for e in audio),
        sum(e[2] for e in frames),
        len(conn.received),
        asking,
        len(frames) - asking,
        windows.total_s() / 60,
        minutes - windows.total_s() / 60,
    )


def report(results: list[Traffic]) -> None:
    rows = [
        (
            "client",
            "audio kB/min",
            "frames kB/min",
            "wire kB/min",
            "frames/min asking",
            "frames/min silent",
            "30-min trip",
        )
    ]
    for r in results:
        asking = r.frames_asking / r.asking_min if r.asking_min else float("nan")
        silent = r.frames_silent / r.silent_min if r.silent_min else float("nan")
        trip_mb = r.wire_bytes() / r.minutes * 30 / 1e6
        rows.append(
            (
                r.name,
                f"{r.per_min(r.audio_bytes) / 1000:.0f}",
                f"{r.per_min(r.frame_bytes) / 1000:.0f}",
                f"{r.per_min(r.wire_bytes()) / 1000:.0f}",
                f"{asking:.1f}",
                f"{silent:.1f}",
                f"{trip_mb:.0f} MB, ~{r.trip_tokens() / 1000:.0f}k tokens",
            )
        )
    table("Upstream traffic (payload kB; wire = base64 + JSON, before TLS)", rows)
    share = results[0].asking_min / results[0].minutes
    print(f"\nthe user was asking or hearing an answer {share:.0%} of the time")
    print("tokens: 258 per frame + 32 per second of audio (estimates from the published rates)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--idle-fps", type=float, default=0.2)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-bandwidth-"))
    print(f"1280x720 30 fps video file, a question every 20 s; work files in {work}")
    video = shelf_video(work / "shelf720.avi", seconds=10, size=(1280, 720))
    turns = max(1, round(args.minutes * 3))
    mic = question_mic(work / "questions.wav", turns=turns, gap_s=18.5, lead_s=2.0)
    runs = [Run("shelfsight, full rate", [*CLI, "run", "--plain"], {"SHELFSIGHT_IDLE_FPS": "0"})]
    if "idle_fps" in {f.name for f in dataclasses.fields(Settings)}:
        idle = {"SHELFSIGHT_IDLE_FPS": f"{args.idle_fps:g}"}
        runs.append(Run(f"shelfsight, idle_fps={args.idle_fps:g}", runs[0].argv, idle))
    else:
        print("(this build has no idle_fps setting: only the full-rate run)")
    if not args.skip_naive:
        runs.append(Run("starter, 1 fps", NAIVE, {}))
    report([measure(run, video, mic, work) for run in runs])


if __name__ == "__main__":
    main()
