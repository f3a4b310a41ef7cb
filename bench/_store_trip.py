"""A store trip for `bench.tokens --store-trip`: what goes up, what it costs, what is lost.

One trip cycle (`cycle_s`, 120 s: a question every 2 minutes) is run for real: the CLI
(`shelfsight run`, a shelf video as the camera, the stand-in over TLS) hears generated store
noise (tests/support/store_noise.py: voices, music, PA chimes and announcements, trolleys, a
fridge hum, all at `NOISE_DBFS`) with the user's question (espeak-ng speech) mixed `snr` dB
over it, late in the cycle (the detector's noise floor has settled, as it has on a real trip).
From what the stand-in received:

- the share of the cycle sent as audio, the pictures sent per question (the session's first
  picture, sent once a trip, not counted), the turns answered;
- whether each question's first syllable (its first 200 ms of speech) reached the endpoint,
  and how much went before it: the received audio is found, byte for byte, in the mic file
  (a WAV mic has no echo canceller), so what was spoken is compared with what was received;
- a 30-minute trip: 15 such cycles replayed on the stand-in's usage model with the setup the
  client sent (its media resolution and sliding window), one answer a cycle billed the whole
  context (turns the stand-in's energy detector started on store noise are counted, not
  billed: the service's own detector is not known to start on them).

"before" is shelfsight as it was (all the mic, pictures on the 1 / 0.2 fps timer, the sliding
window at the service's default trigger); "after" its defaults. Runs of one config go in
parallel, one stand-in each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.session.cost import Prices, Tokens
from shelfsight.standin import ScriptedAnswer, StandIn, StandInConfig, client_env
from shelfsight.standin.audio import synth_speech_pcm16
from shelfsight.standin.usage import UsageModel, UsageRates
from tests.support import store_noise as sn

NOISE_DBFS = -42.0  # store noise at the mic, RMS
QUESTION = "Excuse me, where is the gluten free bread?"
ANSWER_S = 3.0
QUESTION_BEFORE_END_S = 25.0  # the question this long before the cycle ends
FIRST_SYLLABLE_S = 0.2
TRIP_CYCLES = 15  # 30 minutes
CONFIGS: dict[str, tuple[str, ...]] = {
    "before": ("--send-audio", "always", "--pictures", "timer", "--context-tokens", "104857"),
    "after": (),
}


@dataclass(frozen=True)
class Cycle:
    """What one real cycle sent and what the stand-in billed."""

    snr_db: float
    seconds: float
    audio_s: float
    frames: int  # pictures a cycle, not counting the session's first (sent once a trip)
    turns: int
    first_syllable: bool
    preroll_ms: float  # audio sent before the question's first speech (negative: cut)
    setup: dict[str, Any]
    billed_usd: float


def store_mic(path: Path, snr_db: float, cycle_s: float) -> tuple[Path, int]:
    """The cycle's mic: store noise with the question `snr_db` over it; returns the WAV and
    the question's first speech sample."""
    noise = sn.store_ambience(cycle_s, level_dbfs=NOISE_DBFS)
    speech = sn.speak(QUESTION, "en-us+m3", 165, 45)
    at = int((cycle_s - QUESTION_BEFORE_END_S) * sn.SR)
    voice = np.zeros(len(noise), np.float32)
    voice[at : at + len(speech)] = speech
    mix = sn.mix_at_snr(voice, noise, snr_db)
    onset = at + int(np.flatnonzero(np.abs(speech) > 0.05 * np.abs(speech).max())[0])
    write_wav(path, sn.to_pcm16(mix.audio), sn.SR)
    return path, onset


