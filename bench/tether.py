"""What a user on a slow or lossy phone tether meets, with the kernel's real TCP.

The real CLI (`shelfsight run`, defaults but for the files) runs in the client namespace of a
tether (tests/support/tether.py: client -- router -- server namespaces, tbf and iptables on the
router) and the stand-in (`bench/_servers.py`, its own process) in the server namespace. The
camera is a 1280x720 shelf video with sensor grain, sent at 1 fps (about 34 KB a picture, as
the issue measured); the mic is a WAV of four spoken questions over store noise (-50 dBFS,
every 20 ms chunk unique), 66 s; the speaker is a WAV written on a real-time clock. Answers
are 3 s of speech-like audio with a unique noise floor, sent 4x faster than real time (the
stand-in's default), with the websocket's permessage-deflate unless --no-deflate.

Per configuration (the median of --runs runs):
  answered      answers played whole through the speaker, of 4 questions
  1st lag       end of the first question's words (mic file time) -> the first audio of its
                answer received by the client (the stand-in waits the 700 ms of silence that
                end a turn, as the service does; the unlimited row is the floor)
  later lag     the same for the later questions (their median)
  holes         holes per answer where the speaker ran dry mid-answer, and their seconds
                (found in the speaker WAV; the product's own underrun count in the next table)
  cuts          connections the link cut as dead (dead_links) although the link never stalled
  delivered     share of the questions' words the stand-in received (16 kHz chunks by their
                bytes, 8 kHz slow-mode audio placed against the file resampled the same way);
                in brackets, the share of the whole mic file that went up (in slow mode only
                speech goes, with 0.5 s before and 0.7 s after it: the pauses stay home)
  spliced       questions the stand-in received with a hole in them, on some connection;
  unheard       questions it never answered (their audio never reached it)
  pictures      pictures the stand-in received, and their mean size
  slow mode     when it switched on (s after the mic started) and how often it came back on
                after switching off (flaps)

Needs root (network namespaces), iproute2 and iptables (scripts/setup installs them).

    python -m bench.tether [--quick] [--cc cubic] [--runs 3] [--no-deflate] [--queue-kb 64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench._common import CLI, StandInProcess, clean_env, start_child, table
from bench._servers import voice_answer_pcm
from bench._tether_figures import MicMap
from bench._tether_run import Figures, Media, analyse, median_of
from shelfsight.media.wav import load_mic_pcm, write_wav
from tests.conftest import ASSETS
from tests.support.scene import draw_shelf
from tests.support.tether import SERVER_IP, Tether, missing

QUESTIONS, LEAD_S, AFTER_S = 4, 3.0, 13.5
ANSWER_S, STANDIN_SPEED = 3.0, 4.0
STORE_NOISE = 100.0  # std of the mic's noise floor: about -50 dBFS, as in bench.link_faults
RUN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Config:
    rate_bps: float | None = None
    both: bool = True  # the downlink is capped too (else the uplink only)
    loss: float = 0.0  # random loss, both directions

    @property
    def label(self) -> str:
        if self.rate_bps is None:
            return "unlimited" + (f", {self.loss:.0%} loss" if self.loss else "")
        ways = "both ways" if self.both else "up only"
        loss = f", {self.loss:.0%} loss" if self.loss else ""
        return f"{self.rate_bps / 1000:.0f} kbit/s {ways}{loss}"

    @property
    def slug(self) -> str:
        return self.label.replace(" ", "-").replace("/", "").replace(",", "").replace("%", "pc")


FULL = [Config()] + [
    Config(rate, both, loss)
    for rate in (256_000, 128_000)
    for both in (True, False)
    for loss in (0.0, 0.02)
]
QUICK = [Config(), Config(256_000, True), Config(128_000, True, 0.02)]


def make_media(work: Path) -> Media:
    question = np.frombuffer(load_mic_pcm(ASSETS / "question.wav"), "<i2").astype(np.float64)
    start, end = speech_span(question)
    parts, spans, pos = [np.zeros(int(LEAD_S * 16000))], [], int(LEAD_S * 16000)
    for _ in range(QUESTIONS):
        spans.append((pos + start, pos + end))
        parts += [question, np.zeros(int(AFTER_S * 16000))]
        pos += len(question) + int(AFTER_S * 16000)
    signal = np.concatenate(parts)
    signal += np.random.default_rng(7).normal(0, STORE_NOISE, len(signal))
    pcm = np.clip(np.round(signal), -32768, 32767).astype("<i2")
    mic = write_wav(work / "mic.wav", pcm.tobytes(), 16000)
    answer = np.frombuffer(voice_answer_pcm(ANSWER_S), "<i2")
    return Media(mic, spans, grainy_shelf_video(work / "shelf.avi"), answer, MicMap(pcm))


def speech_span(pcm: np.ndarray, floor_dbfs: float = -45.0) -> tuple[int, int]:
    """The first and last 20 ms of the clip louder than `floor_dbfs` (16 kHz samples): the
    bundled question has 0.3 s of silence before its words and 0.37 s after them."""
    windows = pcm[: len(pcm) // 320 * 320].reshape(-1, 320)
    loud = np.flatnonzero(np.sqrt(np.mean(windows**2, axis=1)) > 32768 * 10 ** (floor_dbfs / 20))
    return int(loud[0]) * 320, (int(loud[-1]) + 1) * 320


def grainy_shelf_video(path: Path, seconds: float = 10.0, grain: float = 5.0) -> Path:
    """1280x720 30 fps shelf with sensor grain: ~34 KB as a 768 px JPEG at quality 80 (a
    flat synthetic picture is 28 KB; a phone camera's is noisier)."""
    width, height, fps = 1280, 720, 30.0
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    rng = np.random.default_rng(5)
    try:
        for n in range(int(seconds * fps)):
            image = draw_shelf(width, height, n).astype(np.float64)
            image += rng.normal(0, grain, image.shape)
            writer.write(np.clip(image, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    return path


def run_once(config: Config, media: Media, args: argparse.Namespace, folder: Path) -> Figures:
    folder.mkdir(parents=True)
    with Tether(congestion=args.cc) as tether:
        if config.rate_bps:
            queue = args.queue_kb * 1024
            tether.shape("both" if config.both else "up", config.rate_bps, queue_bytes=queue)
        if config.loss:
            tether.loss("both", config.loss)
        extra = ["--host", SERVER_IP, "--audio-dump", str(folder / "audio.raw")]
        extra += ["--no-deflate"] if args.no_deflate else []
        with (
            StandInProcess(
                speed=STANDIN_SPEED,
                answer="voice",
                answer_s=ANSWER_S,
                extra=extra,
                prefix=tether.command("server"),
            ) as standin,
            (folder / "cli.log").open("w") as log,
        ):
            argv = [*tether.command("client"), *CLI, "run", "--camera", str(media.video)]
            argv += ["--fps", "1", "--mic", str(media.mic), "--speaker", str(folder / "out.wav")]
            argv += ["--record", str(folder / "rec"), "--plain"]
            argv += ["--cues", "off", "--speak-status", "off"]  # the speaker WAV: answers only
            proc = start_child(argv, clean_env(standin.env()), log)
            try:
                code = proc.wait(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            report = standin.finish()
        (folder / "standin.json").write_text(json.dumps(report))
        router = {f"{d}_{k}": v for d in ("up", "down") for k, v in tether.queue_stats(d).items()}
        router |= {f"{d}_lost": tether.dropped(d) for d in ("up", "down")}
    return analyse(report, folder, media, code, router)


# ---- the table ----------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def row(config: Config, runs: list[Figures]) -> list[str]:
    m = lambda name: median_of([getattr(r, name) for r in runs])  # noqa: E731
    holes, hole_s = m("holes_per_answer"), m("hole_s_per_answer")
    pictures, kb = m("pictures"), m("picture_kb")
    exits = sorted({r.exit_code for r in runs} - {0})
    return [
        config.label + (f" (exit {exits})" if exits else ""),
        f"{m('answered'):.0f}/{QUESTIONS}",
        _s(m("lag_first_s")),
        _s(m("lag_later_s")),
        "-" if holes is None else f"{holes:.1f} ({hole_s or 0:.2f} s)",
        f"{m('cuts'):.0f}",
        f"{(m('delivered') or 0) * 100:.1f} % ({(m('sent') or 0) * 100:.0f} % sent)",
        f"{m('spliced'):.0f} / {m('unheard'):.0f}",
        f"{pictures:.0f}" + ("" if kb is None else f" ({kb:.0f} KB)"),
        ("off" if m("slow_on_s") is None else f"{m('slow_on_s'):.1f} s")
        + f" / {m('slow_flaps'):.0f}",
    ]


def router_row(config: Config, runs: list[Figures]) -> list[str]:
    m = lambda key: median_of([r.router.get(key) for r in runs])  # noqa: E731
    kb = lambda key: "-" if m(key) is None else f"{m(key) / 1000:.0f} KB"  # noqa: E731
    n = lambda key: "-" if m(key) is None else f"{m(key):.0f}"  # noqa: E731
    return [
        config.label,
        kb("up_bytes"),
        n("up_dropped"),
        kb("down_bytes"),
        n("down_dropped"),
        f"{n('up_lost')} / {n('down_lost')}",
        f"{median_of([r.underruns for r in runs]):.0f}",
        f"{median_of([r.connections for r in runs]):.0f}",
        _s(median_of([r.slow_s for r in runs])),
        _s(median_of([r.reported_lost_s for r in runs])),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run of three configurations")
    parser.add_argument("--cc", choices=("bbr", "cubic", "reno"), default="bbr")
    parser.add_argument("--runs", type=int, default=None, help="runs per configuration (3)")
    parser.add_argument("--no-deflate", action="store_true", help="stand-in without compression")
    parser.add_argument("--queue-kb", type=int, default=64, help="the router's queue per way")
    parser.add_argument("--keep", type=Path, default=None, help="keep every run's files here")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    configs = QUICK if args.quick else FULL
    if lacking := missing():
        raise SystemExit("bench.tether: a network-namespace tether needs " + "; ".join(lacking))
    with tempfile.TemporaryDirectory(prefix="bench-tether-") as tmp:
        measure(configs, runs, args, args.keep or Path(tmp))


def measure(configs: list[Config], runs: int, args: argparse.Namespace, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    media = make_media(work)
    results: dict[Config, list[Figures]] = {}
    for config in configs:
        for i in range(runs):
            t0 = time.monotonic()
            figures = run_once(config, media, args, work / f"{config.slug}-{i}")
            results.setdefault(config, []).append(figures)
            took = time.monotonic() - t0
            print(f"{config.label} #{i + 1} ({took:.0f} s): {figures}", flush=True)
    deflate = "no deflate" if args.no_deflate else "deflate"
    setting = f"{args.cc}, {args.queue_kb} KB router queue, {deflate}, median of {runs}"
    header = ["link", "answered", "1st lag", "later lag", "holes/answer", "cuts", "delivered"]
    header += ["spliced / unheard", "pictures", "slow mode on / flaps"]
    table(f"A phone tether ({setting})", [header] + [row(c, r) for c, r in results.items()])
    header = ["link", "up", "up queue drops", "down", "down queue drops", "lost up/down"]
    header += ["underruns", "connections", "time slow", "audio lost (reported)"]
    table("What the router saw", [header] + [router_row(c, r) for c, r in results.items()])
    print(f"\nfiles: {work}" if args.keep else "")


if __name__ == "__main__":
    main()
