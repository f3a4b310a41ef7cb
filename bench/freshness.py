"""How old is a frame when it goes out? shelfsight vs the source's own floor vs the naive loop.

A local MJPEG-over-HTTP camera (bench/_servers.py, its own process) makes numbered shelf
frames at 30 fps and remembers when it began each one; a frame's age is the time from then
until it is on the wire (the stand-in's receive time, for shelfsight) or would be sent (the
two loops here, which send nothing). Three ways of reading the same live stream:

- floor: a bare loop reading every frame as it arrives (OpenCV/FFmpeg, as shelfsight uses);
- naive: Google's starter shape, read a frame, sleep one second, send, so the socket and
  FFmpeg's buffers fill and every read returns an older frame;
- shelfsight: the real CLI (`shelfsight run --camera http://...`) against the stand-in.

Target: shelfsight's p95 age no more than 70 ms above the floor's p95.

    python -m bench.freshness [--seconds 60] [--floor-seconds 20] [--size 1280x720] [--fps 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench._common import (
    CLI,
    MIC_RATE_HZ,
    MjpegProcess,
    StandInProcess,
    clean_env,
    ms,
    pct,
    start_child,
    table,
    write_wav,
)
from shelfsight.media.frames import encode_jpeg
from tests.support.scene import read_frame_number

TARGET_ABOVE_FLOOR_S = 0.070


def read_loop(url: str, seconds: float, *, naive: bool) -> list[tuple[int, float]]:
    """(frame number, time it was ready to send) for every frame a loop would send."""
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {url}")
    out: list[tuple[int, float]] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ok, image = cap.read()
            if not ok:
                break
            number = read_frame_number(image)
            if naive:
                encode_jpeg(image, 1024, 80)  # the starter's thumbnail + JPEG
                time.sleep(1.0)
            out.append((number, time.monotonic()))
    finally:
        cap.release()
    return out


def shelfsight_loop(url: str, seconds: float, fps: float, work: Path) -> list[tuple[int, float]]:
    """(frame number, stand-in receive time) for every frame the real CLI sent."""
    mic = write_wav(work / "silence.wav", bytes(int(seconds * MIC_RATE_HZ) * 2), MIC_RATE_HZ)
    with StandInProcess() as standin, (work / "cli.log").open("w") as log:
        env = clean_env({**standin.env(), "SHELFSIGHT_IDLE_FPS": "0"})  # full rate throughout
        args = ["run", "--camera", url, "--mic", str(mic), "--speaker", str(work / "out.wav")]
        proc = start_child([*CLI, *args, "--fps", str(fps), "--plain"], env, log)
        code = proc.wait(timeout=seconds + 60)
        if code != 0:
            raise SystemExit(f"shelfsight run failed ({code}): see {work / 'cli.log'}")
        frames = [e for c in standin.connections() for e in c.got("video")]
    return [(int(e[3] or -1), e[0]) for e in frames]


def ages(sent: list[tuple[int, float]], made: dict[int, float]) -> list[float]:
    return [t - made[n] for n, t in sent if n in made]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="naive and shelfsight runs")
    parser.add_argument("--floor-seconds", type=float, default=20.0)
    parser.add_argument("--size", default="1280x720", help="camera frame size WxH")
    parser.add_argument("--fps", type=float, default=1.0, help="shelfsight --fps")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-freshness-"))
    print(f"MJPEG camera {args.size} at 30 fps on loopback; work files in {work}")
    with MjpegProcess(size=args.size) as camera:
        print(f"floor: reading every frame for {args.floor_seconds:.0f} s ...")
        floor = read_loop(camera.url, args.floor_seconds, naive=False)
        print(f"naive: read, sleep 1 s, send, for {args.seconds:.0f} s ...")
        naive = read_loop(camera.url, args.seconds, naive=True)
        print(f"shelfsight: `shelfsight run --fps {args.fps:g}` for {args.seconds:.0f} s ...")
        ours = shelfsight_loop(camera.url, args.seconds, args.fps, work)
        made = camera.made()
    floor_age, naive_age, our_age = ages(floor, made), ages(naive, made), ages(ours, made)
    steady = naive_age[len(naive_age) // 2 :]
    above = pct(our_age, 95) - pct(floor_age, 95)
    verdict = "meets" if above <= TARGET_ABOVE_FLOOR_S else "MISSES"
    table(
        "Frame age at send (capture -> on the wire)",
        [
            ("reader", "age of the frames sent"),
            ("floor: bare loop, every frame", ms(floor_age)),
            ("shelfsight", ms(our_age)),
            ("naive: read, sleep 1 s, send", ms(naive_age)),
            ("naive, second half of the run", ms(steady)),
        ],
    )
    print(
        f"\nshelfsight p95 is {above * 1000:.1f} ms above the floor's p95 "
        f"(target <= {TARGET_ABOVE_FLOOR_S * 1000:.0f} ms): {verdict} the target"
    )
    if our_age:
        gaps = np.diff([t for _, t in ours])
        print(f"shelfsight sent {len(ours)} frames, median gap {np.median(gaps):.2f} s")
    if naive:
        numbers = [n for n, _ in naive]
        print(
            f"naive: {len(naive)} frames; the last one sent was frame {numbers[-1]}, "
            f"while the camera had made {max(made)}"
        )


if __name__ == "__main__":
    main()
