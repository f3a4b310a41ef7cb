"""False barge-ins in store noise and the user's interruptions detected: energy threshold,
voice detector before the tone rule, voice detector with it (session/tones.py).

The store-noise set is generated in code (tests/support/store_noise.py: several voices at once,
music, a chime and an announcement, trolley rattle, and all of them mixed), at several levels,
with a close-talking user mixed over it at 5/10/15 dB SNR. The tonal sounds (PA chimes, checkout
scanners, ringtones, door alarms: one every 3-10 s) come over the store at up to the user's own
level, and through the echo canceller's noise suppression as the mic does by default (it makes
a chime more voice-like to Silero). The hard ones (low bell chimes, low chimes with harmonics,
ringtones with a vibrato: the kinds Silero takes for a voice) come over an answer playing, its
echo and the echo canceller as in the product. A barge-in is what the program does
hands-free: `BARGE_IN_S` of uninterrupted "speech" chunks over an answer.

    .venv/bin/python -m bench.vad [--seconds 30] [--tone-seconds 300] [--tables hard,cpu]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from bench._common import table
from shelfsight.media.echo import EchoCanceller
from shelfsight.media.pcm import float_to_pcm16, rms_dbfs
from shelfsight.media.wav import read_wav
from shelfsight.session.speech import LevelDetector, SpeechDetector, VoiceDetector
from shelfsight.session.tones import ToneSplit
from shelfsight.session.turns import BARGE_IN_S
from tests.support import store_noise as sn
from tests.support.room import Room, RoomAcoustics, simulate

USER_DBFS = -20.0  # the user's level while talking (active_dbfs) in the tonal tables
ANSWER = Path(__file__).resolve().parent.parent / "shelfsight" / "assets" / "answer.wav"


def barge_ins(detector: SpeechDetector, audio: np.ndarray | Iterable[bytes]) -> list[int]:
    """Chunk indices where a barge-in fires (once per uninterrupted run of speech); `audio`
    as float samples or as 20 ms PCM16 chunks."""
    chunks = sn.chunks_pcm16(audio) if isinstance(audio, np.ndarray) else audio
    fired, run = [], 0
    need = round(BARGE_IN_S / 0.02)
    for i, chunk in enumerate(chunks):
        run = run + 1 if detector.is_speech(chunk, rms_dbfs(chunk)) else 0
        if run == need:
            fired.append(i)
    return fired


def through_echo_canceller(audio: np.ndarray) -> list[bytes]:
    """The mic's 20 ms chunks as the detector gets them by default (nothing played: noise
    suppression and the high-pass filter only)."""
    echo = EchoCanceller()
    return [echo.process(c, i * 0.02) for i, c in enumerate(sn.chunks_pcm16(audio))]


def over_an_answer(audio: np.ndarray) -> list[bytes]:
    """The mic's 20 ms chunks as the detector gets them while an answer plays: `audio` (the
    store, and whoever talks) plus the answer's echo through a simulated room (60 ms, -9 dB,
    120 ms of reverb: tests/support/room.py), the canceller fed with what was played. The
    answer is the bundled 5 s one, over and over."""
    x, rate_hz = read_wav(ANSWER)
    seconds = len(audio) / sn.SR
    far = float_to_pcm16(np.tile(x, int(seconds * rate_hz / len(x)) + 1))
    echo = EchoCanceller()
    sim = simulate(
        Room(RoomAcoustics()), far, echo.process, echo.on_played,
        voice_pcm16=sn.to_pcm16(audio), duration_s=seconds,
    )  # fmt: skip
    return list(sn.chunks_pcm16(sim.cleaned))


DETECTORS: dict[str, Callable[[], SpeechDetector]] = {
    "energy -42 dBFS": LevelDetector,
    "voice, before": lambda: VoiceDetector(ignore_tones=False),
    "voice + tones": VoiceDetector,
}


TAIL = int(0.3 * sn.SR)  # samples after an utterance where a barge-in still counts as it


def heard(fired: list[int], spans: list[tuple[int, int]]) -> int:
    """Utterances (sample spans) during which a barge-in fired (chunk indices)."""
    at = [i * sn.FRAME for i in fired]
    return sum(any(start <= f <= end for f in at) for start, end in spans)


def false_ones(fired: list[int], spans: list[tuple[int, int]]) -> int:
    """Barge-ins (chunk indices) away from every utterance (and its `TAIL`)."""
    at = [i * sn.FRAME for i in fired]
    return sum(not any(start <= f <= end + TAIL for start, end in spans) for f in at)


def store_table(seconds: float) -> None:
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
                fired = barge_ins(make_det(), mix.audio)
                n += len(spans)
                hit += heard(fired, spans)
                false_ += false_ones(fired, spans)
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


def tone_tables(seconds: float, user_seconds: float) -> None:
    voices = list(DETECTORS)[1:]
    ambience = sn.store_ambience(seconds, -35.0, seed=40)
    rows = []
    for level in (-30, -25, -20):
        cells: dict[str, list[str]] = {name: [] for name in voices}
        for k, kind in enumerate(sn.TONE_EVENTS):
            sounds = sn.tonal(kind, seconds, float(level), seed=50 + k)
            sounding = sn.frame_dbfs(sounds) > level - 20  # per chunk: the sound is on
            chunks = through_echo_canceller(ambience + sounds)
            for name in voices:
                fired = barge_ins(DETECTORS[name](), chunks)
                on = sum(bool(sounding[i - 4 : i + 1].any()) for i in fired)
                cells[name].append(f"{on * 60 / seconds:.2f} ({len(fired) * 60 / seconds:.1f})")
        rows += [[f"{level} dBFS", name, *cells[name]] for name in voices]
    table(
        f"false barge-ins per minute while a tonal sound plays (and in all, with the store's "
        f"own), the sounds over the store at -35 dBFS, one every 3-10 s, the user at "
        f"{USER_DBFS:g} dBFS ({seconds:g} s of each, through the echo canceller)",
        [["sound level", "detector", *sn.TONE_EVENTS], *rows],
    )
    ambience = ambience[: int(user_seconds * sn.SR)]
    rows = []
    for voice in ("en-us+m3", "en-us+f2"):
        speech, spans = sn.user_speech(user_seconds, voice=voice)
        for snr in (5, 10, 15):
            mix = sn.mix_at_snr(speech, ambience, snr, spans)
            level = sn.active_dbfs(mix.speech)
            tracks = {"none": mix.audio}
            for kind in sn.EVENTS:
                tracks[kind] = mix.audio + sn.sounds_over(kind, spans, len(mix.audio), level)
            chunked = {kind: through_echo_canceller(audio) for kind, audio in tracks.items()}
            for name in voices:
                cells = [
                    f"{heard(barge_ins(DETECTORS[name](), chunks), spans)}/{len(spans)}"
                    for chunks in chunked.values()
                ]
                rows.append([voice, f"{snr} dB", name, *cells])
    table(
        "the user talking over the store at -35 dBFS (and over a tonal sound as loud as the "
        "user, started 0-1 s before): utterances that stop the answer",
        [["voice", "SNR", "detector", "no sound", *sn.EVENTS], *rows],
    )


def hard_tables(trials: int, seconds: float) -> None:
    """The tonal sounds that fool Silero (sn.HARD_EVENTS), over an answer, as in the product.
    Each in `trials` trials of its own, the mic (and the echo canceller) opened 5-10 s before
    it, when Silero is fooled most; and one every 8-12 s for `seconds`, the store's own
    level between them (the floor's 5 s)."""
    voices = list(DETECTORS)[1:]
    ambience = sn.store_ambience(max(seconds, 60.0), -35.0, seed=40)
    cut_rows, minute_rows = [], []
    for level in (-30, -25, -20):
        cut: dict[str, list[str]] = {name: [] for name in voices}
        minute: dict[str, list[str]] = {name: [] for name in voices}
        for k, kind in enumerate(sn.HARD_EVENTS):
            rng, hits = np.random.default_rng(70 + k), dict.fromkeys(voices, 0)
            for _ in range(trials):
                sound = sn.HARD_EVENTS[kind](rng)[: 7 * sn.SR] * 10 ** (level / 20)
                lead = int(rng.uniform(5.0, 10.0) * sn.SR)
                at = int(rng.integers(len(ambience) - lead - len(sound)))
                audio = ambience[at : at + lead + len(sound)].copy()
                audio[lead:] += sound
                chunks = over_an_answer(audio)
                sounding = np.flatnonzero(sn.frame_dbfs(sound) > level - 20) + lead // sn.FRAME
                for name in voices:
                    fired = barge_ins(DETECTORS[name](), chunks)
                    hits[name] += any(sounding[0] <= i <= sounding[-1] + 4 for i in fired)
            sounds = sn.tonal(kind, seconds, float(level), seed=80 + k, every_s=(8.0, 12.0))
            sounding_all = sn.frame_dbfs(sounds) > level - 20
            chunks = over_an_answer(ambience[: len(sounds)] + sounds)
            for name in voices:
                fired = barge_ins(DETECTORS[name](), chunks)
                on = sum(bool(sounding_all[i - 4 : i + 1].any()) for i in fired)
                cut[name].append(f"{hits[name]}/{trials}")
                minute[name].append(f"{on * 60 / seconds:.2f} ({len(fired) * 60 / seconds:.1f})")
        cut_rows += [[f"{level} dBFS", name, *cut[name]] for name in voices]
        minute_rows += [[f"{level} dBFS", name, *minute[name]] for name in voices]
    table(
        "answers cut by the tonal sounds that fool Silero, each in a trial of its own: the "
        "mic opened 5-10 s before, the store at -35 dBFS, over an answer, through the echo "
        "canceller",
        [["sound level", "detector", *sn.HARD_EVENTS], *cut_rows],
    )
    table(
        f"false barge-ins per minute while one of them plays (and in all), one every 8-12 s "
        f"over the store at -35 dBFS, over an answer ({seconds:g} s of each)",
        [["sound level", "detector", *sn.HARD_EVENTS], *minute_rows],
    )


def cpu_per_chunk() -> None:
    chunks = through_echo_canceller(sn.tonal_store(10.0))
    for name, make in DETECTORS.items():
        det = make()
        t0 = time.perf_counter()
        for chunk in chunks:
            det.is_speech(chunk, rms_dbfs(chunk))
        per_ms = (time.perf_counter() - t0) / len(chunks) * 1000
        print(f"{name}: {per_ms:.3f} ms per 20 ms chunk")
    split, xs = ToneSplit(), [sn.from_pcm16(chunk) for chunk in chunks]
    t0 = time.perf_counter()
    for x in xs:
        split.line_share_of(x)
    per_ms = (time.perf_counter() - t0) / len(xs) * 1000
    print(f"the tone rule alone: {per_ms:.3f} ms per chunk")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0, help="of each store noise")
    ap.add_argument("--tone-seconds", type=float, default=300.0, help="of each tonal kind")
    ap.add_argument("--user-seconds", type=float, default=60.0, help="of user talking")
    ap.add_argument("--hard-trials", type=int, default=16, help="of each hard sound, level")
    ap.add_argument("--hard-seconds", type=float, default=300.0, help="of each hard sound")
    ap.add_argument("--tables", default="store,tones,hard,cpu", help="which, comma-separated")
    args = ap.parse_args()
    tables = args.tables.split(",")
    if "store" in tables:
        store_table(args.seconds)
    if "tones" in tables:
        tone_tables(args.tone_seconds, args.user_seconds)
    if "hard" in tables:
        hard_tables(args.hard_trials, args.hard_seconds)
    if "cpu" in tables:
        print()
        cpu_per_chunk()


if __name__ == "__main__":
    main()
