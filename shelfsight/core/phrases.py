"""Every sentence shelfsight itself says or shows, in the user's language.

The sentences are data: one TOML file a language in `shelfsight/i18n/` (`en.toml` holds
every key; tests/test_phrases.py checks that each other file has exactly the same keys and
placeholders). A sentence is whole, with named placeholders (`{item}`, `{seconds:.1f}`);
where a count changes the words it is a table of plural forms (`one`, `few`, `many`,
`other`, chosen by its `count` value, see `plural_form`). Numbers are written with the
language's decimal mark and digit grouping (`2,5 s` in German).

The session's language is chosen once, from the `--language` BCP-47 tag (`speaking`):
`phrase(key, ...)` is that language's sentence, for the screen. What is also said aloud
travels as a `Phrase` (key and values), so the spoken status can render it in the language
its voice speaks, which is English where the platform has no voice for the user's language.
Loaded files are cached; the current language is one value for the whole process (a run
has one user).
"""

from __future__ import annotations

import contextlib
import string
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "nb", "sv", "pl", "pt")
ALIASES = {"no": "nb", "nn": "nb"}  # Norwegian is written in Bokmål here
PLURAL_FORMS = ("zero", "one", "few", "many", "other")


def language_of(tag: str) -> str | None:
    """The catalogue for a BCP-47 tag ("de-DE" -> "de", "pt-BR" -> "pt", "no" -> "nb"), or
    None when there is none for its language."""
    primary = tag.replace("_", "-").split("-")[0].lower()
    primary = ALIASES.get(primary, primary)
    return primary if primary in LANGUAGES else None


def plural_form(language: str, count: float) -> str:
    """The CLDR plural category of `count` for the few languages here (integers; a fraction
    is "other")."""
    if count != int(count):
        return "other"
    n = abs(int(count))
    if language in ("fr", "pt"):
        return "one" if n in (0, 1) else "other"
    if language == "pl":
        if n == 1:
            return "one"
        if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
            return "few"
        return "many"
    return "one" if n == 1 else "other"


@dataclass(frozen=True)
class Phrase:
    """A sentence not yet put into words: a key of the catalogue and its values (which may
    be phrases themselves), rendered in whichever language the listener needs."""

    key: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def text(self, catalogue: Catalogue | None = None) -> str:
        """In `catalogue`'s language; the session's when None."""
        return (catalogue or current()).text(self.key, **self.values)


class _Numbers(string.Formatter):
    """str.format with the language's decimal mark and digit grouping."""

    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        self._marks = str.maketrans({",": catalogue.group, ".": catalogue.decimal})

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Phrase):
            return value.text(self._catalogue)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return format(value, format_spec).translate(self._marks)
        return super().format_field(value, format_spec)


@dataclass(frozen=True)
class Catalogue:
    """The sentences of one language, read from `shelfsight/i18n/<code>.toml`."""

    code: str
    name: str  # the language's name in itself ("Deutsch")
    decimal: str
    group: str
    entries: Mapping[str, str | Mapping[str, str]]

    def text(self, key: str, /, **values: Any) -> str:
        entry = self.entries.get(key)
        if entry is None:  # a file missing a key fails its test; at run time, say it in English
            entry = load("en").entries[key]
        if not isinstance(entry, str):
            forms = entry
            entry = forms.get(plural_form(self.code, float(values["count"])), forms["other"])
        return _Numbers(self).format(entry, **values)


@cache
def load(code: str) -> Catalogue:
    """The catalogue `code` (one of LANGUAGES), read once."""
    source = resources.files("shelfsight") / "i18n" / f"{code}.toml"
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    meta = data.pop("language")
    return Catalogue(code, meta["name"], meta["decimal"], meta["group"], data)


_current: list[Catalogue] = []  # the session's language; English until one is chosen


def current() -> Catalogue:
    return _current[-1] if _current else load("en")


def phrase(key: str, /, **values: Any) -> str:
    """The sentence `key` in the session's language."""
    return current().text(key, **values)


@contextlib.contextmanager
def speaking(tag: str) -> Iterator[Catalogue]:
    """Within: the session's sentences are in the language of `tag` (English where there is
    no catalogue for it)."""
    _current.append(load(language_of(tag) or "en"))
    try:
        yield _current[-1]
    finally:
        _current.pop()
