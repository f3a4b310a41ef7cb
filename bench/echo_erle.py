"""Echo cancellation on the simulated room: ERLE, convergence, cost and near-end preservation.

    python -m bench.echo_erle

The far end is the spoken answer (shelfsight/assets/answer.wav, played twice: 10 s) through
`tests.support.room` at several delays and attenuations, on a simulated clock (no waiting).
ERLE = echo energy at the mic / energy left in the cleaned mic, echo-only input, summed over a
window: after convergence (2 s to the end), over 0-0.5 s, 0.5-1 s, 1-2 s to show how fast it
gets there, and the worst 250 ms window of the whole run (among those with echo above
-50 dBFS). Near end: the question (shelfsight/assets/question.wav) spoken over the answer at
6 s; its surviving level is the double-talk output minus the echo-only output, relative to the
voice. VAD: seconds the stand-in's energy detector (-35 dBFS, 20 ms windows, 100 ms to start,
500 ms to end) spends in speech on echo-only input after 2 s, raw mic -> cleaned; and when it
first hears the question in the cleaned double-talk output (it starts at 6 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shelfsight.media.echo import EchoCanceller
from shelfsight.media.pcm import float_to_pcm16
from shelfsight.media.wav import load_mic_pcm, read_wav
from shelfsight.standin.audio import EnergyVad
from tests.support.room import Room, RoomAcoustics, Simulation, simulate

ASSETS = Path(__file__).resolve().parent.parent / "shelfsight" / "assets"
RATE_HZ = 16000
DURATION_S = 10.0
CONVERGED_FROM_S = 2.0
QUESTION_AT_S = 6.0
EARLY_WINDOWS_S = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0))

NOISY = RoomAcoustics(80, -6, 150, noise_dbfs=-50)
ROOMS = [
    ("30 ms, -6 dB, dry", RoomAcoustics(30, -6, 0)),
    ("60 ms, -9 dB, 120 ms reverb", RoomAcoustics(60, -9, 120)),
    ("120 ms, -12 dB, 250 ms reverb", RoomAcoustics(120, -12, 250)),
    ("120 ms, -6 dB, 250 ms reverb", RoomAcoustics(120, -6, 250)),
    ("300 ms (Bluetooth-like), -6 dB", RoomAcoustics(300, -6, 120)),
    ("80 ms, -6 dB, clipping speaker", RoomAcoustics(80, -6, 150, speaker_clip_dbfs=-14)),
    ("80 ms, -6 dB, store noise -50 dBFS", NOISY),
]
TIMESTAMP_ERROR_ROOM = ("10 ms, -6 dB, mic stamps 15 ms early", RoomAcoustics(10, -6, 120), -0.015)
OPTIONS = [  # the noisy store again, with other canceller settings
    ("80 ms, -6 dB, noise -50, NS off", {"noise_suppression": False}),
    ("80 ms, -6 dB, noise -50, AGC on", {"auto_gain_control": True}),
]


def db(x: np.ndarray) -> float:
    return 10 * float(np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-20))


def vad(x: np.ndarray) -> tuple[float, list[float]]:
    """Seconds in speech and the start times, by the stand-in's energy detector."""
    detector = EnergyVad(RATE_HZ, threshold_dbfs=-35, window_ms=20, speech_ms=100, silence_ms=500)
    pcm = float_to_pcm16(x)
    in_speech, starts = 0, []
    for i in range(0, len(pcm), 640):
        starts += [i / 2 / RATE_HZ for tr in detector.feed(pcm[i : i + 640]) if tr == "start"]
        in_speech += detector.in_speech
    return in_speech * 0.02, starts


def erle(sim: Simulation, start_s: float, end_s: float | None = None) -> float:
    window = slice(round(start_s * RATE_HZ), None if end_s is None else round(end_s * RATE_HZ))
    return db(sim.echo[window]) - db(sim.cleaned[window])


def worst_window(sim: Simulation, window_s: float = 0.25) -> float:
    n = round(window_s * RATE_HZ)
    return min(
        db(sim.echo[i : i + n]) - db(sim.cleaned[i : i + n])
        for i in range(0, len(sim.echo) - n + 1, n)
        if db(sim.echo[i : i + n]) > -50
    )


