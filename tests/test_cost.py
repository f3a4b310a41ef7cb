"""What answers cost, as the user sees it: after each answer, in the session summary, in the
recording and in `shelfsight sessions`; with prices and vocabulary from the config file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shelfsight.errors import UserError
from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.session.cost import Prices, Tokens
from shelfsight.settings import load_settings
from shelfsight.standin import StandInThread
from tests.conftest import ASSETS, run_cli, standin_env


def test_each_answer_shows_its_tokens_and_price_everywhere_the_user_looks(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'vocabulary = ["Schär", "Nairn\'s"]\nprice_audio_in = 0.0\nprice_video_in = 2.0\n'
    )
    question = load_mic_pcm(ASSETS / "question.wav")
    mic = write_wav(tmp_path / "mic.wav", question + bytes(32000 * 3) + question)
    folder = tmp_path / "sessions" / "trip"
    result = run_cli(
        *("run", "--camera", str(shelf_video), "--mic", str(mic), "--speaker", "out.wav"),
        *("--record", str(folder), "--config", str(config), "--plain"),
        env=standin_env(standin),
    )
    assert result.code == 0, result.stderr
    conn = standin.server.connections[0]
    assert conn.setup is not None
    assert conn.setup["inputAudioTranscription"]["custom_vocabulary"] == ["Schär", "Nairn's"]
    billed = [json.loads(e.text) for e in conn.sent("turn_complete")]
    assert len(billed) == 2 and billed[1]["promptTokenCount"] > billed[0]["promptTokenCount"]

    def usd(bill: dict[str, Any]) -> float:
        """The bill at the configured prices: audio in is free, video $2, the rest default."""
        details = {d["modality"]: d["tokenCount"] for d in bill["promptTokensDetails"]}
        out = bill["responseTokenCount"]
        return (details["TEXT"] * 0.75 + details["VIDEO"] * 2.0 + out * 12.0) / 1e6

    cost_lines = [line for line in result.stdout.splitlines() if line.strip().startswith("cost:")]
    assert len(cost_lines) == 2, result.stdout
    total = sum(usd(b) for b in billed)
    assert f"session so far ${total:.4f}" in cost_lines[1]
    summary = result.stdout.strip().splitlines()[-2]  # then "Recorded into ..."
    assert summary.startswith("· session:") and f"≈ ${total:.4f}" in summary

    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    usage = [e for e in events if e["type"] == "usage"]
    assert [u["prompt_tokens"] for u in usage] == [b["promptTokenCount"] for b in billed]
    assert usage[0]["prompt_by_modality"].keys() == {"text", "audio", "video"}
    costs = [e["usd"] for e in events if e["type"] == "answer_cost"]
    assert costs == pytest.approx([usd(b) for b in billed], abs=1e-6)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["cost_usd"] == pytest.approx(total, abs=1e-6)
    tokens_in = sum(b["promptTokenCount"] for b in billed)
    assert manifest["tokens"]["in"] == tokens_in and manifest["billed_turns"] == 2

    listed = run_cli("sessions", str(tmp_path / "sessions"), env={"COLUMNS": "200"})
    assert listed.code == 0 and "trip" in listed.stdout
    tokens = sum(b["totalTokenCount"] for b in billed)
    assert f"{tokens:,}" in listed.stdout and f"${total:.4f}" in listed.stdout


def test_a_bad_price_or_vocabulary_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("price_audio_out = -1\n")
    with pytest.raises(
        UserError, match="price_audio_out in .*config.toml: -1 is out of range: use 0 to"
    ):
        load_settings({}, config_path=config)
    config.write_text("vocabulary = [1, 2]\n")
    with pytest.raises(
        UserError, match=r"vocabulary in .*config.toml: \[1, 2\] is not a list of names"
    ):
        load_settings({}, config_path=config)
    env = {"SHELFSIGHT_VOCABULARY": " Oatly , Schär,,Oatly"}
    assert load_settings({}, environ=env).vocabulary == ("Oatly", "Schär")


def test_prices_default_to_googles_dated_sheet() -> None:
    prices = Prices.from_settings(load_settings({}, environ={}))
    assert prices == Prices() and prices.as_of == "2026-09-15"
    one_minute = Tokens(audio_in=32 * 60, video_in=256 * 60, text_in=500, audio_out=32 * 20)
    assert one_minute.usd(prices) == pytest.approx(
        (1920 * 3.00 + 15360 * 1.00 + 500 * 0.75 + 640 * 12.00) / 1e6
    )
