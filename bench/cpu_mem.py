"""CPU and memory of a long session with a 1920x1080 30 fps camera, mic and speaker.

The client is the real CLI in a child process (`shelfsight run`), talking to the stand-in
(its own process) with a looping 1080p30 video file (or the MJPEG camera with
--source mjpeg) as camera, a WAV mic asking a question every 20 s and a WAV speaker. CPU is
the client process's user+system time over wall time (all its threads; 100 % = one core),
RSS from /proc at 10 s in and at the end. Targets: < 25 % of one core; RSS growth < 10 MB.

The starter script's shape (bench/_naive.py) runs the same way for comparison, once reading
a frame a second and once at the camera's rate. With py-spy installed
(`pip install py-spy`), a further shelfsight run is profiled and summarised.

    python -m bench.cpu_mem [--minutes 5] [--naive-minutes 1] [--profile-seconds 60]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import _profile
from bench._common import (
    CLI,
    NAIVE,
    MicScript,
    MjpegProcess,
    ProcSample,
    StandInProcess,
    clean_env,
    question_mic,
    sample_proc,
    shelf_video,
    start_child,
    table,
    thread_cpu_s,
)

WARM_S = 10.0
TARGET_CPU, TARGET_GROWTH_MB = 0.25, 10.0


@dataclass
class Usage:
    name: str
    samples: list[ProcSample]
    frames_sent: int

    def window(self) -> tuple[ProcSample, ProcSample]:
        """From WARM_S in to the last sample (the child's last second is not sampled)."""
        t0 = self.samples[0].t_monotonic
        start = next((s for s in self.samples if s.t_monotonic - t0 >= WARM_S), self.samples[0])
        return start, self.samples[-1]

    @property
    def cpu_share(self) -> float:
        a, b = self.window()
        return (b.cpu_s - a.cpu_s) / max(1e-9, b.t_monotonic - a.t_monotonic)

    @property
    def rss_mb(self) -> tuple[float, float, float]:
        """RSS at WARM_S, at the end, and at its peak."""
        a, b = self.window()
        return a.rss_mb, b.rss_mb, max(s.rss_mb for s in self.samples)


@dataclass(frozen=True)
class Client:
    name: str
    argv: list[str]  # the command before --camera/--mic/--speaker


def watch(argv: list[str], env: dict[str, str], log: Path, profile_s: float) -> list[ProcSample]:
    """Run a child to its end, sampling it every second; profile it once warm if asked."""
    with log.open("w") as out:
        proc = start_child(argv, env, out)
        samples: list[ProcSample] = []
        while proc.poll() is None:
            if (sample := sample_proc(proc.pid)) is not None:
                samples.append(sample)
            if profile_s > 0 and len(samples) == int(WARM_S):
                profile(proc.pid, profile_s, log.with_suffix(".profile"))
                continue
            time.sleep(1.0)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}); see {log}")
    return samples


def profile(pid: int, seconds: float, out: Path) -> None:
    """py-spy for `seconds`, with every OS thread's CPU over the same span (FFmpeg's too)."""
    before = thread_cpu_s(pid)
    if not _profile.record(pid, seconds, out):
        print("  (py-spy failed: no profile)")
        return
    after = thread_cpu_s(pid)
    shares = {tid: (cpu - before.get(tid, 0.0)) / seconds for tid, cpu in after.items()}
    _profile.summarise(out, seconds, shares)


def session(
    client: Client, camera: str, mic: MicScript, work: Path, profile_s: float = 0.0
) -> Usage:
    minutes = mic.n_samples / 16000 / 60
    print(f"running {client.name} for {minutes:.1f} min ...", flush=True)
    stem = work / client.name.replace(" ", "-")
    media = ["--camera", camera, "--mic", str(mic.path), "--speaker", f"{stem}.wav"]
    with StandInProcess(speed=4.0) as standin:
        samples = watch(
            [*client.argv, *media], clean_env(standin.env()), stem.with_suffix(".log"), profile_s
        )
        frames = sum(len(c.got("video")) for c in standin.connections())
    return Usage(client.name, samples, frames)


def report(runs: list[Usage]) -> None:
    rows = [("client", "CPU (1 core = 100 %)", "RSS at 10 s", "RSS at end", "growth", "frames")]
    for u in runs:
        start, end, _ = u.rss_mb
        cpu = f"{u.cpu_share:6.1%}"
        rows.append(
            (
                u.name,
                cpu,
                f"{start:.1f} MB",
                f"{end:.1f} MB",
                f"{end - start:+.1f} MB",
                str(u.frames_sent),
            )
        )
    table("CPU and memory (targets: < 25 % of one core, growth < 10 MB)", rows)
    ours = runs[0]
    start, end, peak = ours.rss_mb
    ok_cpu = "meets" if ours.cpu_share < TARGET_CPU else "MISSES"
    ok_mem = "meets" if end - start < TARGET_GROWTH_MB else "MISSES"
    print(f"\nshelfsight: CPU {ours.cpu_share:.1%} of one core ({ok_cpu} < 25 %)")
    print(f"shelfsight: RSS {start:.1f} -> {end:.1f} MB, peak {peak:.1f} ({ok_mem} growth < 10 MB)")
    t0 = ours.samples[0].t_monotonic
    minute = [
        next(s for s in ours.samples if s.t_monotonic - t0 >= m * 60)
        for m in range(int((ours.samples[-1].t_monotonic - t0) // 60) + 1)
    ]
    print("shelfsight RSS at each minute: " + ", ".join(f"{s.rss_mb:.1f}" for s in minute) + " MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--naive-minutes", type=float, default=1.0, help="0 skips the starter")
    parser.add_argument("--profile-seconds", type=float, default=60.0, help="0 skips py-spy")
    parser.add_argument("--source", choices=("file", "mjpeg"), default="file")
    parser.add_argument("--size", default="1920x1080")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    print(f"{args.size} 30 fps {args.source} camera; work files in {work}")

    def mic(minutes: float, name: str) -> MicScript:
        turns = max(1, round(minutes * 3))
        return question_mic(work / name, turns=turns, speech_s=1.5, gap_s=18.5, lead_s=2.0)

    ours = Client("shelfsight", [*CLI, "run", "--plain"])
    starters = [
        Client("starter 1 fps", NAIVE),
        Client("starter camera rate", [*NAIVE, "--frames", "camera"]),
    ]
    mjpeg = MjpegProcess(size=args.size) if args.source == "mjpeg" else None
    with mjpeg or contextlib.nullcontext() as cam:
        if cam is None:
            width, height = (int(v) for v in args.size.split("x"))
            camera = str(shelf_video(work / "shelf.avi", seconds=10, size=(width, height)))
        else:
            camera = cam.url
        runs = [session(ours, camera, mic(args.minutes, "long.wav"), work)]
        if args.naive_minutes > 0:
            short = mic(args.naive_minutes, "short.wav")
            runs += [session(s, camera, short, work) for s in starters]
        report(runs)
        if args.profile_seconds > 0:
            profiled_session(
                ours,
                camera,
                mic((args.profile_seconds + 3 * WARM_S) / 60, "p.wav"),
                work,
                args.profile_seconds,
            )


def profiled_session(
    client: Client, camera: str, mic: MicScript, work: Path, seconds: float
) -> None:
    if _profile.py_spy() is None:
        print("\n(no profile: `pip install py-spy` to see where the CPU goes)")
        return
    session(Client(f"{client.name} profiled", client.argv), camera, mic, work, profile_s=seconds)


if __name__ == "__main__":
    main()
