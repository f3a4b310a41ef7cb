"""Store noise over an answer is not the user talking; the user talking over it is."""

from __future__ import annotations

import numpy as np
import pytest

from bench.vad import barge_ins
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