def timed(
    canceller: EchoCanceller, costs: list[float], shift_s: float
) -> Callable[[bytes, float], bytes]:
    """canceller.process, timed, seeing t_capture shifted by `shift_s` (a timestamp error)."""

    def process(pcm: bytes, t_capture: float) -> bytes:
        t0 = time.perf_counter()
        out = canceller.process(pcm, t_capture + shift_s)
        costs.append(time.perf_counter() - t0)
        return out

    return process


def run_room(
    label: str,
    acoustics: RoomAcoustics,
    far: bytes,
    question: bytes,
    shift_s: float = 0.0,
    options: dict[str, bool] | None = None,
) -> None:
    costs: list[float] = []
    ec = EchoCanceller(**(options or {}))
    process = timed(ec, costs, shift_s)
    echo_only = simulate(Room(acoustics), far, process, ec.on_played, duration_s=DURATION_S)
    ec = EchoCanceller(**(options or {}))
    both = simulate(
        Room(acoustics), far, timed(ec, [], shift_s), ec.on_played,
        voice_pcm16=question, voice_at_s=QUESTION_AT_S, duration_s=DURATION_S,
    )  # fmt: skip
    early = " ".join(f"{erle(echo_only, a, b):5.1f}" for a, b in EARLY_WINDOWS_S)
    q = slice(round(QUESTION_AT_S * RATE_HZ), round((QUESTION_AT_S + 2.3) * RATE_HZ))
    kept = db(both.cleaned[q] - echo_only.cleaned[q]) - db(both.voice[q])
    tail = slice(round(CONVERGED_FROM_S * RATE_HZ), None)
    raw_s, _ = vad(echo_only.mic[tail])
    cleaned_s, _ = vad(echo_only.cleaned[tail])
    heard = [t for t in vad(both.cleaned)[1] if t >= CONVERGED_FROM_S]
    print(
        f"{label:38s} {erle(echo_only, CONVERGED_FROM_S):5.1f}  "
        f"{early} {worst_window(echo_only):5.1f}  "
        f"{np.mean(costs) * 1e6:4.0f} {np.percentile(costs, 99) * 1e6:4.0f}  {kept:+5.1f}  "
        f"{raw_s:4.1f} -> {cleaned_s:3.1f}  {f'{heard[0]:.2f} s' if heard else 'NOT HEARD'}"
    )


def main() -> None:
    samples, rate = read_wav(ASSETS / "answer.wav")
    assert rate == 24000
    far = float_to_pcm16(np.tile(samples[:, 0], 2))
    question = load_mic_pcm(ASSETS / "question.wav")
    print(
        f"far end: answer.wav x2 ({DURATION_S:.0f} s); ERLE over {CONVERGED_FROM_S:.0f}-"
        f"{DURATION_S:.0f} s; question at {QUESTION_AT_S:.0f} s; NS + high-pass on, AGC off"
    )
    print(
        f"{'room: echo delay, level':38s} {'ERLE dB':>5s}  {'0-.5  .5-1   1-2 s worst':23s}  "
        f"{'cost us':9s}  {'near':5s}  {'VAD s':11s}  {'question'}"
    )
    print(f"{'':38s} {'2-10s':>5s}  {'':23s}  mean  p99  {'dB':5s}  raw -> aec  heard at")
    warm_up = EchoCanceller()  # the first native calls are slow; keep them out of the costs
    simulate(Room(), far, warm_up.process, warm_up.on_played, duration_s=0.2)
    for label, acoustics in ROOMS:
        run_room(label, acoustics, far, question)
    label, acoustics, shift_s = TIMESTAMP_ERROR_ROOM
    run_room(label, acoustics, far, question, shift_s)
    for label, options in OPTIONS:
        run_room(label, NOISY, far, question, options=options)
    alone = vad(np.frombuffer(question, "<i2") / 32768)[1][0] + QUESTION_AT_S
    print(f"question alone, no echo, no canceller: heard at {alone:.2f} s")
    print("cost: wall time of one EchoCanceller.process() per 20 ms chunk, reference feed included")


if __name__ == "__main__":
    main()
