"""`shelfsight doctor --live` as a user runs it: a child process, the real SDK over TLS, and
the stand-in behaving as each kind of server the real one might be."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shelfsight.doctor_live import NAMES
from shelfsight.doctor_speech import LONG_QUESTION
from shelfsight.settings import DEFAULT_MODEL
from shelfsight.standin import (
    ScriptedAnswer,
    StandIn,
    StandInConfig,
    StandInThread,
    synth_speech_pcm16,
)
from tests.conftest import TEST_KEY, CliResult, run_cli, standin_env

# 6 s of answer audio, streamed at the stand-in's 4x in 1.5 s: long enough to be talked over.
LONG_ANSWER = ScriptedAnswer(
    LONG_QUESTION, "Crackers, bread, bagels.", synth_speech_pcm16(6.0, 24000)
)


@contextmanager
def server(**modes: Any) -> Iterator[StandInThread]:
    """A stand-in taking the test key and model, with a long answer to the talk-over question
    and `modes` (pongs, barge_in, compression, refuse_audio_rates_hz...)."""
    config = StandInConfig(
        api_keys=frozenset({TEST_KEY}),
        models=frozenset({DEFAULT_MODEL}),
        typed_answers=((LONG_QUESTION, LONG_ANSWER),),
        **modes,
    )
    with StandIn.start_in_thread(config) as standin:
        yield standin


def probe(
    standin: StandInThread, *args: str, key: str = TEST_KEY
) -> tuple[CliResult, dict[str, str]]:
    """`shelfsight doctor --live ARGS` against `standin`; the result and each finding's line
    (status, then what it says) by name, in the order printed."""
    result = run_cli("doctor", "--live", *args, env=standin_env(standin, key))
    lines = {line[6:18].strip(): line for line in result.stdout.splitlines()}
    assert list(lines) == list(NAMES), result.stdout + result.stderr
    assert key not in result.stdout + result.stderr
    return result, lines


def test_doctor_live_against_a_well_behaved_server_reports_each_finding_and_saves_them(
    tmp_path: Path,
) -> None:
    saved = tmp_path / "findings.json"
    with server() as standin:
        result, lines = probe(standin, "--json", str(saved))
        main, rate = standin.server.connections
        endpoint = standin.base_url

    assert result.code == 0, result.stdout
    assert lines["setup"].startswith("ok") and "accepted: gemini-3.8-live" in lines["setup"]
    assert lines["internals"].startswith("ok") and "all present" in lines["internals"]
    assert "ACK probe: TCP_INFO available" in lines["internals"]
    assert lines["deflate"].startswith("ok") and "deflate negotiated" in lines["deflate"]
    assert lines["first answer"].startswith("ok") and "green bag" in lines["first answer"]
    assert lines["usage"].startswith("ok") and "total" in lines["usage"]
    assert lines["talked over"].startswith("ok") and "`interrupted` came" in lines["talked over"]
    assert lines["8 kHz audio"].startswith("ok") and "accepted" in lines["8 kHz audio"]
    assert lines["pings"].startswith("ok") and "5 of 5 pongs" in lines["pings"]
    assert "late" not in lines["pings"]
    # What the lines say was done was done: a picture with the question, then speech over the
    # long answer on the first connection; 8 kHz audio on a second one.
    assert [e.mime_type for e in main.received("video")] == ["image/jpeg"]
    assert main.questions()[:2] == ["Where are the gluten-free crackers?", LONG_QUESTION]
    assert main.interruptions >= 1
    assert {e.mime_type for e in rate.received("audio")} == {"audio/pcm;rate=8000"}
    # The file holds the same findings, with their numbers, and never the key.
    text = saved.read_text()
    assert TEST_KEY not in text
    document = json.loads(text)
    assert [f["name"] for f in document["findings"]] == list(NAMES)
    by_name = {f["name"]: f for f in document["findings"]}
    assert len(by_name["pings"]["latencies_s"]) == 5
    assert 0 < by_name["first answer"]["first_audio_s"] < 5
    assert by_name["8 kHz audio"]["accepted"] is True
    assert document["model"] == DEFAULT_MODEL and document["endpoint"] == endpoint


def test_doctor_live_says_when_pongs_come_late() -> None:
    with server(pongs="late", pong_delay_s=1.5) as standin:
        result, lines = probe(standin, "--pong-wait", "4")

    assert result.code == 0
    assert lines["pings"].startswith("note") and "5 of 5 pongs within 4 s" in lines["pings"]
    assert "p50 1.5 s" in lines["pings"] and "5 late (over 1 s)" in lines["pings"]


def test_doctor_live_says_when_no_pong_comes_and_still_ends_within_its_bounds() -> None:
    with server(pongs="never") as standin:
        t0 = time.monotonic()
        result, lines = probe(standin, "--pong-wait", "1")
        took_s = time.monotonic() - t0

    assert result.code == 0
    assert lines["pings"].startswith("note")
    assert "no pong to any of 5 pings within 1 s each" in lines["pings"]
    assert lines["first answer"].startswith("ok")  # the other findings went on
    assert took_s < 30  # 4 s of pings + 1 s, not websockets' 20 s keepalive timeout


def test_doctor_live_says_when_8_khz_audio_is_refused_and_deflate_is_off() -> None:
    with server(refuse_audio_rates_hz=frozenset({8000}), compression=False) as standin:
        result, lines = probe(standin)

    assert result.code == 0  # both are facts the link copes with, not failures
    assert lines["8 kHz audio"].startswith("note")
    assert "refused: the connection was closed with 1007" in lines["8 kHz audio"]
    assert "falls back to 16 kHz" in lines["8 kHz audio"]
    assert lines["deflate"].startswith("note") and "not negotiated" in lines["deflate"]
    assert lines["talked over"].startswith("ok") and lines["pings"].startswith("ok")


def test_doctor_live_says_when_talking_over_an_answer_stops_it_without_interrupted() -> None:
    with server(barge_in="polite_stop") as standin:
        result, lines = probe(standin)

    assert result.code == 0
    assert lines["talked over"].startswith("ok")
    assert (
        "the answer stopped" in lines["talked over"] and "no `interrupted`" in lines["talked over"]
    )
    assert "polite barge-in" in lines["talked over"]


def test_doctor_live_says_when_an_answer_talked_over_runs_to_its_end() -> None:
    with server(barge_in="polite_finish") as standin:
        result, lines = probe(standin)

    assert result.code == 0
    assert lines["talked over"].startswith("note")
    assert "ran to its end" in lines["talked over"]


def test_doctor_live_with_a_wrong_key_fails_the_setup_and_never_shows_the_key(
    tmp_path: Path,
) -> None:
    wrong = "wrong-key-0123456789abcdef"
    saved = tmp_path / "findings.json"
    with server() as standin:
        result, lines = probe(standin, "--json", str(saved), key=wrong)

    assert result.code == 1
    assert lines["setup"].startswith("FAIL") and "rejected the key" in lines["setup"]
    assert all(lines[name].startswith("skip") for name in NAMES[1:])
    assert wrong not in saved.read_text()


def test_doctor_live_without_a_key_says_so_in_one_line(tmp_path: Path) -> None:
    result = run_cli("doctor", "--live", "--json", str(tmp_path / "findings.json"))

    assert result.code == 1
    assert not (tmp_path / "findings.json").exists()  # nothing was found, nothing saved
    assert result.stdout.startswith("FAIL  API key") and "GEMINI_API_KEY" in result.stdout
    assert len(result.stdout.splitlines()) == 1 and "Traceback" not in result.stderr


def test_doctor_live_with_an_unwritable_json_path_says_so_before_probing(tmp_path: Path) -> None:
    with server() as standin:
        result = run_cli(
            "doctor", "--live", "--json", str(tmp_path / "no-such-dir" / "f.json"),
            env=standin_env(standin),
        )  # fmt: skip
        assert standin.server.connections == []

    assert result.code == 2 and result.stdout == ""
    assert result.stderr.startswith("shelfsight: --json") and "cannot write" in result.stderr
    assert len(result.stderr.splitlines()) == 1
