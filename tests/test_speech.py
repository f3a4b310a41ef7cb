"""Store noise over an answer is not the user talking; the user talking over it is."""

from __future__ import annotations

import numpy as np
import pytest

from bench.vad import barge_ins, over_an_answer, through_echo_canceller
from shelfsight.media.wav import load_mic_pcm
from shelfsight.session.speech import LevelDetector, VoiceDetector, make_detector
from shelfsight.session.tones import ToneSplit
from tests.conftest import ASSETS
from tests.support import store_noise as sn

SECONDS = 20.0


def placed(sound: np.ndarray, at_s: float, n: int) -> np.ndarray:
    """`n` samples of silence with `sound` starting `at_s` in (cut at the end)."""
    out = np.zeros(n, np.float32)
    at = int(at_s * sn.SR)
    out[at : at + len(sound)] = sound[: n - at]
    return out


@pytest.fixture(scope="module")
def store() -> np.ndarray:
    return sn.store_ambience(SECONDS, level_dbfs=-35.0)


def test_store_noise_over_an_answer_does_not_stop_it(store: np.ndarray) -> None:
    """Voices, music, a chime with an announcement and trolleys at -35 dBFS for 20 s."""
    assert isinstance(make_detector(), VoiceDetector)
    assert len(barge_ins(VoiceDetector(), store)) <= 1
    for noise in (sn.babble(SECONDS, level_dbfs=-35.0), sn.music(SECONDS, level_dbfs=-35.0)):
        assert len(barge_ins(VoiceDetector(), noise)) <= 1
    assert len(barge_ins(LevelDetector(), store)) >= 1  # what the energy threshold did


def test_the_user_talking_over_store_noise_stops_the_answer(store: np.ndarray) -> None:
    speech, spans = sn.user_speech(SECONDS)
    mix = sn.mix_at_snr(speech, store, 10.0, spans)
    fired = [i * 320 for i in barge_ins(VoiceDetector(), mix.audio)]
    heard = sum(any(start <= f <= end for f in fired) for start, end in spans)
    assert len(spans) >= 3 and heard == len(spans)


@pytest.fixture(scope="module")
def chime_over_answer() -> tuple[np.ndarray, np.ndarray]:
    """6 s of store at -35 dBFS, then a two-tone bell chime (A3, then F3 struck while A3 still
    rings) as loud as the user (-20 dBFS while it sounds), all over an answer playing: the
    kind Silero takes for a voice once the echo canceller has been over it, and whose second
    note blurs with the first in a 32 ms spectrum. Returns (store, chime) alone."""
    store = sn.store_ambience(10.0, level_dbfs=-35.0, seed=40)
    chime = sn.set_active_level(sn.chime_event(np.random.default_rng(2), 6, 2), -20.0)
    return store, placed(chime, 6.0, len(store))


def test_a_chime_as_loud_as_the_user_does_not_stop_the_answer(
    chime_over_answer: tuple[np.ndarray, np.ndarray],
) -> None:
    store, chime = chime_over_answer
    mic = over_an_answer(store + chime)
    assert barge_ins(VoiceDetector(ignore_tones=False), mic)  # what Silero and the floor did
    assert barge_ins(VoiceDetector(), mic) == []


def test_the_user_talking_over_that_chime_stops_the_answer(
    chime_over_answer: tuple[np.ndarray, np.ndarray],
) -> None:
    """The user starts 0.3 s into the chime, as loud as it."""
    store, chime = chime_over_answer
    words = sn.set_active_level(sn.speak("No, the other one, on the top shelf."), -20.0)
    user = placed(words, 6.3, len(store))
    fired = [i * sn.FRAME for i in barge_ins(VoiceDetector(), over_an_answer(store + chime + user))]
    start = int(6.3 * sn.SR)
    assert fired and start <= fired[0] <= start + len(words)


def test_a_high_voice_over_checkout_beeps_stops_the_answer() -> None:
    """A steady high voice (espeak's en-us+f2) 7 dB over the store, checkouts beeping as loud
    as it from 0.5 s before: its harmonics stand apart like a chime's lines, but they come as a
    comb of one gliding pitch, and are the voice."""
    store = sn.store_ambience(6.0, level_dbfs=-35.0, seed=40)
    beeps = sn.set_active_level(sn.scanning_event(np.random.default_rng(0), 5.0), -28.0)
    words = sn.speak("Is this on offer today or was that last week?", "en-us+f2", 165, 45)
    words = sn.set_active_level(words, -28.0)
    mic = store + placed(beeps, 2.5, len(store)) + placed(words, 3.0, len(store))
    fired = [i * sn.FRAME for i in barge_ins(VoiceDetector(), through_echo_canceller(mic))]
    start = int(3.0 * sn.SR)
    assert fired and start <= fired[0] <= start + len(words)


def test_other_shoppers_over_the_music_do_not_stop_the_answer() -> None:
    """The store's voices start up as the mic opens: the floor they must rise above counts the
    music's notes (only a tonal sound that stands out, a chime, an alarm, is left out of it)."""
    mic = through_echo_canceller(sn.store_ambience(6.0, level_dbfs=-35.0, seed=84))
    assert barge_ins(VoiceDetector(), mic) == []


def test_a_chime_with_harmonics_as_loud_as_the_user_does_not_stop_the_answer() -> None:
    """A low two-tone chime with five harmonics over an answer: a comb like a voice's, but one
    that holds its pitch."""
    store = sn.store_ambience(10.0, level_dbfs=-35.0, seed=49)
    chime = sn.harmonic_chime_event(np.random.default_rng(1))[: 4 * sn.SR] * 10 ** (-20 / 20)
    assert barge_ins(VoiceDetector(), over_an_answer(store + placed(chime, 6.0, len(store)))) == []


def test_a_voice_that_holds_its_pitch_is_not_a_tone() -> None:
    """The bundled question, a synthetic voice whose pitch barely moves: in 128 ms its first
    harmonics stand apart as lines, but as a comb, and phases there tell no note from a voice."""
    x = sn.from_pcm16(load_mic_pcm(ASSETS / "question.wav"))
    split, lines, total = ToneSplit(), 0.0, 0.0
    for chunk in np.split(x[: len(x) // sn.FRAME * sn.FRAME], len(x) // sn.FRAME):
        power = float(np.dot(chunk, chunk))
        lines, total = lines + power * split.line_share_of(chunk), total + power
    assert lines < 0.2 * total
