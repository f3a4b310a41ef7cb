"""The catalogue of shelfsight's own sentences: every language file has every English key, the
same placeholders and the plural forms its language needs, and each sentence formats; the
program asks only for keys that exist; tags map to catalogues; numbers read as the language
writes them."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from shelfsight.core.phrases import (
    LANGUAGES,
    PLURAL_FORMS,
    Phrase,
    language_of,
    load,
    phrase,
    plural_form,
    speaking,
)
from shelfsight.session.status import Spoken, State


def state_key(state: State) -> str:
    return "state_" + state.value.replace(" ", "_")


PACKAGE = Path(__file__).resolve().parent.parent / "shelfsight"
CALL = re.compile(r"\b(?:phrase|Phrase)\(\s*\"([a-z0-9_]+)\"\s*[,)]")  # a literal key
NEEDED_FORMS = {"pl": {"one", "few", "many", "other"}}  # the rest: one and other


def fields(text: str) -> dict[str, str]:
    """Placeholder name -> its format spec."""
    return {name: spec or "" for _, name, spec, _ in string.Formatter().parse(text) if name}


def forms(entry: str | dict[str, str]) -> dict[str, str]:
    return {"other": entry} if isinstance(entry, str) else entry


def sample(spec: str, name: str) -> object:
    if spec or name in ("count", "percent", "ms", "left", "total", "code"):
        return 3 if name == "count" or "f" not in spec else 2.5
    return "X"


@pytest.mark.parametrize("code", LANGUAGES)
def test_each_language_has_every_sentence_with_the_same_placeholders(code: str) -> None:
    english, other = load("en").entries, load(code).entries
    assert set(other) == set(english), (set(english) - set(other), set(other) - set(english))
    for key, entry in other.items():
        want = {n for text in forms(english[key]).values() for n in fields(text)}
        variants = forms(entry)
        if not isinstance(entry, str):  # plural forms: only where a count decides the words
            assert "count" in want, key
            assert set(variants) <= set(PLURAL_FORMS) and "other" in variants, key
            assert NEEDED_FORMS.get(code, {"one", "other"}) <= set(variants), key
        for form, text in variants.items():
            assert text.strip(), (key, form)
            assert set(fields(text)) == want, (code, key, form, fields(text), want)
            values = {n: sample(s, n) for n, s in fields(text).items()}
            assert "{" not in load(code).text(key, **values), (code, key)


def test_the_program_asks_only_for_sentences_that_exist() -> None:
    """Every literal key in the sources is in the catalogue (a typo would fall over at run
    time, in the middle of a session)."""
    known = set(load("en").entries)
    asked = set()
    for path in PACKAGE.rglob("*.py"):
        asked |= set(
            re.findall(r"\b(?:phrase|Phrase)\(\s*\"([a-z0-9_]+)\"\s*[,)]", path.read_text())
        )
    assert asked, "the pattern finds the calls"
    assert asked <= known, asked - known
    made = {f"spoken_{s}" for s in Spoken} | {state_key(s) for s in State}  # made by code
    made |= {f"modality_{m}" for m in ("audio", "video", "text")} | {"list_found", "list_skipped"}
    ways = ("left", "right", "lower", "higher")  # guide.guidance's hints
    made |= {f"hint_{bit}{way}" for bit in ("", "bit_") for way in ways} | {
        "hint_reach",
        "hint_closer",
    }
    assert made <= known, made - known


def test_a_tag_picks_its_language_and_an_unknown_one_none() -> None:
    assert [language_of(t) for t in ("de-DE", "pt-BR", "nb-NO", "no", "nn-NO", "sv_SE")] == [
        "de",
        "pt",
        "nb",
        "nb",
        "nb",
        "sv",
    ]
    assert language_of("ja-JP") is None and language_of("en-GB") == "en"
    with speaking("ja-JP"):
        assert phrase("ready") == "Ready: ask about what the camera sees."
    with speaking("de-AT"):
        assert phrase("ready") == "Bereit: Fragen Sie nach dem, was die Kamera sieht."
    assert phrase("ready") == "Ready: ask about what the camera sees.", "restored after"


def test_counts_choose_the_plural_and_numbers_use_the_languages_marks() -> None:
    assert [plural_form("pl", n) for n in (1, 2, 5, 12, 22, 25, 1.5)] == [
        "one",
        "few",
        "many",
        "many",
        "few",
        "many",
        "other",
    ]
    assert plural_form("fr", 0) == "one" and plural_form("en", 0) == "other"
    assert load("en").text("summary_connections", count=1) == "1 connection"
    assert load("pl").text("summary_connections", count=5) == "5 połączeń"
    assert load("de").text("reconnected", seconds=2.25) == "nach 2,2 s wieder verbunden"
    tokens = load("de").text("tokens", tokens_in=12345, tokens_out=7)
    assert tokens == "12.345 Tokens rein, 7 raus"
    assert load("fr").text("tokens", tokens_in=12345, tokens_out=7).startswith("12\u202f345 ")


def test_a_phrase_is_put_into_words_in_the_language_asked() -> None:
    lost = Phrase("guide_lost", {"item": "Haferflocken"})
    assert (
        lost.text(load("de"))
        == "Ich habe Haferflocken aus dem Blick verloren; bitte halten Sie still"
    )
    assert lost.text(load("en")) == "I've lost the Haferflocken; hold still"
    nested = Phrase(
        "budget_spent", {"budget": "1", "spent": "2", "cheapest": Phrase("cheapest_voice")}
    )
    assert nested.text(load("sv")).endswith("billigare: bara din röst skickas.")
