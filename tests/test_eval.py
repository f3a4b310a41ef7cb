"""`shelfsight eval`: the bundled suite asked through the real pipeline against the stand-in,
with scripted answers (right and wrong, phrased many ways), so the scorer is what is tested."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shelfsight.eval.cases import Truth, bundled_suite, load_suite
from shelfsight.eval.score import read_answer, score
from shelfsight.standin import ScriptedAnswer, StandIn, StandInConfig, synth_speech_pcm16
from tests.conftest import ASSETS, run_cli, standin_env

# One scripted answer per bundled case, in suite order, with the score it must get:
# (found, shelf, position, colour); None where the truth says nothing (absent items).
SCRIPT: list[tuple[str, str, tuple[bool, bool | None, bool | None, bool | None]]] = [
    ("bakery-gluten-free-bread", "The top shelf, right end: a green bag.",
     (True, True, True, True)),
    ("bakery-gluten-free-crackers", "Bottom shelf, on the left, green box.",  # the look-alike
     (True, True, False, True)),
    ("bakery-bagels", "Shelf two from the top, far left, a beige bag.", (True, True, True, True)),
    ("bakery-sourdough", "I can't see sourdough in this view. Turn slowly to your left.",
     (True, None, None, None)),
    ("breakfast-oats", "Top shelf, left end, an orange box.", (True, True, True, True)),
    ("breakfast-gluten-free-oats", "First shelf, on the left: the orange box.",  # look-alike
     (True, False, False, True)),
    ("breakfast-raspberry-jam", "Second from the bottom, right end, a red jar.",
     (True, True, True, True)),
    ("breakfast-rice-puffs", "Second shelf, in the middle, a blue box.", (True, True, True, True)),
    ("breakfast-coffee", "Third shelf from the top, in the middle.", (False, None, None, None)),
    ("dairy-oat-milk-barista", "On the 2nd shelf, in the centre, a blue carton.",
     (True, True, True, True)),
    ("dairy-lactose-free-milk", "Bottom shelf, right-hand side, a white carton.",
     (True, True, True, True)),
    ("dairy-kefir", "Third shelf from the top, right end, a pink pot.", (True, True, True, False)),
    ("dairy-goat-cheese", "That's not on these shelves.", (True, None, None, None)),
    ("pasta-gluten-free-pasta", "Top shelf, right end, the yellow packet.",
     (True, True, True, True)),
    ("pasta-brown-rice", "Shelf 2, just left of the middle, a brown bag.",
     (True, True, True, True)),
    ("pasta-pesto", "Third from the top, middle: a small green jar.", (True, True, True, True)),
    ("pasta-lasagne-sheets", "I don't see lasagne sheets here; step back a little.",
     (True, None, None, None)),
    ("snacks-unsalted-peanuts", "Third shelf from the top, on the left, red bag.",  # look-alike
     (True, True, False, True)),
    ("snacks-dark-chocolate", "Shelf number two from the top, left end, black wrapper.",
     (True, True, True, True)),
    ("snacks-dried-mango", "I cannot find dried mango in this picture.",
     (False, False, False, False)),
    ("snacks-almonds", "No sign of almonds here.", (True, None, None, None)),
    ("drinks-diet-cola", "The top shelf, in the middle, a grey can.", (True, True, True, True)),
    ("drinks-sparkling-water", "Third shelf from the bottom, on the right, a blue bottle.",
     (True, False, True, True)),
    ("drinks-energy-drink", "There are energy drinks on the bottom shelf, left end.",
     (False, None, None, None)),
]  # fmt: skip


def scripted(texts: list[str]) -> tuple[ScriptedAnswer, ...]:
    pcm = synth_speech_pcm16(0.5, 24_000)
    return tuple(ScriptedAnswer("", text, pcm) for text in texts)


def test_eval_scores_the_bundled_suite_answered_by_the_stand_in() -> None:
    cases = load_suite(bundled_suite())
    assert [c.id for c in cases] == [case_id for case_id, _, _ in SCRIPT]
    config = StandInConfig(answers=scripted([text for _, text, _ in SCRIPT]), speed=16.0)
    with StandIn.start_in_thread(config) as server:
        result = run_cli("eval", "--json", env=standin_env(server), timeout_s=120)
        connections = server.server.connections
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(connections) == len(SCRIPT), "one connection per case"
    assert all(c.violations == [] and c.close_code == 1000 for c in connections)
    for got, (case_id, text, expected) in zip(report["cases"], SCRIPT, strict=True):
        marks = tuple(got["score"][k] for k in ("found", "shelf", "position", "colour"))
        assert (got["id"], got["answer"], marks) == (case_id, text, expected)
        assert got["answer_s"] == 0.5 and got["tokens"]["video_in"] > 0
    totals = report["totals"]
    right = sum(all(m is not False for m in e) for _, _, e in SCRIPT)
    assert totals["correct"] == right == 16
    assert totals["found"] == {"right": 21, "scored": 24}
    assert totals["shelf"] == {"right": 15, "scored": 18}
    assert totals["cost_usd"] > 0 and totals["tokens_in"] > 24 * 256


def test_eval_prints_a_table_with_totals(tmp_path: Path) -> None:
    suite = tmp_path / "mine"
    (suite / "pictures").mkdir(parents=True)
    shutil.copy(bundled_suite() / "pictures" / "bakery.jpg", suite / "pictures")
    case = {"id": "bread", "picture": "pictures/bakery.jpg", "question": "Where's the bread?"}
    truth = {"present": True, "shelf": 1, "shelves": 3, "position": "left", "colour": "white"}
    (suite / "cases.json").write_text(json.dumps({"cases": [{**case, **truth}]}))
    answers = scripted(["Top shelf, left end, a white loaf."])
    with StandIn.start_in_thread(StandInConfig(answers=answers, speed=16.0)) as server:
        result = run_cli("eval", str(suite), env={**standin_env(server), "COLUMNS": "200"})
    assert result.code == 0, result.stderr
    assert "1/1 right" in result.stdout and "Top shelf, left end, a white loaf." in result.stdout
    assert "bread: right" in result.stderr


def test_a_recorded_session_is_a_case_too(tmp_path: Path) -> None:
    suite = tmp_path / "recorded"
    shutil.copytree(ASSETS / "demo-session", suite / "sessions" / "demo")
    case = {"id": "demo", "session": "sessions/demo", "present": True, "shelf": 3}
    (suite / "cases.json").write_text(json.dumps({"cases": [{**case, "position": "right"}]}))
    with StandIn.start_in_thread(StandInConfig(speed=16.0)) as server:
        result = run_cli("eval", str(suite), "--json", env=standin_env(server))
    assert result.code == 0, result.stderr
    (got,) = json.loads(result.stdout)["cases"]
    assert got["question"] == "Where are the gluten-free crackers?"  # as the server heard it
    assert got["score"]["correct"] and got["tokens"]["audio_in"] > 0


@pytest.mark.parametrize(
    ("cases_json", "message"),
    [
        ('{"cases": [{"id": "a", "picture": "nope.jpg", "question": "q", "present": true}]}',
         "does not exist"),
        ('{"cases": [{"id": "a", "question": "q", "present": true}]}', 'either "picture"'),
        ("{not json", "not valid JSON"),
    ],
)  # fmt: skip
def test_a_broken_suite_is_one_line_and_exit_2(
    tmp_path: Path, cases_json: str, message: str
) -> None:
    (tmp_path / "cases.json").write_text(cases_json)
    result = run_cli("eval", str(tmp_path), env={"GEMINI_API_KEY": "unused"})
    assert result.code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("answer", "shelves", "shelf", "position"),
    [
        ("Second shelf, right end.", 4, 2, "right"),
        ("Shelf two from the top, on the left.", 4, 2, "left"),
        ("The top shelf, in the middle.", 4, 1, "middle"),
        ("Third from the bottom, far right.", 4, 2, "right"),
        ("Third from the bottom, far right.", 5, 3, "right"),
        ("It's on the bottom shelf, just right of the centre.", 3, 3, "middle"),
        ("One above the bottom, left-hand side.", 4, 3, "left"),
        ("Fourth shelf down from the top, at the right edge.", 5, 4, "right"),
        ("Middle shelf, left end.", 3, 2, "left"),
    ],
)
def test_the_scorer_reads_shelves_and_positions_phrased_in_many_ways(
    answer: str, shelves: int, shelf: int, position: str
) -> None:
    reading = read_answer(answer, shelves)
    assert (reading.shelf, reading.position, reading.absent) == (shelf, position, False)
    truth = Truth(present=True, shelf=shelf, shelves=shelves, position=position)
    assert score(truth, reading).correct
