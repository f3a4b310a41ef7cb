"""Push-to-talk through a real terminal, typed questions, barge-in, and the key parser."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from shelfsight.media.pcm import rms_dbfs
from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.session.speech import SPEECH_DBFS
from shelfsight.session.turns import BARGE_IN_S, PushToTalk
from shelfsight.standin import ScriptedAnswer, StandIn, StandInConfig, StandInThread
from shelfsight.standin.audio import synth_speech_pcm16
from shelfsight.ui.controls import KeyParser, Quit, StopAnswer, TalkPressed, TypedQuestion, Typing
from tests.conftest import ASSETS, TEST_KEY, run_cli, standin_env
from tests.support.scene import read_frame_number
from tests.support.terminal import Terminal

QUESTION = ASSETS / "question.wav"


def test_push_to_talk_in_a_terminal_sends_the_turn_between_the_key_presses(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    """Nothing leaves before the key; then activity_start, unbroken mic audio, and
    activity_end the tail (0.3 s of mic time) after the second press. How fast, against the
    100 ms target, is `bench.talk`'s to measure: here the bounds only catch a key that waits
    for something (a poll, a silence) before it acts."""
    question = load_mic_pcm(QUESTION)
    mic = write_wav(tmp_path / "mic.wav", question + bytes(16000 * 2 * 20))
    term = Terminal(
        [
            "run",
            "--mode",
            "ptt",
            "--camera",
            str(shelf_video),
            "--mic",
            str(mic),
            "--speaker",
            str(tmp_path / "out.wav"),
        ],
        standin_env(standin),
    )
    try:
        assert "space: talk" in term.wait_for("space: talk")
        t_start = term.press(" ")
        time.sleep(2.6)  # the question is 2.3 s long
        t_end = term.press(" ")
        deadline = time.monotonic() + 15
        while not standin.server.turns_completed and time.monotonic() < deadline:
            time.sleep(0.05)
        t_quit = term.press("q")
        code = term.close()
        took = time.monotonic() - t_quit
    finally:
        term.proc.kill()
    assert code == 0 and took < 2.0
    conn = standin.server.connections[-1]
    assert conn.setup and "true" in str(conn.setup).lower()  # automatic detection disabled
    kinds = [e.kind for e in conn.received() if e.kind != "video"]
    first_start, first_end = kinds.index("activity_start"), kinds.index("activity_end")
    assert "audio" not in kinds[:first_start], "no mic audio may leave before the key"
    assert set(kinds[first_start + 1 : first_end]) == {"audio"}
    turn = b"".join(e.data for e in conn.received("audio"))
    assert mic.read_bytes().find(turn) > 0, "the turn's audio is a stretch of the mic, unbroken"
    assert rms_dbfs(turn) > SPEECH_DBFS, "and it holds the question"
    events = {e.kind: e.t_monotonic for e in reversed(conn.received())}
    assert events["activity_start"] - t_start < 1.0, "the key starts the turn at once"
    tail = events["activity_end"] - t_end
    assert 0.25 < tail < 1.0, f"activity_end {tail:.3f} s after the key: the tail is 0.3 s"
    assert standin.server.turns_completed >= 1
    assert conn.violations == [] and conn.close_code == 1000, "nothing 3.8 refuses (strict)"
    assert "shelfsight: " in term.screen.decode(errors="replace")


@pytest.mark.parametrize("with_mic", [True, False], ids=["quiet-mic", "mic-none"])
def test_a_typed_line_on_standard_input_is_asked_and_answered(
    standin: StandInThread, tmp_path: Path, with_mic: bool
) -> None:
    """With --mic none the run ends once the piped questions are answered."""
    mic = write_wav(tmp_path / "quiet.wav", bytes(16000 * 2 * 2)) if with_mic else "none"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "shelfsight",
            "run",
            "--camera",
            "none",
            "--mic",
            str(mic),
            "--speaker",
            "out.wav",
        ],
        input="where is the oat milk?\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **standin_env(standin)},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    conn = standin.server.connections[-1]
    assert [e.text for e in conn.received("client_content")] == ["where is the oat milk?"]
    assert conn.texts() == [] and conn.violations == []
    assert "You (typed): where is the oat milk?" in proc.stdout
    assert "shelfsight: Third shelf" in proc.stdout


def test_ask_prints_the_answer_and_writes_it_to_the_speaker_file(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "ask",
        "where is the gluten-free bread?",
        "--camera",
        str(shelf_video),
        "--speaker",
        "answer.wav",
        env=standin_env(standin),
    )
    assert result.code == 0, result.stderr
    conn = standin.server.connections[-1]
    received = [e for e in conn.received() if e.kind != "audio"]
    asked = [i for i, e in enumerate(received) if e.kind == "client_content"]
    assert len(asked) == 1 and conn.texts() == [], "one client-content turn, no realtime text"
    picture = received[asked[0] - 1]
    assert (picture.kind, picture.text, picture.mime_type) == (
        "video",
        "client_content",
        "image/jpeg",
    ), "the frame goes in the same turn as the question, just before its text"
    earlier = [frame_number(e.data) for e in received[: asked[0] - 1] if e.kind == "video"]
    assert all(n <= frame_number(picture.data) for n in earlier), "never an older picture"
    assert conn.violations == []
    answer = standin.server.config.answers[0]
    assert result.stdout.strip().splitlines()[-1] == answer.answer_text
    with wave.open(str(tmp_path / "answer.wav"), "rb") as w:
        assert answer.answer_pcm24k in w.readframes(w.getnframes())


@pytest.mark.parametrize(
    ("pause_s", "who_stops"),
    [(0.9, "server"), (3.0, "client")],
    ids=["while-generating", "after-generation"],
)
def test_speaking_over_the_answer_stops_it_within_100_ms(
    tmp_path: Path, pause_s: float, who_stops: str
) -> None:
    """While the answer is still being generated the server says `interrupted`; once it has
    all arrived (4x faster than real time) and is only playing here, the client stops it."""
    with wave.open(str(ASSETS / "answer.wav"), "rb") as w:
        long_answer = w.readframes(w.getnframes())  # 5 s of speech
    config = StandInConfig(
        api_keys=frozenset({TEST_KEY}),
        answers=(ScriptedAnswer("where is the bread?", "Third shelf.", long_answer),),
    )
    question = load_mic_pcm(QUESTION)
    pause = bytes(2 * int(16000 * pause_s))
    mic_pcm = question + pause + question + bytes(16000 * 2 * 2)
    mic = write_wav(tmp_path / "barge.wav", mic_pcm)
    out = tmp_path / "out.wav"
    # The server's path is tested alone: the client's own barge-in is off for it.
    env_extra = {"SHELFSIGHT_BARGE_IN_MS": "0"} if who_stops == "server" else {}
    with StandIn.start_in_thread(config) as standin:
        result = run_cli(
            "run",
            "--camera",
            "none",
            "--mic",
            str(mic),
            "--speaker",
            str(out),
            env={**standin_env(standin), **env_extra},
        )
    assert result.code == 0, result.stderr
    conn = standin.server.connections[-1]
    with wave.open(str(out), "rb") as w:
        played = w.readframes(w.getnframes())
    start = _answer_start(played, long_answer)
    heard = _common_prefix(played[start:], long_answer)
    assert 0 < heard < len(long_answer), "the first answer must be cut, not played whole"
    stop_s = (start + heard) / 48000  # on the speaker's timeline (= the mic's, within ms)
    if who_stops == "server":
        assert conn.interruptions >= 1
        t_interrupt = next(e.t_monotonic for e in conn.sent() if e.kind == "interrupted")
        # On the mic's timeline: mic audio flows in real time, so the newest audio that had
        # arrived by then says when (only speech and what plays over an answer is sent, so
        # it is found in the mic file by its content: the second question, the last match).
        arrived = [e for e in conn.received("audio") if e.t_monotonic <= t_interrupt]
        newest = b"".join(e.data for e in arrived[-5:])
        late_s = stop_s - (mic_pcm.rfind(newest) + len(newest)) / 32000
    else:
        assert conn.interruptions == 0
        speech_onset_s = (len(question) + len(pause)) / 32000 + _first_loud_s(question)
        late_s = stop_s - (speech_onset_s + BARGE_IN_S)
    assert late_s < 0.1 + 0.04, f"the old answer went on {late_s:.3f} s"
    assert not any(played[start + heard : start + heard + 48000 // 5])  # then silence


@pytest.mark.parametrize("model", ["interrupt", "polite_stop", "polite_finish"])
def test_after_talking_over_an_answer_the_user_hears_the_reply_to_what_they_said(
    tmp_path: Path, model: str
) -> None:
    """Whether the model cuts its answer with `interrupted` or, as gemini-3.8-live does, stops
    or finishes it quietly and replies once the user stops (in the same model turn or the
    next), the user hears none of the rest of the old answer and all of the reply."""
    with wave.open(str(ASSETS / "answer.wav"), "rb") as w:
        long_answer = w.readframes(w.getnframes())  # 5 s of speech
    reply = synth_speech_pcm16(1.0, 24000, f0_hz=210.0)
    config = StandInConfig(
        api_keys=frozenset({TEST_KEY}),
        answers=(
            ScriptedAnswer("where is the bread?", "Third shelf.", long_answer),
            ScriptedAnswer("and the gluten-free one?", "Next to it.", reply),
        ),
        barge_in=model,  # type: ignore[arg-type]
    )
    question = load_mic_pcm(QUESTION)
    pause = bytes(2 * int(16000 * 0.9))  # the user speaks again while the answer streams
    mic = write_wav(tmp_path / "barge.wav", question + pause + question + bytes(16000 * 2 * 3))
    out = tmp_path / "out.wav"
    with StandIn.start_in_thread(config) as standin:
        result = run_cli(
            "run",
            "--camera",
            "none",
            "--mic",
            str(mic),
            "--speaker",
            str(out),
            env=standin_env(standin),
        )
    assert result.code == 0, result.stderr
    conn = standin.server.connections[-1]
    said_interrupted = sum(e.kind == "interrupted" for e in conn.sent())
    assert said_interrupted == (1 if model == "interrupt" else 0)
    with wave.open(str(out), "rb") as w:
        played = w.readframes(w.getnframes())
    start = _answer_start(played, long_answer)
    heard = _common_prefix(played[start:], long_answer)
    assert 0 < heard < len(long_answer) // 2, "the old answer must be cut"
    assert long_answer[heard + 4800 :][:9600] not in played, "the rest of the old answer played"
    assert reply in played, "the reply to what the user said was not heard whole"


def test_key_parser_maps_keys_to_controls() -> None:
    parser = KeyParser()
    assert parser.feed(" ", 1.0) == [TalkPressed(1.0)]
    assert parser.feed("q", 1.0) == [Quit()]
    assert parser.feed("\x1b", 1.0) == [StopAnswer()]
    typed = parser.feed("rice? x\x7f\r", 1.0)
    assert typed[-2:] == [TypedQuestion("rice?"), Typing(None)]
    assert parser.feed("\r", 1.0) == [Typing("")]  # Enter opens the prompt: now q is a letter
    assert parser.feed("quinoa\r", 1.0)[-2] == TypedQuestion("quinoa")
    assert parser.feed("\x1b[A", 1.0) == []  # arrow keys are ignored


def test_push_to_talk_sends_preroll_and_a_tail() -> None:
    ptt = PushToTalk(tail_s=0.3, preroll_chunks=3)
    for i in range(5):
        assert ptt.mic(bytes([i]), i * 0.02) == (False, False)
    action, preroll = ptt.press(0.1)
    assert action == "start" and preroll == [bytes([2]), bytes([3]), bytes([4])]
    assert ptt.mic(b"x", 0.12) == (True, False)
    assert ptt.release(0.2) is False  # a tap keeps talking (toggle)
    assert ptt.press(1.0) == ("end", [])
    assert ptt.mic(b"x", 1.2) == (True, False)  # the tail
    assert ptt.mic(b"x", 1.31) == (False, True)  # then activity_end
    ptt.press(2.0)
    assert ptt.release(2.5) is True  # held: releasing ends the turn


def frame_number(jpeg: bytes) -> int:
    return read_frame_number(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))


def _answer_start(played: bytes, answer: bytes) -> int:
    """Where in the speaker file the answer begins (the answer may open with silence)."""
    k = _first_nonzero(answer)
    found = played.find(answer[k : k + 4800])
    assert found >= k, "the answer never played"
    return found - k


def _first_nonzero(pcm: bytes) -> int:
    for i in range(0, len(pcm), 2):
        if pcm[i] or pcm[i + 1]:
            return i
    return len(pcm)


def _common_prefix(a: bytes, b: bytes) -> int:
    n = 0
    step = 480
    while n < min(len(a), len(b)) and a[n : n + step] == b[n : n + step]:
        n += step
    return n


def _first_loud_s(pcm: bytes) -> float:
    for i in range(0, len(pcm), 640):
        if rms_dbfs(pcm[i : i + 640]) > SPEECH_DBFS:
            return i / 32000
    raise AssertionError("no speech")
