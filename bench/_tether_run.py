"""What one bench.tether run did, read from its records: the recording, the speaker WAV and the
stand-in's report (what it received, when, and the turns it took)."""

from __future__ import annotations

import json
import statistics
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench._tether_figures import (
    WIN,
    MicMap,
    Segment,
    delivered,
    plays,
    reached,
    spliced,
    stream_length,
)


@dataclass
class Media:
    mic: Path
    questions: list[tuple[int, int]]  # their words: 16 kHz samples of the mic file
    video: Path
    answer: np.ndarray  # 24 kHz
    micmap: MicMap


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
    delivered: float  # of the questions' words
    sent: float  # of the whole mic file (speech only: the pauses stay home)
    spliced: int
    unheard: int  # questions the stand-in never answered
    pictures: int
    picture_kb: float | None
    slow_on_s: float | None
    slow_flaps: int
    slow_s: float
    router: dict[str, int] = field(default_factory=dict)


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
    mic_start = next((e["t"] for e in events if e["type"] == "mic_start"), 0.0)
    t_mic = mic_origin(report.get("audio", []), raw, media.micmap, t_recording + mic_start)
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
    words = [(a // 2, b // 2) for a, b in media.questions]
    share, sent = delivered(list(placed.values()), media.micmap.n8, words)
    return Figures(
        exit_code=code,
        answered=len(heard),
        lag_first_s=lags[0] if lags else None,
        lag_later_s=median_of(lags[1:]),
        holes_per_answer=statistics.mean(len(p.holes) for p in heard) if heard else None,
        hole_s_per_answer=statistics.mean(sum(p.holes) / 24000 for p in heard) if heard else None,
        underruns=int(manifest.get("speaker_underruns", 0)),
        reported_lost_s=float(manifest.get("audio_dropped_s", 0.0)),
        cuts=int(manifest.get("dead_links", 0)),
        connections=int(manifest.get("connections", 0)),
        delivered=share,
        sent=sent,
        spliced=sum(spliced(list(placed.values()), (a // 2, b // 2)) for a, b in media.questions),
        unheard=sum(t is None for t in asked),
        pictures=len(frames),
        picture_kb=statistics.mean(e[2] for e in frames) / 1000 if frames else None,
        slow_on_s=ons[0] if ons else None,
        slow_flaps=max(0, len(ons) - 1),
        slow_s=float(manifest.get("slow_link_s", 0.0)),
        router=router,
    )


def mic_origin(index: list[list[Any]], raw: bytes, micmap: MicMap, recorded: float) -> float:
    """When the mic file began (monotonic s): 16 kHz chunk c is read 20 ms after it began to
    be spoken, at origin + (c + 1) * 20 ms, and reaches the stand-in no sooner. With no 16 kHz
    chunk received (speech only, slow from before the first question), the recording's
    `mic_start` (`recorded`, its wall clock brought to this one)."""
    arrivals = [
        t - (c + 1) * 0.02
        for _conn, t, rate, offset, length in index
        if rate == 16000 and (c := micmap.chunks.get(raw[offset : offset + length])) is not None
    ]
    return min(arrivals) if arrivals else recorded


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


def median_of(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
