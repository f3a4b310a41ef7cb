"""Helper processes for the benchmarks: the Live API stand-in and a 30 fps MJPEG camera.

Each runs in its own process so that it never competes with the client under test for the
GIL, and reports times from CLOCK_MONOTONIC, which Linux shares between processes, so its
times and the client's compare directly. Protocol: one JSON line on stdout when ready; then
any line on stdin makes it print one JSON line of what it recorded and exit.

    python -m bench._servers standin [--speed 1] [--answer ramp|speech|voice] [--answer-s 1.2]
        [--host 127.0.0.1] [--no-deflate] [--audio-dump FILE]
    python -m bench._servers mjpeg [--size 1280x720] [--fps 30]

`--host` serves on another address (e.g. inside a network namespace, bench/tether.py);
`--audio-dump FILE` writes every received audio message's bytes to FILE, and the report then
lists them (connection, receive time, rate, offset, length) under "audio".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from shelfsight.standin import (
    ANSWER_RATE_HZ,
    DEFAULT_ANSWER_TEXT,
    DEFAULT_QUESTION_TEXT,
    ScriptedAnswer,
    StandIn,
    StandInConfig,
    synth_speech_pcm16,
)
from shelfsight.standin.protocol import rate_from_mime
from tests.support.scene import draw_shelf, read_frame_number

RAMP_MAX_S = 32767 / ANSWER_RATE_HZ  # every sample value 1..32767 names its own position


def ramp_answer_pcm(duration_s: float) -> bytes:
    """Answer audio whose sample i has the value i + 1: a played sample names its position."""
    n = int(min(duration_s, RAMP_MAX_S) * ANSWER_RATE_HZ)
    return np.arange(1, n + 1, dtype="<i2").tobytes()


def voice_answer_pcm(duration_s: float) -> bytes:
    """Speech-like answer audio with a faint (-60 dBFS) noise floor: every 20 ms block is
    unique, so each played block can be placed, and it compresses about as badly as a
    recorded voice (the bare synthetic speech repeats every 2 s and deflates well)."""
    speech = np.frombuffer(synth_speech_pcm16(duration_s, ANSWER_RATE_HZ), "<i2")
    floor = np.random.default_rng(24).normal(0, 30, len(speech))
    return np.clip(speech + floor, -32768, 32767).astype("<i2").tobytes()


# ---- the stand-in ---------------------------------------------------------------------------


def standin_config(args: argparse.Namespace) -> StandInConfig:
    if args.answer == "ramp":
        pcm = ramp_answer_pcm(args.answer_s)
    elif args.answer == "voice":
        pcm = voice_answer_pcm(args.answer_s)
    else:
        pcm = synth_speech_pcm16(args.answer_s, ANSWER_RATE_HZ)
    answer = ScriptedAnswer(DEFAULT_QUESTION_TEXT, DEFAULT_ANSWER_TEXT, pcm)
    return StandInConfig(
        answers=(answer,),
        speed=args.speed,
        answer_chunk_ms=args.chunk_ms,
        compression=not args.no_deflate,
    )


def standin_records(server: StandIn) -> list[dict[str, Any]]:
    """Every connection's events, small enough to print: sizes, CRCs, decoded frame numbers."""
    out = []
    for conn in server.connections:
        received = []
        for e in conn.received():
            extra: int | None = None
            if e.kind == "audio":
                extra = zlib.crc32(e.data)
            elif e.kind == "video":
                image = cv2.imdecode(np.frombuffer(e.data, np.uint8), cv2.IMREAD_COLOR)
                extra = read_frame_number(image) if image is not None else -1
            received.append([e.t_monotonic, e.kind, len(e.data), extra])
        sent = [[e.t_monotonic, e.kind, e.n_bytes] for e in conn.sent()]
        turns = [
            [t.trigger, t.t_start_monotonic, t.t_end_monotonic, t.outcome] for t in conn.turns()
        ]
        out.append({"received": received, "sent": sent, "turns": turns})
    return out


