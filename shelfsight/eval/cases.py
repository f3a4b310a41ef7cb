"""A suite's cases: what to show, what to ask, and the ground truth.

`cases.json` in the suite folder:

    {"cases": [
      {"id": "oats", "picture": "pictures/aisle-1.jpg", "question": "Where are the oats?",
       "present": true, "shelf": 1, "shelves": 4, "position": "left", "colour": "orange"},
      {"id": "my-shop", "session": "sessions/2026-11-24T10-31-07", "present": false}
    ]}

`picture` is a still photo (asked as `shelfsight ask` would, with `question`); `session` is a
folder written by `shelfsight run --record`, whose recorded question and frames are replayed.
`shelf` counts from the top (1 = top shelf) of the `shelves` in view; `position` is where along
the shelf: left, middle or right; `colour` the package's main colour. Every field of the truth
but `present` may be left out, and is then not scored. Paths are relative to the suite folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shelfsight.errors import UserError

POSITIONS = ("left", "middle", "right")


@dataclass(frozen=True)
class Truth:
    present: bool
    shelf: int | None = None  # from the top, 1-based
    shelves: int | None = None  # shelves in view, to read "second from the bottom"
    position: str | None = None  # left, middle, right
    colour: str | None = None


@dataclass(frozen=True)
class Case:
    id: str
    truth: Truth
    question: str = ""
    picture: Path | None = None
    session: Path | None = None


def bundled_suite() -> Path:
    """The suite shipped with shelfsight (rendered shelf scenes with known positions)."""
    return Path(__file__).resolve().parent / "suites" / "shelf"


def load_suite(folder: Path) -> list[Case]:
    """Reads `folder/cases.json`; a bad suite is one clear UserError naming the case."""
    path = folder / "cases.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{folder} is not an eval suite: it has no cases.json.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    raw_cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(raw_cases, list) or not raw_cases:
        raise UserError(f'{path} must hold {{"cases": [...]}} with at least one case.')
    cases = [_case(folder, raw, n) for n, raw in enumerate(raw_cases, 1)]
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise UserError(f"{path}: case ids must be unique.")
    return cases


def _case(folder: Path, raw: Any, number: int) -> Case:
    if not isinstance(raw, dict):
        raise UserError(f"{folder}/cases.json: case {number} is not an object.")
    name = str(raw.get("id") or f"case-{number}")

    def bad(why: str) -> UserError:
        return UserError(f"{folder}/cases.json, case {name}: {why}")

    picture, session = raw.get("picture"), raw.get("session")
    if (picture is None) == (session is None):
        raise bad('give either "picture" or "session".')
    if picture is not None and not str(raw.get("question", "")).strip():
        raise bad('a picture case needs a "question".')
    if not isinstance(raw.get("present"), bool):
        raise bad('"present" must be true or false.')
    position = raw.get("position")
    if position is not None and position not in POSITIONS:
        raise bad(f'"position" must be one of {", ".join(POSITIONS)}.')
    for key in ("shelf", "shelves"):
        if raw.get(key) is not None and (not isinstance(raw[key], int) or raw[key] < 1):
            raise bad(f'"{key}" must be a whole number from 1.')
    path = folder / str(picture if picture is not None else session)
    if not path.exists():
        raise bad(f"{path} does not exist.")
    truth = Truth(
        present=raw["present"],
        shelf=raw.get("shelf"),
        shelves=raw.get("shelves"),
        position=position,
        colour=str(raw["colour"]).lower() if raw.get("colour") else None,
    )
    return Case(
        id=name,
        truth=truth,
        question=str(raw.get("question", "")).strip(),
        picture=path if picture is not None else None,
        session=path if session is not None else None,
    )
