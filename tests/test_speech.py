"""Store noise over an answer is not the user talking; the user talking over it is."""

from __future__ import annotations

import numpy as np
import pytest

from bench.vad import barge_ins, through_echo_canceller
from shelfsight.session.speech import LevelDetector, VoiceDetector, make_detector
from tests.support import store_noise as sn

SECONDS = 20.0


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
    """2.5 s of store at -35 dBFS, then a two-tone bell chime (A3, F3) with a tremolo as
    loud as the user (-20 dBFS while it sounds): the kind Silero takes for a voice once the
    echo canceller's noise suppression has been over it. Returns (store, chime) alone."""
    store = sn.store_ambience(6.0, level_dbfs=-35.0, seed=40)
    chime = sn.set_active_level(sn.chime_event(np.random.default_rng(0), 6, 2), -20.0)
    lead = int(2.5 * sn.SR)
    return store[: lead + len(chime)], np.concatenate([np.zeros(lead, np.float32), chime])


def test_a_chime_as_loud_as_the_user_does_not_stop_the_answer(
    chime_over_answer: tuple[np.ndarray, np.ndarray],
) -> None:
    store, chime = chime_over_answer
    mic = through_echo_canceller(store + chime)
    assert barge_ins(VoiceDetector(ignore_tones=False), mic)  # what Silero and the floor did
    assert barge_ins(VoiceDetector(), mic) == []


def test_the_user_talking_over_that_chime_stops_the_answer(
    chime_over_answer: tuple[np.ndarray, np.ndarray],
) -> None:
    """The user starts 0.3 s into the chime, as loud as it."""
    store, chime = chime_over_answer
    words = sn.set_active_level(sn.speak("No, the other one, on the top shelf."), -20.0)
    start = int(2.8 * sn.SR)
    user = np.zeros(max(len(store), start + len(words)), np.float32)
    user[start : start + len(words)] = words
    n = len(user)
    mic = through_echo_canceller(np.pad(store + chime, (0, n - len(store))) + user)
    fired = [i * sn.FRAME for i in barge_ins(VoiceDetector(), mic)]
    assert fired and start <= fired[0] <= start + len(words)