def dump_audio(server: StandIn, path: str) -> list[list[Any]]:
    """Every received audio message's bytes into `path`, in order; returns its index:
    [connection, receive time, rate (Hz), offset, length] per message."""
    index: list[list[Any]] = []
    offset = 0
    with open(path, "wb") as out:
        for n, conn in enumerate(server.connections):
            for e in conn.received("audio"):
                out.write(e.data)
                index.append([n, e.t_monotonic, rate_from_mime(e.mime_type), offset, len(e.data)])
                offset += len(e.data)
    return index


async def serve_standin(args: argparse.Namespace) -> None:
    async with StandIn(standin_config(args), host=args.host) as server:
        ready = {"base_url": server.base_url, "ca_pem": str(server.ca_pem_path)}
        print(json.dumps(ready), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        report: dict[str, Any] = {"connections": standin_records(server)}
        if args.audio_dump:
            report["audio"] = dump_audio(server, args.audio_dump)
        print(json.dumps(report), flush=True)


# ---- the MJPEG camera -----------------------------------------------------------------------


class FrameClock:
    """Makes shelf frames on a 30 fps wall clock; frame n's capture time is when it was begun.

    A late frame is skipped, as a camera does; the newest JPEG waits for every client thread.
    """

    def __init__(self, size: tuple[int, int], fps: float) -> None:
        self.size, self.fps = size, fps
        self.made: list[tuple[int, float]] = []
        self.latest: tuple[int, bytes] | None = None
        self.changed = threading.Condition()
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        n = 0
        while not self.stop.is_set():
            t_capture = time.monotonic()
            image = draw_shelf(self.size[0], self.size[1], n)
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
            with self.changed:
                self.made.append((n, t_capture))
                self.latest = (n, jpeg.tobytes())
                self.changed.notify_all()
            n = max(n + 1, int((time.monotonic() - t0) * self.fps))  # skip frames when late
            self.stop.wait(max(0.0, t0 + n / self.fps - time.monotonic()))

    def next_after(self, seen: int) -> tuple[int, bytes] | None:
        with self.changed:
            while not self.stop.is_set() and (self.latest is None or self.latest[0] <= seen):
                self.changed.wait(0.5)
            return self.latest


def mjpeg_handler(clock: FrameClock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            seen = -1
            try:
                while (item := clock.next_after(seen)) is not None and not clock.stop.is_set():
                    seen, jpeg = item
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                    self.wfile.write(head.encode() + b"\r\n\r\n" + jpeg + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


def serve_mjpeg(args: argparse.Namespace) -> None:
    width, height = (int(v) for v in args.size.split("x"))
    clock = FrameClock((width, height), args.fps)
    server = ThreadingHTTPServer(("127.0.0.1", 0), mjpeg_handler(clock))
    server.daemon_threads = True
    threading.Thread(target=clock.run, name="frames", daemon=True).start()
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    port = server.server_address[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}/stream.mjpg"}), flush=True)
    sys.stdin.readline()
    clock.stop.set()
    server.shutdown()
    with clock.changed:
        made = list(clock.made)
    print(json.dumps({"made": made}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    standin = sub.add_parser("standin")
    standin.add_argument("--speed", type=float, default=1.0)
    standin.add_argument("--answer", choices=("ramp", "speech", "voice"), default="speech")
    standin.add_argument("--answer-s", type=float, default=1.5)
    standin.add_argument("--chunk-ms", type=int, default=40)
    standin.add_argument("--host", default="127.0.0.1")
    standin.add_argument("--no-deflate", action="store_true")
    standin.add_argument("--audio-dump", default="")
    mjpeg = sub.add_parser("mjpeg")
    mjpeg.add_argument("--size", default="1280x720")
    mjpeg.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    if args.mode == "standin":
        asyncio.run(serve_standin(args))
    else:
        serve_mjpeg(args)


if __name__ == "__main__":
    main()
