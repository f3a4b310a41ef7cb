"""Tokens a minute of a shopping trip, asking vs idle, for each `--media-resolution`.

The real CLI (`shelfsight run`, default settings otherwise: 768 px frames, 1 fps while someone
talks, 0.2 fps idle) runs against the stand-in, whose usage model bills every turn the way the
service does: the whole context window again (see shelfsight/standin/usage.py for the rates
and their sources). The client's own accounting (`usage` / `answer_cost` events of the
recording) is what is reported:

- asking: a question every 20 s; billed tokens and estimated price per minute;
- idle: one question, `--minutes` of silence, one question; what the silence added to the
  context (tokens a minute), which every later question pays for again;
- a 30-minute trip with a question every 2 minutes, replayed on the stand-in's usage model
  (with context compression) from the frames and audio measured in the two runs.

    python -m bench.tokens [--minutes 1] [--resolutions low,medium,high]
    python -m bench.tokens --store-trip [--cycle-s 120]

`--store-trip` runs a trip in store noise before and after issue 22 (what is sent, whether
each question's first syllable arrives, $ per 30-minute trip, the context each answer reads):
see bench/_store_trip.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import MIC_RATE_HZ, question_mic, shelf_video, table
from shelfsight.media.wav import write_wav
from shelfsight.session.cost import Prices, Tokens, format_usd
from shelfsight.standin import (
    ScriptedAnswer,
    StandIn,
    StandInConfig,
    client_env,
    synth_speech_pcm16,
)
from shelfsight.standin.usage import UsageModel, UsageRates

ANSWER_S = 1.5


@dataclass(frozen=True)
class Trip:
    minutes: float
    bills: list[dict[str, Any]]  # the recording's `usage` events
    frames: int

    def tokens(self) -> Tokens:
        return sum((_tokens(b) for b in self.bills), Tokens())


def _tokens(usage: dict[str, Any]) -> Tokens:
    prompt, response = usage["prompt_by_modality"], usage["response_by_modality"]
    return Tokens(
        audio_in=prompt.get("audio", 0),
        video_in=prompt.get("video", 0) + prompt.get("image", 0),
        text_in=prompt.get("text", 0),
        audio_out=response.get("audio", 0),
    )


def run_trip(resolution: str, camera: Path, mic: Path, work: Path, seconds: float) -> Trip:
    folder = work / f"{resolution}-{mic.stem}"
    answer = synth_speech_pcm16(ANSWER_S, 24_000)
    config = StandInConfig(answers=(ScriptedAnswer("Where is it?", "Top shelf.", answer),))
    with StandIn.start_in_thread(config) as server:
        env = {**os.environ, **client_env(server.base_url, server.ca_pem_path, "bench-key")}
        argv = [sys.executable, "-m", "shelfsight", "run", "--plain", "--camera", str(camera)]
        argv += ["--mic", str(mic), "--speaker", str(folder) + ".wav", "--record", str(folder)]
        argv += ["--media-resolution", resolution]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 90)
        if done.returncode != 0:
            raise SystemExit(f"shelfsight run failed: {done.stderr.strip()}")
        frames = len(server.server.connections[0].frames())
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    return Trip(seconds / 60, [e for e in events if e["type"] == "usage"], frames)


def idle_mic(path: Path, minutes: float) -> Path:
    speech, gap = synth_speech_pcm16(1.5, MIC_RATE_HZ), bytes(MIC_RATE_HZ * 2 * 6)
    quiet = bytes(int(MIC_RATE_HZ * 2 * 60 * minutes))
    return write_wav(path, bytes(MIC_RATE_HZ * 2) + speech + quiet + speech + gap, MIC_RATE_HZ)


def thirty_minutes(resolution: str, asking: Trip, idle: Trip) -> Tokens:
    """A 30-minute trip, a question every 2 min (20 s asking, 100 s idle), on the usage model,
    at the frame rates measured in the two runs; context compression as shelfsight asks."""
    setup = {
        "generationConfig": {"mediaResolution": f"MEDIA_RESOLUTION_{resolution.upper()}"},
        "contextWindowCompression": {"slidingWindow": {}},
        "systemInstruction": {"parts": [{"text": "x" * 4 * 425}]},  # shelfsight's prompt
    }
    model = UsageModel(UsageRates(), setup)
    ask_fps = asking.frames / (asking.minutes * 60)
    idle_fps = idle.frames / (idle.minutes * 60)
    total, owed = Tokens(), 0.0
    for _ in range(15):
        for seconds, fps in ((100, idle_fps), (20, ask_fps)):
            owed += seconds * fps
            model.heard_audio(seconds)
            while owed >= 1:
                model.saw_frame()
                owed -= 1
        bill = model.bill(ANSWER_S)
        details = {d["modality"].lower(): d["tokenCount"] for d in bill["promptTokensDetails"]}
        answer = {"audio": bill["responseTokenCount"]}
        usage = {"prompt_by_modality": details, "response_by_modality": answer}
        total = total + _tokens(usage)
    return total


def store_trip(cycle_s: float) -> None:
    """Before/after in store noise: one real cycle per noise level and config, then the trip."""
    from bench import _store_trip as st

    work = Path(tempfile.mkdtemp(prefix="bench-store-trip-"))
    camera = shelf_video(work / "shelf720.avi", seconds=10, size=(1280, 720))
    print(f"work files in {work}; noise {st.NOISE_DBFS:g} dBFS, a question every {cycle_s:g} s")
    rows = [("config", "SNR", "audio sent", "pictures/question", "answers", "first syllable",
             "sent before it", "$ per 30-min trip", "context at answer 1/5/10/15")]  # fmt: skip
    for config in st.CONFIGS:
        print(f"running {config} ({cycle_s:g} s, three noise levels at once) ...", flush=True)
        for cycle in st.run_config(config, camera, work, cycle_s):
            tokens, contexts = st.trip(cycle)
            per_question = cycle.frames  # one question a cycle
            at = [contexts[i] for i in (0, 4, 9, 14) if i < len(contexts)]
            rows.append(
                (
                    config,
                    f"{cycle.snr_db:g} dB",
                    f"{100 * cycle.audio_s / cycle.seconds:.0f} % ({cycle.audio_s:.1f} s)",
                    f"{per_question:.1f}",
                    str(cycle.turns),
                    "reached" if cycle.first_syllable else "LOST",
                    f"{cycle.preroll_ms:.0f} ms",
                    format_usd(st.usd(tokens)),
                    " / ".join(f"{c / 1000:.1f}k" for c in at),
                )
            )
    table("A store trip: one question every cycle, 15 cycles = 30 minutes", rows)
    print("audio sent: share of the cycle's time; answers: turns the stand-in answered in a")
    print("cycle of one question (more: its energy detector took store noise for speech)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--resolutions", default="low,medium,high")
    parser.add_argument("--store-trip", action="store_true", help="before/after in store noise")
    parser.add_argument("--cycle-s", type=float, default=120.0)
    args = parser.parse_args()
    if args.store_trip:
        store_trip(args.cycle_s)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-tokens-"))
    camera = shelf_video(work / "shelf720.avi", seconds=10, size=(1280, 720))
    turns = max(1, round(args.minutes * 3))
    asking_mic = question_mic(work / "asking.wav", turns=turns, gap_s=18.5, lead_s=1.0).path
    quiet_mic = idle_mic(work / "idle.wav", args.minutes)
    prices = Prices()
    print(f"work files in {work}; prices of {prices.as_of} (USD per 1M tokens)")
    rows = [("resolution", "asking tok/min", "asking $/min", "idle ctx tok/min",
             "idle $/min per later question", "30-min trip")]  # fmt: skip
    for resolution in args.resolutions.split(","):
        print(f"running {resolution} ...", flush=True)
        asking = run_trip(resolution, camera, asking_mic, work, args.minutes * 60 + 60)
        idle = run_trip(resolution, camera, quiet_mic, work, args.minutes * 60 + 20)
        per_min = asking.tokens().tokens_in / asking.minutes
        first, last = idle.bills[0], idle.bills[-1]
        grown = Tokens(
            audio_in=last["prompt_by_modality"].get("audio", 0)
            - first["prompt_by_modality"].get("audio", 0),
            video_in=last["prompt_by_modality"].get("video", 0)
            - first["prompt_by_modality"].get("video", 0),
        )
        trip = thirty_minutes(resolution, asking, idle)
        rows.append(
            (
                resolution,
                f"{per_min:,.0f}",
                format_usd(asking.tokens().usd(prices) / asking.minutes),
                f"{grown.tokens_in / args.minutes:,.0f}",
                format_usd(grown.usd(prices) / args.minutes),
                f"{trip.tokens_in / 1000:,.0f}k tokens, {format_usd(trip.usd(prices))}",
            )
        )
    table("Tokens billed (the client's own accounting of the stand-in's usageMetadata)", rows)
    print("asking: a question every 20 s; idle: nobody talks, frames at idle_fps 0.2")
    print("30-min trip: a question every 2 min, 15 in all, every turn re-reading the context")


if __name__ == "__main__":
    main()
