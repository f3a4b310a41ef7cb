"""Before figures: what a user on a slow or lossy phone tether meets, with the kernel's real TCP.

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
  delivered     share of the mic file the stand-in received (16 kHz chunks by their bytes,
                8 kHz slow-mode audio placed against the file resampled the same way), up
                to the last audio it received; in brackets, the seconds of the file after
                that, which never arrived: the run ended (having said all of it was sent,
                and the answers played) with them still on the way (the client socket's
                send buffer, the router's queue)
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
import statistics
import subprocess
import tempfile
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench._common import CLI, StandInProcess, clean_env, start_child, table
from bench._servers import voice_answer_pcm
from bench._tether_figures import (
    SLOW_HZ,
    WIN,
    MicMap,
    Segment,
    delivered,
    plays,
    reached,
    spliced,
    stream_length,
)
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


@dataclass
class Media:
    mic: Path
    questions: list[tuple[int, int]]  # their words: 16 kHz samples of the mic file
    video: Path
    answer: np.ndarray  # 24 kHz
    micmap: MicMap


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


@dataclass
class Figures:
    exit_code: int
    answered: int
    lag_first_s: float | None
    lag_later_s: float | None
    holes_per_answer: float | None
    hole_s_per_answer: float | None
    underruns: int
    reported_lost_s: float  # mic audio the link said it dropped
    cuts: int
    connections: int
    delivered: float  # of the mic file up to the last audio received
    unsent_s: float  # mic file after that: not received by the end of the run
    spliced: int
    unheard: int  # questions the stand-in never answered
    pictures: int
    picture_kb: float | None
    slow_on_s: float | None
    slow_flaps: int
    slow_s: float
    router: dict[str, int] = field(default_factory=dict)


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


def analyse(
    report: dict[str, Any], folder: Path, media: Media, code: int, router: dict[str, int]
) -> Figures:
    events = [json.loads(line) for line in (folder / "rec" / "events.jsonl").open()]
    manifest = json.loads((folder / "rec" / "manifest.json").read_text())
    raw = (folder / "audio.raw").read_bytes()
    # One clock for all: CLOCK_MONOTONIC (shared by every process). The recording counts from
    # its start, stamped in wall time; the mic file's sample 0 is when its first chunk was
    # read, found from the stand-in's receive times (the link is idle at the start).
    t_recording = datetime.fromisoformat(manifest["started_at"]).timestamp()
    t_recording -= time.time() - time.monotonic()
    t_mic = mic_origin(report.get("audio", []), raw, media.micmap)
    by_conn: dict[int, list[tuple[float, int, bytes]]] = {}
    for conn, t, rate, offset, length in report.get("audio", []):
        by_conn.setdefault(conn, []).append((t, rate, raw[offset : offset + length]))
    placed = {c: media.micmap.place([(r, d) for _, r, d in m]) for c, m in by_conn.items()}
    asked = questions_answered(report, by_conn, placed, media)
    answers = [t_recording + t for t in first_answer_audio(events)]
    lags: list[float | None] = []
    for (_, end), t_turn in zip(media.questions, asked, strict=True):
        came = [t for t in answers if t_turn is not None and t >= t_turn]
        lags.append(came[0] - (t_mic + end / 16000) if came else None)
    with wave.open(str(folder / "out.wav"), "rb") as wav:
        speaker = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    heard = [p for p in plays(speaker, media.answer) if p.whole]
    frames = [e for c in report["connections"] for e in c["received"] if e[1] == "video"]
    slow = [e for e in events if e["type"] == "slow_link"]
    ons = [t_recording + e["t"] - t_mic for e in slow if e["slow"]]
    share, tail = delivered(list(placed.values()), media.micmap.n8)
    return Figures(
        exit_code=code,
        answered=len(heard),
        lag_first_s=lags[0] if lags else None,
        lag_later_s=_median(lags[1:]),
        holes_per_answer=statistics.mean(len(p.holes) for p in heard) if heard else None,
        hole_s_per_answer=statistics.mean(sum(p.holes) / 24000 for p in heard) if heard else None,
        underruns=int(manifest.get("speaker_underruns", 0)),
        reported_lost_s=float(manifest.get("audio_dropped_s", 0.0)),
        cuts=int(manifest.get("dead_links", 0)),
        connections=int(manifest.get("connections", 0)),
        delivered=share,
        unsent_s=tail / SLOW_HZ,
        spliced=sum(spliced(list(placed.values()), (a // 2, b // 2)) for a, b in media.questions),
        unheard=sum(t is None for t in asked),
        pictures=len(frames),
        picture_kb=statistics.mean(e[2] for e in frames) / 1000 if frames else None,
        slow_on_s=ons[0] if ons else None,
        slow_flaps=max(0, len(ons) - 1),
        slow_s=float(manifest.get("slow_link_s", 0.0)),
        router=router,
    )


def mic_origin(index: list[list[Any]], raw: bytes, micmap: MicMap) -> float:
    """When the mic file began (monotonic s): 16 kHz chunk c is read 20 ms after it began to
    be spoken, at origin + (c + 1) * 20 ms, and reaches the stand-in no sooner."""
    arrivals = [
        t - (c + 1) * 0.02
        for _conn, t, rate, offset, length in index
        if rate == 16000 and (c := micmap.chunks.get(raw[offset : offset + length])) is not None
    ]
    return min(arrivals)


def questions_answered(
    report: dict[str, Any],
    by_conn: dict[int, list[tuple[float, int, bytes]]],
    placed: dict[int, list[Segment]],
    media: Media,
) -> list[float | None]:
    """Per question, when the stand-in first began an answer to it (monotonic s), or None.
    A turn answers the question whose words end last before where that connection's audio
    had reached (in the file) when the turn began: its end-of-speech silence comes after."""
    first: list[float | None] = [None] * len(media.questions)
    for c, conn in enumerate(report["connections"]):
        messages, k = by_conn.get(c, []), 0
        ends = []
        for t, rate, data in messages:
            k += stream_length(rate, data)
            ends.append((t, k))
        for _trigger, t_start, _t_end, _outcome in conn["turns"]:
            k_then = max([k for t, k in ends if t <= t_start], default=0)
            pos = reached(placed.get(c, []), k_then)
            if pos is None:
                continue
            said = [q for q, (_, end) in enumerate(media.questions) if end // 2 <= pos + WIN]
            if said and first[said[-1]] is None:
                first[said[-1]] = t_start
    return first


def first_answer_audio(events: list[dict[str, Any]]) -> list[float]:
    """When each answer's first audio was received (recording time): an answer ends with its
    turn_complete or an interruption; one cut by a lost connection comes again whole and is
    still the same answer."""
    firsts: list[float] = []
    in_answer = continues = False
    for e in events:
        kind = e["type"]
        if kind == "answer_audio" and not in_answer:
            if not continues:
                firsts.append(e["t"])
            in_answer, continues = True, False
        elif kind in ("turn_complete", "interrupted"):
            in_answer = continues = False
        elif kind == "answer_cut":
            in_answer, continues = False, True
    return firsts


# ---- the table ----------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def row(config: Config, runs: list[Figures]) -> list[str]:
    m = lambda name: _median([getattr(r, name) for r in runs])  # noqa: E731
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
        f"{(m('delivered') or 0) * 100:.1f} % ({m('unsent_s') or 0:.1f} s)",
        f"{m('spliced'):.0f} / {m('unheard'):.0f}",
        f"{pictures:.0f}" + ("" if kb is None else f" ({kb:.0f} KB)"),
        ("off" if m("slow_on_s") is None else f"{m('slow_on_s'):.1f} s")
        + f" / {m('slow_flaps'):.0f}",
    ]


def router_row(config: Config, runs: list[Figures]) -> list[str]:
    m = lambda key: _median([r.router.get(key) for r in runs])  # noqa: E731
    kb = lambda key: "-" if m(key) is None else f"{m(key) / 1000:.0f} KB"  # noqa: E731
    n = lambda key: "-" if m(key) is None else f"{m(key):.0f}"  # noqa: E731
    return [
        config.label,
        kb("up_bytes"),
        n("up_dropped"),
        kb("down_bytes"),
        n("down_dropped"),
        f"{n('up_lost')} / {n('down_lost')}",
        f"{_median([r.underruns for r in runs]):.0f}",
        f"{_median([r.connections for r in runs]):.0f}",
        _s(_median([r.slow_s for r in runs])),
        _s(_median([r.reported_lost_s for r in runs])),
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
