"""Reading a spoken answer's transcript, and scoring it against the truth.

Answers come in many phrasings: "second shelf", "shelf two from the top", "the top shelf",
"third from the bottom" (which needs the number of shelves in view), "left end", "on the far
right", "in the middle". `read_answer` turns one into a `Reading`; `score` compares it with a
case's `Truth`. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shelfsight.eval.cases import Truth

_NUMBER = {
    "one": 1, "first": 1, "1st": 1, "1": 1,
    "two": 2, "second": 2, "2nd": 2, "2": 2,
    "three": 3, "third": 3, "3rd": 3, "3": 3,
    "four": 4, "fourth": 4, "4th": 4, "4": 4,
    "five": 5, "fifth": 5, "5th": 5, "5": 5,
    "six": 6, "sixth": 6, "6th": 6, "6": 6,
    "seven": 7, "seventh": 7, "7th": 7, "7": 7,
}  # fmt: skip
_N = "(" + "|".join(sorted(_NUMBER, key=len, reverse=True)) + ")"
_END = r"(top|bottom)"

# (pattern, how to read its match) in order of precedence: the most specific first.
_SHELF_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b{_N} shelf (?:up |down )?from the {_END}\b"), "n-end"),
    (re.compile(rf"\bshelf (?:number )?{_N} from the {_END}\b"), "n-end"),
    (re.compile(rf"\b{_N} (?:one )?from the {_END}\b"), "n-end"),
    (re.compile(r"\b(?:second|2nd) (?:shelf )?from last\b|\bsecond to last shelf\b"), "n-1"),
    (re.compile(r"\b(?:one|shelf) (?:above|over) the bottom\b"), "n-1"),
    (re.compile(r"\b(?:one|shelf) (?:below|under) the top\b"), "2"),
    (re.compile(r"\b(?:top|topmost|highest|uppermost) shelf\b|\bvery top\b|\bon the top\b"), "1"),
    (re.compile(r"\b(?:bottom|lowest|bottommost) shelf\b|\bvery bottom\b|\bon the bottom\b"), "n"),
    (re.compile(r"\bmiddle shelf\b"), "middle"),
    (re.compile(rf"\b{_N} shelf\b"), "n-top"),
    (re.compile(rf"\bshelf (?:number )?{_N}\b"), "n-top"),
]
_ABSENT = re.compile(
    r"\b(?:can't|cannot|can not|don't|do not|couldn't|could not|didn't|did not|won't)"
    r" (?:see|find|spot|locate|make out)\b"
    r"|\bnot (?:in (?:this |the )?(?:view|picture|frame|shot)|visible|here|on (?:this|these|the)"
    r" shel(?:f|ves))\b"
    r"|\b(?:isn't|aren't|is not|are not) (?:here|visible|in (?:view|the picture))\b"
    r"|\bno sign of\b|\bnowhere\b|\bnot seeing\b"
)
_POSITIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:just |slightly )?(?:left|right) of (?:the )?(?:middle|centre|center)\b"),
     "middle"),
    (re.compile(r"\bleft\b"), "left"),
    (re.compile(r"\bright(?: end| side| hand| edge)\b|\b(?:on|to|at) the (?:far )?right\b"
                r"|\bfar right\b|\bright\b(?! (?:now|away|there|here))"), "right"),
    (re.compile(r"\b(?:middle|centre|center|in between)\b"), "middle"),
]  # fmt: skip
_COLOURS = {
    "red": "red", "orange": "orange", "yellow": "yellow", "green": "green", "blue": "blue",
    "navy": "blue", "purple": "purple", "violet": "purple", "pink": "pink", "brown": "brown",
    "black": "black", "white": "white", "grey": "grey", "gray": "grey", "silver": "grey",
    "gold": "yellow", "golden": "yellow", "beige": "beige", "cream": "beige", "tan": "beige",
}  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """What an answer says: the item is missing, or on which shelf, where, in what colour."""

    absent: bool
    shelf: int | None
    position: str | None
    colours: tuple[str, ...]


@dataclass(frozen=True)
class Score:
    """Each check: True right, False wrong, None not scored (the truth does not say)."""

    found: bool  # found where it is, or correctly reported missing
    shelf: bool | None
    position: bool | None
    colour: bool | None

    @property
    def correct(self) -> bool:
        checks = (self.found, self.shelf, self.position, self.colour)
        return all(check is not False for check in checks)


def read_answer(text: str, shelves: int | None = None) -> Reading:
    """Reads an answer; `shelves` (in view) resolves "from the bottom" and "middle shelf"."""
    plain = " " + re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("’", "'")) + " "
    plain = re.sub(r"\s+", " ", plain)
    shelf, rest = _read_shelf(plain, shelves)
    hits = sorted(_positions_in(rest))
    position = hits[0][1] if hits else None
    colours = tuple(dict.fromkeys(_COLOURS[w] for w in plain.split() if w in _COLOURS))
    return Reading(bool(_ABSENT.search(plain)), shelf, position, colours)


def score(truth: Truth, reading: Reading) -> Score:
    if not truth.present:
        return Score(found=reading.absent, shelf=None, position=None, colour=None)
    found = not reading.absent
    return Score(
        found=found,
        shelf=None if truth.shelf is None else found and reading.shelf == truth.shelf,
        position=None if truth.position is None else found and reading.position == truth.position,
        colour=None if truth.colour is None else found and truth.colour in reading.colours,
    )


def _read_shelf(plain: str, shelves: int | None) -> tuple[int | None, str]:
    """The shelf an answer names (from the top) and the text with that phrase removed."""
    for pattern, how in _SHELF_PATTERNS:
        match = pattern.search(plain)
        if match is None:
            continue
        rest = plain[: match.start()] + " " + plain[match.end() :]
        return _resolve(match, how, shelves), rest
    return None, plain


def _resolve(match: re.Match[str], how: str, shelves: int | None) -> int | None:
    if how == "1" or how == "2":
        return int(how)
    if how == "n":
        return shelves
    if how == "n-1":
        return shelves - 1 if shelves else None
    if how == "middle":
        return (shelves + 1) // 2 if shelves and shelves % 2 else None
    number = _NUMBER[match.group(1)]
    from_bottom = how == "n-end" and match.group(2) == "bottom"
    if from_bottom:
        return shelves - number + 1 if shelves else None
    return number


def _positions_in(text: str) -> list[tuple[int, str]]:
    """Every position word with where it starts; the earliest mention wins, and a phrase like
    "just right of the middle" counts as middle, not right."""
    hits: list[tuple[int, str]] = []
    covered: list[tuple[int, int]] = []
    for pattern, name in _POSITIONS:
        for match in pattern.finditer(text):
            if any(a <= match.start() < b for a, b in covered):
                continue
            covered.append(match.span())
            hits.append((match.start(), name))
    return hits