def covered(mic: bytes, received: list[bytes]) -> np.ndarray:
    """Which mic samples reached the endpoint: each received chunk found in the mic, in
    order (store noise makes every 20 ms of it unique)."""
    got = np.zeros(len(mic) // 2, bool)
    at = 0
    for chunk in received:
        found = mic.find(chunk, at)
        if found < 0:
            found = mic.find(chunk)  # re-sent after a reconnect: earlier in the mic
        if found >= 0 and found % 2 == 0:
            got[found // 2 : (found + len(chunk)) // 2] = True
            at = found + len(chunk)
    return got


def run_cycle(
    config: str, snr_db: float, camera: Path, work: Path, cycle_s: float, out: dict[float, Cycle]
) -> None:
    mic_path, onset = store_mic(work / f"mic-{snr_db:g}.wav", snr_db, cycle_s)
    answer_pcm = synth_speech_pcm16(ANSWER_S, 24_000)
    answer = ScriptedAnswer(QUESTION, "Aisle four, bottom shelf.", answer_pcm)
    standin = StandInConfig(answers=(answer,), vad_threshold_dbfs=NOISE_DBFS + 3)
    folder = work / f"{config}-{snr_db:g}"
    with StandIn.start_in_thread(standin) as server:
        env = {**os.environ, **client_env(server.base_url, server.ca_pem_path, "bench-key")}
        argv = [sys.executable, "-m", "shelfsight", "run", "--plain", "--camera", str(camera)]
        argv += ["--mic", str(mic_path), "--speaker", f"{folder}.wav", "--record", str(folder)]
        argv += [*CONFIGS[config], "--speak-status", "off"]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=cycle_s + 120)
        if done.returncode != 0:
            raise SystemExit(f"shelfsight run failed: {done.stderr.strip()}")
        conns = server.server.connections
        received = [e.data for c in conns for e in c.received("audio")]
        frames = sum(len(c.received("video")) for c in conns)
        turns = sum(c.turns_completed for c in conns)
        setup = conns[0].setup or {}
    mic = load_mic_pcm(mic_path)
    got = covered(mic, received)
    syllable = got[onset : onset + int(FIRST_SYLLABLE_S * sn.SR)]
    before = onset - 1
    while before >= 0 and got[before]:
        before -= 1
    manifest = json.loads((folder / "manifest.json").read_text())
    out[snr_db] = Cycle(
        snr_db,
        len(mic) / 2 / sn.SR,
        sum(len(c) for c in received) / 2 / sn.SR,
        max(0, frames - 1),
        turns,
        bool(syllable.all()),
        (onset - 1 - before) / sn.SR * 1000 if got[onset] else -1.0,
        setup,
        float(manifest.get("cost_usd", 0.0)),
    )


def run_config(config: str, camera: Path, work: Path, cycle_s: float) -> list[Cycle]:
    out: dict[float, Cycle] = {}
    threads = [
        threading.Thread(target=run_cycle, args=(config, snr, camera, work, cycle_s, out))
        for snr in (5.0, 10.0, 15.0)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [out[snr] for snr in sorted(out)]


def trip(cycle: Cycle, cycles: int = TRIP_CYCLES) -> tuple[Tokens, list[int]]:
    """`cycles` of this cycle on the usage model: the trip's tokens, and each turn's context."""
    model = UsageModel(UsageRates(), cycle.setup)
    total, contexts = Tokens(), []
    for _ in range(cycles):
        model.heard_audio(cycle.audio_s)
        for _ in range(cycle.frames):
            model.saw_frame()
        bill = model.bill(ANSWER_S)  # the cycle's question (a turn heard in noise: not billed)
        prompt = {d["modality"].lower(): d["tokenCount"] for d in bill["promptTokensDetails"]}
        total = total + Tokens(
            audio_in=prompt.get("audio", 0),
            video_in=prompt.get("video", 0) + prompt.get("image", 0),
            text_in=prompt.get("text", 0),
            audio_out=bill["responseTokenCount"],
        )
        contexts.append(bill["promptTokenCount"])
    return total, contexts


def usd(tokens: Tokens) -> float:
    return tokens.usd(Prices())
