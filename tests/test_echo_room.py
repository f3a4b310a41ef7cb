"""The whole pipeline in a simulated room: the answer from the speaker comes back into the mic.

Without echo cancellation the stand-in's energy detector takes the echo for the user talking
over the answer (a barge-in that cuts it); with it, the answer plays whole and the endpoint
hears nothing but the question.
"""

from __future__ import annotations

import asyncio
import io
import ssl
import wave
from pathlib import Path

import pytest

from shelfsight.app import Devices, run_conversation
from shelfsight.live.setup import Endpoint
from shelfsight.media.echo import EchoCanceller
from shelfsight.media.speaker import WavSpeaker
from shelfsight.settings import load_settings
from shelfsight.standin import ScriptedAnswer, StandIn, StandInConfig
from shelfsight.ui.view import PlainView
from tests.conftest import ASSETS, TEST_KEY
from tests.support.room import Room, RoomAcoustics, RoomMic, fan_out


def converse_in_a_room(tmp_path: Path, *, aec: bool) -> tuple[int, int, bytes, bytes]:
    """(interruptions the endpoint made, turns it completed, answer sent, speaker output)."""
    with wave.open(str(ASSETS / "answer.wav"), "rb") as w:
        answer = w.readframes(w.getnframes())
    config = StandInConfig(
        api_keys=frozenset({TEST_KEY}),
        answers=(ScriptedAnswer("where is the bread?", "Third shelf.", answer),),
    )
    out = tmp_path / f"speaker-{aec}.wav"
    with StandIn.start_in_thread(config) as server:

        async def go() -> None:
            room = Room(RoomAcoustics(echo_delay_ms=60, echo_gain_db=-9, reverb_ms=120))
            echo = EchoCanceller(enabled=aec)
            speaker = WavSpeaker(out, on_played=fan_out(room.on_played, echo.on_played))
            mic = RoomMic(room, ASSETS / "question.wav", duration_s=10.0)
            await mic.start()
            speaker.start()
            # No cues: this is about the answer's own echo (cue echo: test_heard_not_seen); a
            # cue at connect plays before the canceller has converged.
            flags = {"camera": "none", "speaker": str(out), "cues": False, "speak_status": False}
            settings = load_settings(flags, environ={})
            endpoint = Endpoint(
                server.base_url, ssl.create_default_context(cafile=str(server.ca_pem_path))
            )
            try:
                await run_conversation(
                    settings,
                    TEST_KEY,
                    PlainView(io.StringIO()),
                    endpoint,
                    devices=Devices(None, mic, speaker),
                    echo=echo,
                )
            finally:
                mic.close()
                speaker.close()

        asyncio.run(go())
        conn = server.server.connections[-1]
        interruptions, turns = conn.interruptions, conn.turns_completed
    with wave.open(str(out), "rb") as w:
        return interruptions, turns, answer, w.readframes(w.getnframes())


@pytest.mark.parametrize("aec", [False, True], ids=["without-aec", "with-aec"])
def test_the_answer_coming_back_through_the_mic_does_not_interrupt_it(
    tmp_path: Path, aec: bool
) -> None:
    interruptions, turns, answer, played = converse_in_a_room(tmp_path, aec=aec)
    if aec:
        assert interruptions == 0
        assert turns == 1  # the echo was not taken for a second question either
        assert answer in played
    else:
        assert interruptions >= 1, "without cancellation the echo should cut the answer"
