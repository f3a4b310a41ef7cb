"""False barge-ins in store noise and user speech detected: energy threshold vs voice detector.

The store-noise set is generated in code (tests/support/store_noise.py: several voices at once,
music, a chime and an announcement, trolley rattle, and all of them mixed), at several levels,
with a close-talking user mixed over it at 5/10/15 dB SNR. A barge-in is what the program does
hands-free: `BARGE_IN_S` of uninterrupted "speech" chunks over an answer.

    .venv/bin/python -m bench.vad [--seconds 30]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from bench._common import table
from shelfsight.media.pcm import rms_dbfs
from shelfsight.session.speech import LevelDetector, SpeechDetector, VoiceDetector
from shelfsight.session.turns import BARGE_IN_S
from tests.support import store_noise as sn


def barge_ins(detector: SpeechDetector, audio: np.ndarray) -> list[int]:
    """Chunk indices where a barge-in fires (once per uninterrupted run of speech)."""
    fired, run = [], 0
    need = round(BARGE_IN_S / 0.02)
    for i, chunk in enumerate(sn.chunks_pcm16(audio)):
        run = run + 1 if detector.is_speech(chunk, rms_dbfs(chunk)) else 0
        if run == need:
            fired.append(i)
    return fired


DETECTORS: dict[str, Callable[[], SpeechDetector]] = {
    "energy -42 dBFS": LevelDetector,
    "voice (VAD + floor)": VoiceDetector,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    seconds = args.seconds
    noises = {name: make(seconds) for name, make in sn.NOISES.items()}
    rows = []
    for level in (-45, -35, -25):
        for det_name, make_det in DETECTORS.items():
            cells = []
            for noise in noises.values():
                fired = barge_ins(make_det(), sn.set_level(noise, level))
                cells.append(f"{len(fired) * 60 / seconds:.1f}")
            rows.append([f"{level} dBFS", det_name, *cells])
    table(
        f"false barge-ins per minute of store noise over an answer ({seconds:g} s each)",
        [["noise level", "detector", *noises], *rows],
    )
    speech, spans = sn.user_speech(seconds)
    rows = []
    for snr in (5, 10, 15):
        for det_name, make_det in DETECTORS.items():
            hit, false_, n = 0, 0, 0
            for noise in noises.values():
                mix = sn.mix_at_snr(speech, sn.set_level(noise, -35), snr, spans)
                fired = [i * 320 for i in barge_ins(make_det(), mix.audio)]
                for start, end in spans:
                    n += 1
                    hit += any(start <= f <= end + 4800 for f in fired)
                false_ += sum(not any(s <= f <= e + 4800 for s, e in spans) for f in fired)
            rows.append(
                [
                    f"{snr} dB",
                    det_name,
                    f"{100 * hit / n:.0f} %",
                    f"{false_ * 60 / (seconds * len(noises)):.1f}",
                ]
            )
    table(
        "user speech over store noise at -35 dBFS: utterances that stop the answer, and "
        "false barge-ins per minute between them (mean over the noise kinds)",
        [["SNR", "detector", "utterances detected", "false per min"], *rows],
    )
    det, chunk = VoiceDetector(), sn.to_pcm16(speech[:320])
    t0 = time.perf_counter()
    for _ in range(500):
        det.is_speech(chunk, -30.0)
    print(f"\nvoice detector: {(time.perf_counter() - t0) / 500 * 1000:.3f} ms per 20 ms chunk")


if __name__ == "__main__":
    main()
