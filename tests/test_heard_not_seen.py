"""A whole session run without looking at the screen: what is heard from the speaker, and what
a screen reader reads.

The real CLI runs in a child process against the stand-in (real SDK, real TLS), with an MJPEG
camera that drops out, a connection that fails for several seconds, a slow model, and a mic
that goes digitally silent. The speaker WAV is then listened to: every cue the session
recorded (events.jsonl `cue`) is found in it, by cross-correlation, at the moment recorded;
spoken status sentences are found the same way, rendered by the same speech engine.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shelfsight.app import Devices, run_conversation
from shelfsight.live.events import AnswerAudio, Connected
from shelfsight.live.setup import Endpoint
from shelfsight.media.camera import CameraStatus
from shelfsight.media.earcons import MAX_CUE_S, Earcon, EarconBank, peak_dbfs_for, synth
from shelfsight.media.echo import EchoCanceller
from shelfsight.media.speaker import WavSpeaker
from shelfsight.media.tts import StatusVoice, find_engine
from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.session.announcer import Announcer, AnnouncerOptions
from shelfsight.session.conversation import Conversation, Options
from shelfsight.session.prompt import load_system_prompt, with_language
from shelfsight.session.status import Spoken, State, spoken, stopped_sentence
from shelfsight.settings import DEFAULT_MODEL, load_settings
from shelfsight.standin import ConnectionFaults, StandIn, StandInConfig
from shelfsight.standin.protocol import pick
from shelfsight.ui.controls import Control, TalkPressed, TypedQuestion
from shelfsight.ui.screen_reader import ScreenReaderView
from shelfsight.ui.view import PlainView
from shelfsight.ui.watch import ViewObserver
from tests.conftest import ASSETS, TEST_KEY, run_cli, standin_env
from tests.support.doubles import (
    LOUD,
    QUIET,
    MemorySpeaker,
    QueueMic,
    Screen,
    ScriptedLink,
    until,
)
from tests.support.listen import find_sound, heard_cues
from tests.support.mjpeg import MjpegServer
from tests.support.room import Room, RoomAcoustics, RoomMic, fan_out

RATE_HZ = 16_000
ENGINE = find_engine()
needs_speech = pytest.mark.skipif(
    ENGINE is None, reason="no speech engine (scripts/setup installs espeak-ng)"
)


def speaker_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def cue_events(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] in ("cue", "camera", "connected")]


def session_mic(path: Path) -> Path:
    """Two questions, the second at 28 s, a -60 dBFS noise floor, then 5 s of a dead mic."""
    question = np.frombuffer(load_mic_pcm(ASSETS / "question.wav"), "<i2").astype(np.int32)
    signal = np.zeros(int(43 * RATE_HZ), np.int32)
    signal += np.random.default_rng(3).normal(0, 30, len(signal)).astype(np.int32)
    for start_s in (0.5, 28.0):
        at = int(start_s * RATE_HZ)
        signal[at : at + len(question)] += question
    signal[int(37 * RATE_HZ) : int(42 * RATE_HZ)] = 0  # muted: digital silence
    write_wav(path, np.clip(signal, -32768, 32767).astype("<i2").tobytes(), RATE_HZ)
    return path


@needs_speech
def test_a_whole_session_can_be_followed_by_ear_and_by_screen_reader(tmp_path: Path) -> None:
    # A server error at 18 s, then four refused reconnects: 3.9 to 7.8 s without a connection.
    refused = ConnectionFaults(refuse_http_status=503)
    faults = (ConnectionFaults(close_after_s=18.0), *[refused] * 4)
    config = StandInConfig(
        api_keys=frozenset({TEST_KEY}),
        models=frozenset({DEFAULT_MODEL}),
        connection_faults=faults,
        think_s=3.6,
    )
    camera = MjpegServer()
    mic_path = session_mic(tmp_path / "mic.wav")
    mic = load_mic_pcm(mic_path)
    out, rec = tmp_path / "speaker.wav", tmp_path / "rec"
    try:
        with StandIn.start_in_thread(config) as standin:

            def drop_camera() -> None:  # once the first answer has played, for 5 s
                deadline = time.monotonic() + 30
                while not standin.server.turns_completed and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(1.5)
                camera.up = False
                time.sleep(5.0)
                camera.up = True

            threading.Thread(target=drop_camera, daemon=True).start()
            result = run_cli(
                "run", "--camera", camera.url, "--mic", str(mic_path),
                "--speaker", str(out), "--record", str(rec), "--screen-reader",
                env={**standin_env(standin), "SHELFSIGHT_SILENT_MIC_S": "4"}, timeout_s=90,
            )  # fmt: skip
            audio = [e for c in standin.server.connections for e in c.received("audio")]
    finally:
        camera.close()
    assert result.code == 0, result.stdout + result.stderr
    played, events = speaker_pcm(out), cue_events(rec)
    bank = EarconBank()
    heard = heard_cues(played, bank)
    recorded = [e for e in events if e["type"] == "cue" and e["cue"] != "status"]
    # Every cue recorded is heard, in order, each at the moment recorded (one offset for all:
    # the speaker file starts a moment after the recording does).
    assert [c for _, c in heard] == [e["cue"] for e in recorded], (heard, recorded)
    offsets = [t - e["t"] for (t, _), e in zip(heard, recorded, strict=True)]
    assert max(offsets) - min(offsets) < 0.15, offsets
    names = [e["cue"] for e in recorded]
    for cue in (
        Earcon.READY,
        Earcon.HEARD,
        Earcon.THINKING,
        Earcon.CAMERA_LOST,
        Earcon.CAMERA_BACK,
    ):
        assert cue in names, names
    assert names.index(Earcon.RECONNECTING) < names.index(Earcon.BACK)
    # Each cue follows what it is about.
    camera_at = [e["t"] for e in events if e["type"] == "camera"]
    lost = next(e["t"] for e in recorded if e["cue"] == Earcon.CAMERA_LOST)
    assert 0 <= lost - camera_at[0] < 1.0
    # Spoken status: said for what lasted or needed the user, heard in the speaker file.
    voice = StatusVoice(ENGINE)  # type: ignore[arg-type]
    said = [e for e in events if e["type"] == "cue" and e["cue"] == "status"]
    expected = {Spoken.CAMERA_LOST, Spoken.CAMERA_BACK, Spoken.NO_CONNECTION}
    expected |= {Spoken.CONNECTED_AGAIN, Spoken.MIC_SILENT}
    assert expected <= {e["status"] for e in said}, said
    for event in said:
        pcm = voice.render(event["text"])
        assert pcm is not None
        hits = find_sound(played, pcm, 0.9)
        assert any(abs(t - event["t"] - offsets[0]) < 0.15 for t in hits), event
    # Never over an answer: no cue starts inside an answer heard in the file.
    answer = config.answers[0].answer_pcm24k
    answers_at = find_sound(played, answer)
    assert len(answers_at) == 2
    for t, cue in heard:
        for a in answers_at:
            assert not a <= t < a + len(answer) / 48000, (cue, t, a)
    # No cue reached the endpoint as mic audio (no acoustic path here; the room test has one):
    # every 20 ms the stand-in received is a chunk of the mic file, or silence.
    mic_chunks = {mic[i : i + 640] for i in range(0, len(mic), 640)} | {bytes(640)}
    odd = [(n, len(e.data), e.mime_type) for n, e in enumerate(audio) if e.data not in mic_chunks]
    slow = [line for line in result.stdout.splitlines() if "slow connection" in line]
    assert not odd, (len(audio), odd[:5], len(odd), slow)
    # The screen reader's text: one line per event, nothing redrawn or repeated.
    lines = result.stdout.splitlines()
    assert_screen_reader_friendly(result.stdout)
    assert "You said: Where are the gluten-free crackers?" in lines
    assert lines.count("shelfsight said: Third shelf from the top, right end, green bag.") == 2
    for fragment in ("camera stopped", "camera back", "retrying", "reconnected after"):
        assert any(fragment in line.lower() for line in lines), (fragment, lines)
    assert spoken(Spoken.MIC_SILENT).text() in lines
    (tmp_path / "screen-reader.txt").write_text(result.stdout)


ANSI = re.compile(r"\x1b\[|\x1b\]|\r|\x08")


def assert_screen_reader_friendly(text: str) -> None:
    assert not ANSI.search(text), "a redraw, cursor move or colour code"
    lines = text.splitlines()
    assert all(line.strip() for line in lines), "blank lines"
    assert all(a != b for a, b in zip(lines, lines[1:], strict=False)), "a repeated line"
    assert not any(ch in text for ch in "█▏⠋⠙⠹…"), "meter or spinner characters"


# ---- the parts ---------------------------------------------------------------------------------


def test_each_cue_is_short_quieter_than_speech_and_unlike_the_others() -> None:
    bank = EarconBank()
    with wave.open(str(ASSETS / "answer.wav"), "rb") as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    speech_peak_db = 20 * np.log10(np.abs(speech).max() / 32768)
    gap = bytes(4800)
    for cue in Earcon:
        pcm = np.frombuffer(bank.pcm(cue), "<i2")
        assert len(pcm) / 24000 < MAX_CUE_S
        peak_db = 20 * np.log10(np.abs(pcm).max() / 32768)
        assert peak_db <= speech_peak_db - 10, (cue, peak_db, speech_peak_db)
        others = b"".join(bank.pcm(c) + gap for c in Earcon if c != cue)
        assert not find_sound(others, bank.pcm(cue), 0.9), f"{cue} sounds like another cue"
    assert peak_dbfs_for(1.0) == -6.0 and abs(peak_dbfs_for(0.2) + 20) < 0.1
    assert not np.any(np.frombuffer(synth(Earcon.READY, peak_dbfs_for(0.0)), "<i2"))


class LoggingSpeaker(MemorySpeaker):
    """Keeps every sound played, in order. Announcer play at once; silence (the tests' answers)
    stays queued until `play_all()`, as an answer still playing does."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[bytes] = []

    def play(self, pcm24k: bytes) -> None:
        self.log.append(pcm24k)
        if not any(pcm24k):
            super().play(pcm24k)


class Events:
    def __init__(self) -> None:
        self.cues: list[dict[str, Any]] = []

    def event(self, kind: str, **fields: Any) -> None:
        if kind == "cue":
            self.cues.append(fields)


def conversation_with_cues(
    *, push_to_talk: bool = False, answer_wait_s: float = 20.0, voice: StatusVoice | None = None
) -> tuple[Conversation, ScriptedLink, LoggingSpeaker, asyncio.Queue[Control], Events]:
    link, speaker, events = ScriptedLink(), LoggingSpeaker(), Events()
    controls: asyncio.Queue[Control] = asyncio.Queue()
    options = AnnouncerOptions(push_to_talk=push_to_talk, answer_wait_s=answer_wait_s)
    cues = Announcer(speaker, events, options, voice)
    conversation = Conversation(
        link=link, mic=QueueMic(), speaker=speaker, frames=None,
        observers=[ViewObserver(Screen()), cues],
        options=Options(push_to_talk=push_to_talk), controls=controls,
    )  # fmt: skip
    return conversation, link, speaker, controls, events


@pytest.mark.anyio
async def test_the_talk_key_is_heard_going_down_and_up() -> None:
    conversation, link, speaker, controls, events = conversation_with_cues(push_to_talk=True)
    run = asyncio.create_task(conversation.run())
    link.queue.put_nowait(Connected(1, False, 0.0))
    await until(lambda: [e["cue"] for e in events.cues] == [Earcon.READY])
    controls.put_nowait(TalkPressed(1.0))
    await until(lambda: len(events.cues) == 2)
    controls.put_nowait(TalkPressed(2.0))  # the key again: the turn ends
    await until(lambda: len(events.cues) == 3)
    assert [e["cue"] for e in events.cues] == [Earcon.READY, Earcon.TALK_DOWN, Earcon.TALK_UP]
    bank = EarconBank()
    assert speaker.log == [
        bank.pcm(Earcon.READY),
        bank.pcm(Earcon.TALK_DOWN),
        bank.pcm(Earcon.TALK_UP),
    ]
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


@needs_speech
@pytest.mark.anyio
async def test_a_question_left_unanswered_ticks_then_says_so() -> None:
    voice = StatusVoice(ENGINE)  # type: ignore[arg-type]
    conversation, link, speaker, controls, events = conversation_with_cues(
        answer_wait_s=3.5, voice=voice
    )
    run = asyncio.create_task(conversation.run())
    link.queue.put_nowait(Connected(1, False, 0.0))
    await until(lambda: len(events.cues) == 1)
    controls.put_nowait(TypedQuestion("where is the rice?"))
    await until(lambda: any(e["cue"] == "status" for e in events.cues), timeout_s=10)
    kinds = [e.get("status") or e["cue"] for e in events.cues]
    assert kinds == [
        Earcon.READY,
        Earcon.HEARD,
        Earcon.THINKING,
        Earcon.THINKING,
        Spoken.NO_ANSWER,
    ], kinds
    assert speaker.log[-1] == voice.render(spoken(Spoken.NO_ANSWER).text())
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


@pytest.mark.anyio
async def test_news_that_comes_during_an_answer_waits_until_the_answer_has_played() -> None:
    speaker, events = LoggingSpeaker(), Events()
    cues = Announcer(speaker, events, AnnouncerOptions())
    ticking = asyncio.create_task(cues.run())
    cues.state(State.CONNECTING)
    cues.state(State.LISTENING)
    cues.state(State.ANSWERING)  # the answer arrives (the state first, as the conversation does)
    speaker.play(bytes(48000))
    cues.camera(CameraStatus("phone", stalled=True))
    await asyncio.sleep(0.8)
    cues.state(State.LISTENING)  # the turn is complete, but its audio is still playing
    await asyncio.sleep(0.8)
    assert [e["cue"] for e in events.cues] == [Earcon.READY]
    speaker.play_all()
    t_played = time.monotonic()
    await until(lambda: len(events.cues) == 2)
    assert events.cues[-1]["cue"] == Earcon.CAMERA_LOST
    assert time.monotonic() - t_played >= 0.5, "a moment of quiet after the answer first"
    ticking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ticking


@pytest.mark.anyio
async def test_talking_as_the_ready_cue_plays_does_not_cut_it_but_talking_over_an_answer_does() -> (
    None
):
    """Barge-in stops answers: a user who starts asking as "ready" sounds still hears it whole
    (and the recording's `cue` event stays true)."""
    link, speaker, events, mic = ScriptedLink(), MemorySpeaker(), Events(), QueueMic()
    conversation = Conversation(
        link=link, mic=mic, speaker=speaker, frames=None,
        observers=[ViewObserver(Screen()), Announcer(speaker, events, AnnouncerOptions())],
        options=Options(barge_in_s=0.1),
    )  # fmt: skip
    run = asyncio.create_task(conversation.run())
    link.queue.put_nowait(Connected(1, False, 0.0))
    await until(lambda: [e["cue"] for e in events.cues] == [Earcon.READY])
    assert speaker.pending_s > 0, "the ready cue is playing"
    mic.say(LOUD, 10)  # 200 ms of speech
    await until(lambda: link.kinds().count("audio") == 10)
    assert speaker.cleared == 0, "talking cut the ready cue"
    speaker.play_all()
    mic.say(QUIET, 25)
    link.queue.put_nowait(AnswerAudio(bytes(48000), 0.0))
    await until(lambda: speaker.pending_s > 0)
    mic.say(LOUD, 10)
    await until(lambda: speaker.pending_s == 0)
    assert speaker.cleared >= 1
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


def test_an_answer_never_waits_behind_a_cue() -> None:
    speaker, events = MemorySpeaker(), Events()
    cues = Announcer(speaker, events, AnnouncerOptions())
    cues.state(State.CONNECTING)
    cues.state(State.LISTENING)
    assert speaker.pending_s > 0, "the ready cue is playing"
    cues.state(State.ANSWERING)  # the answer's first audio comes next
    assert speaker.pending_s == 0


def test_once_an_answer_starts_what_plays_is_the_answer_not_a_cue() -> None:
    """Even when the cue played out just before (no tick since): else talking over the rest
    of the answer would spare it as if it were our own sound."""
    speaker, events = MemorySpeaker(), Events()
    cues = Announcer(speaker, events, AnnouncerOptions())
    cues.state(State.CONNECTING)
    cues.state(State.LISTENING)
    assert cues.playing, "the ready cue is ours"
    speaker.play_all()
    cues.state(State.ANSWERING)
    speaker.play(bytes(4800))
    assert not cues.playing


@needs_speech
def test_the_session_giving_up_is_heard_just_before_it_exits(tmp_path: Path) -> None:
    """The question is answered first (2.6 s in), so the speaker file is kept: a run
    that fails before any answer leaves no speaker file to listen to."""
    fault = ConnectionFaults(close_after_s=6.0, close_code=1008, close_reason="Policy violation.")
    config = StandInConfig(
        api_keys=frozenset({TEST_KEY}),
        models=frozenset({DEFAULT_MODEL}),
        connection_faults=(fault,),
    )
    out = tmp_path / "speaker.wav"
    mic = write_wav(
        tmp_path / "long.wav", load_mic_pcm(ASSETS / "question.wav") + bytes(32000 * 20)
    )  # the run is still going when the session gives up
    with StandIn.start_in_thread(config) as standin:
        result = run_cli(
            "run", "--camera", "none", "--mic", str(mic), "--speaker", str(out),
            env=standin_env(standin),
        )  # fmt: skip
    assert result.code == 2, result.stderr
    assert "answer audio received so far is in" in result.stderr
    message = result.stderr.strip().removeprefix("shelfsight: ")
    played = speaker_pcm(out)
    error_at = find_sound(played, EarconBank().pcm(Earcon.ERROR))
    assert len(error_at) == 1
    sentence = StatusVoice(ENGINE).render(stopped_sentence(message).text())  # type: ignore[arg-type]
    assert sentence is not None
    said_at = find_sound(played, sentence, 0.9)
    assert len(said_at) == 1 and error_at[0] < said_at[0] < error_at[0] + 1.0


def test_cues_and_spoken_status_can_be_turned_off(standin: Any, tmp_path: Path) -> None:
    out = tmp_path / "speaker.wav"
    result = run_cli(
        "run", "--camera", "none", "--mic", str(ASSETS / "question.wav"), "--speaker", str(out),
        "--cues", "off", "--speak-status", "off", env=standin_env(standin),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert heard_cues(speaker_pcm(out)) == []
    bad = run_cli("run", "--cues", "maybe", "--cue-volume", "0.5", env=standin_env(standin))
    assert bad.code == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "cues" in bad.stderr
    loud = run_cli("run", "--cue-volume", "3", env=standin_env(standin))
    assert loud.code == 2 and "--cue-volume" in loud.stderr


def test_the_screen_reader_view_never_repeats_a_line() -> None:
    out = io.StringIO()
    view = ScreenReaderView(out)
    view.key_hints = "space: talk / stop  ·  q: quit"
    view.start()
    for state in (State.CONNECTING, State.CONNECTING, State.LISTENING, State.THINKING):
        view.state(state)
    view.notice("camera stopped sending pictures")
    view.notice("camera stopped sending pictures")
    view.mic_level(-20.0, True)
    view.user_said("where is")
    view.user_said(" the rice?")
    view.answer_said("Top shelf,\nleft end.")
    view.turn_done(1.2, interrupted=False)
    view.state(State.LISTENING)
    view.stop()
    assert out.getvalue().splitlines() == [
        "Keys: space: talk / stop; q: quit.",
        "Connecting.",
        "Ready: ask about what the camera sees.",
        "Camera stopped sending pictures.",
        "You said: where is the rice?",
        "shelfsight said: Top shelf, left end.",
    ]
    assert_screen_reader_friendly(out.getvalue())


# ---- directions a person can act on, in their language -----------------------------------------


PROMPT_RULES = {
    "shelf counted from the top": r"count shelves from the top",
    "or from the floor when shorter": r"count from the floor instead, whichever count is shorter",
    "left end / middle / right end": r'"left end", "middle", "right end"',
    "clock-face where a person would use it": r"clock-face",
    "how far": r"arm's length.*\n?.*a step to your right",
    "shape, colour and large text": r"shape and size.*\n?.*colour, and any large text",
    "one short instruction to move the camera": r"one short instruction to move the camera",
}


@pytest.mark.parametrize("rule", PROMPT_RULES, ids=list(PROMPT_RULES))
def test_the_prompt_makes_answers_actionable_without_sight(rule: str) -> None:
    prompt = load_system_prompt()
    assert re.search(PROMPT_RULES[rule], prompt, re.IGNORECASE | re.DOTALL), rule


def test_the_language_comes_from_the_flag_or_the_system_locale() -> None:
    assert load_settings({}, environ={"LANG": "nb_NO.UTF-8"}).language == "nb-NO"
    assert load_settings({}, environ={"LC_ALL": "de_DE@euro"}).language == "de-DE"
    assert load_settings({}, environ={"LANG": "C.UTF-8"}).language == "en-US"
    assert load_settings({"language": "fr-CA"}, environ={"LANG": "nb_NO"}).language == "fr-CA"
    assert "Norwegian (Bokmål) (nb-NO)" in with_language("Be brief.", "nb-NO")


def test_a_question_asked_in_norwegian_sets_up_the_session_in_norwegian(standin: Any) -> None:
    result = run_cli(
        "ask", "hvor er risen?", "--camera", "none", "--speaker", "a.wav",
        "--language", "nb-NO", env=standin_env(standin),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    setup = standin.server.connections[-1].setup or {}
    speech = setup.get("generationConfig", {}).get("speechConfig", {})
    assert (speech.get("languageCode") or speech.get("language_code")) == "nb-NO", setup
    heard = pick(setup, "inputAudioTranscription")
    assert pick(heard, "languageCodes") == ["nb-NO"], "the user's words transcribed in Norwegian"
    assert "always answer in Norwegian" in json.dumps(setup["systemInstruction"])
    bad = run_cli("ask", "x", "--camera", "none", "--language", "norsk takk")
    assert bad.code == 2 and "BCP-47" in bad.stderr


def cues_into_a_room(tmp_path: Path, *, aec: bool) -> tuple[bytes, bytes]:
    """A session in a simulated room where nobody speaks: (speaker output, what the endpoint
    received as mic audio). The only sound in the room is the ready cue."""
    quiet = write_wav(tmp_path / "nobody.wav", bytes(2 * RATE_HZ * 3), RATE_HZ)
    out = tmp_path / f"speaker-{aec}.wav"
    config = StandInConfig(api_keys=frozenset({TEST_KEY}))
    with StandIn.start_in_thread(config) as server:

        async def go() -> None:
            room = Room(RoomAcoustics(echo_delay_ms=60, echo_gain_db=-6, reverb_ms=120))
            echo = EchoCanceller(enabled=aec)
            speaker = WavSpeaker(out, on_played=fan_out(room.on_played, echo.on_played))
            mic = RoomMic(room, quiet, duration_s=3.0)
            await mic.start()
            speaker.start()
            # All the mic goes up, so what the canceller leaves of the cue is measured (by
            # default only speech goes, and a cue is none).
            flags = {"camera": "none", "speaker": str(out), "send_audio": "always"}
            settings = load_settings(flags, environ={})
            endpoint = Endpoint(server.base_url, server.server.client_ssl_context())
            try:
                await run_conversation(
                    settings, TEST_KEY, PlainView(io.StringIO()), endpoint,
                    devices=Devices(None, mic, speaker), echo=echo,
                )  # fmt: skip
            finally:
                mic.close()
                speaker.close()

        asyncio.run(go())
        received = b"".join(c.audio_bytes() for c in server.server.connections)
    return speaker_pcm(out), received


def loudest_20ms_dbfs(pcm: bytes) -> float:
    x = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768
    blocks = x[: len(x) // 320 * 320].reshape(-1, 320)
    return float(20 * np.log10(max(np.sqrt((blocks**2).mean(axis=1)).max(), 1e-6)))


def test_a_cue_heard_by_the_mic_is_not_sent_to_the_model_as_speech(tmp_path: Path) -> None:
    played, with_aec = cues_into_a_room(tmp_path, aec=True)
    _, without_aec = cues_into_a_room(tmp_path, aec=False)
    assert [c for _, c in heard_cues(played)] == [Earcon.READY]
    echo_db, residual_db = loudest_20ms_dbfs(without_aec), loudest_20ms_dbfs(with_aec)
    assert echo_db > -45, "the room should carry the cue back to the mic"
    print(f"cue echo at the mic {echo_db:.1f} dBFS, sent with cancellation {residual_db:.1f} dBFS")
    assert residual_db < echo_db - 15, (echo_db, residual_db)


def test_without_a_speech_engine_the_cues_play_alone_and_it_says_so_once(
    standin: Any, tmp_path: Path
) -> None:
    out = tmp_path / "speaker.wav"
    no_engine = {**standin_env(standin), "PATH": str(tmp_path)}  # no espeak-ng, say, pico2wave
    # 3 s of quiet first: the ready cue comes before the question (talking over it stops it,
    # as it would stop an answer, which a slow start under load made a race).
    mic = write_wav(tmp_path / "q.wav", bytes(3 * 32000) + load_mic_pcm(ASSETS / "question.wav"))
    result = run_cli(
        "run", "--camera", "none", "--mic", str(mic), "--speaker", str(out),
        "--plain", env=no_engine,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert result.stdout.count("spoken status needs a speech engine: install espeak-ng") == 1
    assert Earcon.READY in [c for _, c in heard_cues(speaker_pcm(out))]


@pytest.mark.parametrize("view_class", [PlainView, ScreenReaderView])
def test_an_answer_cut_by_the_connection_is_not_called_interrupted_or_timed(
    view_class: type[PlainView],
) -> None:
    """The user did not interrupt it, and a fragment's latency means nothing."""
    out = io.StringIO()
    view = view_class(out)
    view.user_said("where is the rice?")
    view.answer_said("Top shelf,")
    view.turn_done(None, interrupted=False, cut=True)
    text = out.getvalue()
    assert "cut off" in text, text
    assert "interrupted" not in text and "stopped" not in text and "answered in" not in text
