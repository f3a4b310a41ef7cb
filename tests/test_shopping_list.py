"""A shopping list as the user writes it, works through it by voice and typing, and finds it
saved: against the stand-in, through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.settings import DEFAULT_MODEL
from shelfsight.standin import (
    ScriptedAnswer,
    ScriptedCall,
    StandIn,
    StandInConfig,
    StandInThread,
    synth_speech_pcm16,
)
from shelfsight.tools.shopping_list import (
    format_markdown,
    match,
    parse,
    write_atomically,
)
from tests.conftest import ASSETS, TEST_KEY, run_cli, standin_env

LIST_TEXT = "# Saturday\nmilk\n- [ ] gluten-free bread\n- [ ] eggs\napples\n- coffee\n"
SHORT_PCM = synth_speech_pcm16(0.5, 24000)


def said(question: str, *calls: ScriptedCall, cancel: tuple[str, ...] = ()) -> ScriptedAnswer:
    return ScriptedAnswer(question, "Done.", SHORT_PCM, tool_calls=calls, cancel_calls=cancel)


def questions_mic(path: Path, turns: int, tail_s: float) -> Path:
    """`turns` spoken questions with room for each answer, then `tail_s` of silence."""
    question = load_mic_pcm(ASSETS / "question.wav")
    gap = bytes(2 * 16000 * 2)
    return write_wav(path, (question + gap) * turns + bytes(int(2 * 16000 * tail_s)))


def run_args(mic: Path, shopping: Path) -> list[str]:
    return ["run", "--camera", "none", "--mic", str(mic), "--speaker", "out.wav"] + [
        "--list",
        str(shopping),
        "--plain",
    ]


# ---- the file ----------------------------------------------------------------------------


def test_plain_and_markdown_lines_are_read_and_written_back_as_a_task_list() -> None:
    shopping = parse(LIST_TEXT + "- [x] salt\n- [ ] tea (skipped)\n")
    assert [(i.name, i.state) for i in shopping.items] == [
        ("milk", "open"),
        ("gluten-free bread", "open"),
        ("eggs", "open"),
        ("apples", "open"),
        ("coffee", "open"),
        ("salt", "found"),
        ("tea", "skipped"),
    ]
    text = format_markdown(shopping.with_state("eggs", "skipped").with_state("milk", "found"))
    assert text.splitlines()[:3] == ["# Saturday", "- [x] milk", "- [ ] gluten-free bread"]
    assert "- [ ] eggs (skipped)" in text
    assert parse(text) == parse(text).with_state("nothing", "found")  # a fixed point
    assert format_markdown(parse(text)) == text


def test_spoken_names_find_their_list_item() -> None:
    shopping = parse("oat milk\nmilk chocolate\ngluten-free bread\neggs\n")
    assert match(shopping, "the eggs") == ["eggs"]
    assert match(shopping, "Egg") == ["eggs"]
    assert match(shopping, "bread") == ["gluten-free bread"]
    assert match(shopping, "gluten free bread") == ["gluten-free bread"]
    assert match(shopping, "milk") == ["oat milk", "milk chocolate"]  # ambiguous: both
    assert match(shopping, "caviar") == []


def test_a_write_stopped_before_its_rename_leaves_the_old_list_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "list.md"
    path.write_text(LIST_TEXT)

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # Ctrl-C between the temp file's fsync and the rename

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, "- [x] milk\n")
    assert path.read_text() == LIST_TEXT
    left = [p.name for p in tmp_path.iterdir() if p.name != "empty-config.toml"]
    assert left == ["list.md"], "no temp file left behind"
    monkeypatch.undo()
    write_atomically(path, "- [x] milk\n")
    assert path.read_text() == "- [x] milk\n"


def test_list_command_prints_the_list_and_rejects_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "list.md"
    path.write_text("- [x] milk\n- [ ] eggs (skipped)\nbread\n")
    result = run_cli("list", str(path))
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{path}: 1 of 3 found, 1 left, 1 skipped",
        "  [x] milk",
        "  [-] eggs",
        "  [ ] bread",
    ]
    missing = run_cli("list", str(tmp_path / "nope.md"))
    assert missing.code == 2
    assert missing.stderr.strip().endswith("nope.md does not exist.")
    assert "Traceback" not in missing.stderr


def test_run_with_an_empty_list_file_says_so_before_connecting(
    standin: StandInThread, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("# nothing yet\n\n")
    result = run_cli(*run_args(tmp_path / "none.wav", empty), env=standin_env(standin))
    assert result.code == 2 and "has no items" in result.stderr
    assert not standin.server.connections


# ---- a session -----------------------------------------------------------------------------


def test_five_items_three_found_by_voice_one_typed_one_skipped_survive_ctrl_c(
    tmp_path: Path,
) -> None:
    shopping = tmp_path / "saturday.md"
    shopping.write_text(LIST_TEXT)
    config = StandInConfig(
        api_keys=frozenset({TEST_KEY}),
        models=frozenset({DEFAULT_MODEL}),
        answers=(
            said("I've got the milk", ScriptedCall("mark_found", {"item": "milk"})),
            said("Got the bread", ScriptedCall("mark_found", {"item": "the bread"})),
            said("Skip the eggs", ScriptedCall("mark_skipped", {"item": "eggs"})),
            said("And the apples", ScriptedCall("mark_found", {"item": "apples"})),
            said("What's left on my list?", ScriptedCall("whats_left")),
        ),
        typed_answers=(
            ("I've got the coffee", said("", ScriptedCall("mark_found", {"item": "Coffee"}))),
        ),
    )
    mic = questions_mic(tmp_path / "mic.wav", turns=5, tail_s=60)
    with StandIn.start_in_thread(config) as standin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shelfsight", *run_args(mic, shopping), "--record", "rec"],
            env={**os.environ, **standin_env(standin)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        try:
            assert proc.stdin is not None
            proc.stdin.write("I've got the coffee\n")
            proc.stdin.flush()
            standin.wait_until(
                lambda: sum(len(c.tool_responses()) for c in standin.server.connections) >= 6,
                timeout_s=40,
            )
            conn = standin.server.connections[-1]
            setup = conn.setup or {}
            proc.send_signal(signal.SIGINT)  # mid-session: the mic has a minute to go
            stdout, stderr = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert shopping.read_text() == (
        "# Saturday\n- [x] milk\n- [x] gluten-free bread\n- [ ] eggs (skipped)\n"
        "- [x] apples\n- [x] coffee\n"
    )
    responses = {r["response"]["status"] for r in conn.tool_responses()}
    assert responses == {"found", "skipped", "ok"}
    left = next(r for r in conn.tool_responses() if r["name"] == "whats_left")["response"]
    assert set(left["left"]) <= {"coffee"} and left["skipped"] == ["eggs"]
    # The model was told about the list and its functions; the transcription knows the names.
    declared = {f["name"] for t in setup["tools"] for f in t["functionDeclarations"]}
    assert declared == {"mark_found", "mark_skipped", "whats_left"}
    assert "gluten-free bread (to find)" in json.dumps(setup["systemInstruction"])
    transcription = setup.get("inputAudioTranscription") or setup["input_audio_transcription"]
    vocabulary = transcription.get("customVocabulary") or transcription["custom_vocabulary"]
    assert "gluten-free bread" in vocabulary
    assert "· list saturday.md: 5 of 5 to find: milk, gluten-free bread, eggs," in stdout
    assert "· list: eggs skipped; " in stdout
    assert "· list: nothing left to find" in stdout
    events = [json.loads(line) for line in (tmp_path / "rec" / "events.jsonl").open()]
    kinds = [e["type"] for e in events]
    assert kinds.count("tool_call") == 6 and kinds.count("tool_response") == 6
    assert "list" in kinds


def test_wrong_and_malformed_calls_get_answers_and_the_session_goes_on(
    tmp_path: Path,
) -> None:
    shopping = tmp_path / "list.md"
    shopping.write_text(LIST_TEXT)
    first = said(
        "I've got the milk",
        ScriptedCall("fly_to_the_moon", {"now": True}, "c-unknown"),
        ScriptedCall("mark_found", {"item": 42}, "c-number"),
        ScriptedCall("mark_found", None, "c-noargs"),
        ScriptedCall("mark_found", {"item": "caviar"}, "c-caviar"),
        ScriptedCall("mark_found", {"item": "milk"}, "c-dup"),
        ScriptedCall("mark_found", {"item": "milk"}, "c-dup"),
        ScriptedCall("mark_found", {"item": "bread"}, None),
        ScriptedCall("mark_found", {"item": "apples"}, "c-cancelled"),
        cancel=("c-cancelled", "c-never-made"),
    )
    second = said("And the eggs", ScriptedCall("mark_found", {"item": "eggs"}, "c-eggs"))
    config = StandInConfig(api_keys=frozenset({TEST_KEY}), answers=(first, second))
    mic = questions_mic(tmp_path / "mic.wav", turns=2, tail_s=1)
    with StandIn.start_in_thread(config) as standin:
        result = run_cli(*run_args(mic, shopping), env=standin_env(standin), cwd=tmp_path)
        connections = standin.server.connections
    assert result.code == 0, result.stderr
    assert len(connections) == 1 and connections[0].turns_completed == 2
    by_id: dict[str, list[dict]] = {}
    for response in connections[0].tool_responses():
        by_id.setdefault(response["id"], []).append(response["response"])
    status = {call_id: [r["status"] for r in rs] for call_id, rs in by_id.items()}
    assert status == {
        "c-unknown": ["unknown_function"],
        "c-number": ["invalid_args"],
        "c-noargs": ["invalid_args"],
        "c-caviar": ["unknown_item"],
        "c-dup": ["found", "found"],
        "c-cancelled": ["found"],
        "c-eggs": ["found"],
    }
    assert by_id["c-dup"][1]["duplicate_call"] is True
    assert by_id["c-unknown"][0]["retryable"] is False
    assert by_id["c-number"][0]["retryable"] is True
    assert "milk" in by_id["c-caviar"][0]["left"]
    # The call without an id could not be answered, but the user's bread is ticked off; the
    # cancelled call's apples are back on the list.
    assert shopping.read_text() == (
        "# Saturday\n- [x] milk\n- [x] gluten-free bread\n- [x] eggs\n- [ ] apples\n- [ ] coffee\n"
    )
    assert "apples back on the list (call cancelled)" in result.stdout
    assert "without an id" in result.stdout


def test_a_run_without_a_list_declares_no_functions_but_still_answers_calls(
    tmp_path: Path,
) -> None:
    answer = said("hello", ScriptedCall("mark_found", {"item": "milk"}, "c-1"))
    config = StandInConfig(api_keys=frozenset({TEST_KEY}), answers=(answer,))
    mic = questions_mic(tmp_path / "mic.wav", turns=1, tail_s=1)
    args = ["run", "--camera", "none", "--mic", str(mic), "--speaker", "out.wav", "--plain"]
    with StandIn.start_in_thread(config) as standin:
        result = run_cli(*args, env=standin_env(standin), cwd=tmp_path)
        conn = standin.server.connections[0]
    assert result.code == 0, result.stderr
    assert "tools" not in (conn.setup or {})
    [response] = conn.tool_responses()
    assert response["id"] == "c-1" and response["response"]["status"] == "unknown_function"
