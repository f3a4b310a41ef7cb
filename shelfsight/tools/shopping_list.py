"""The shopping list file: parse, match spoken names, format, write atomically.

The file is plain text, one item a line, or a Markdown task list (`- [ ] item`, `- [x] item`);
both may be mixed. Blank lines, headings (`# ...`) and HTML comments are kept as they are.
Every item is written back as a task-list line: `- [x] item` (found), `- [ ] item` (still to
find) or `- [ ] item (skipped)` (the user chose not to look for it now; still unticked, so it
reads right in any Markdown editor and comes back as skipped on the next run).

Writes go to a temporary file in the same folder, are fsynced and then renamed over the list
(`os.replace`), so the file on disk is always either the old list or the new one, whole,
whatever stops the program (Ctrl-C, a crash, a power cut after the fsync).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from shelfsight.errors import UserError

State = Literal["open", "found", "skipped"]
SKIPPED_NOTE = " (skipped)"
MAX_ITEMS = 200
_TASK_RE = re.compile(r"^\s*[-*+]\s+\[(?P<mark>[ xX])\]\s+(?P<name>.*\S)\s*$")
_BULLET_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?P<name>.*\S)\s*$")
_ARTICLES = {"the", "a", "an", "some", "my", "of"}


@dataclass(frozen=True)
class Item:
    name: str
    state: State = "open"


@dataclass(frozen=True)
class ShoppingList:
    """An immutable list: `lines` holds items and kept lines (str) in file order."""

    lines: tuple[Item | str, ...]

    @property
    def items(self) -> list[Item]:
        return [line for line in self.lines if isinstance(line, Item)]

    def names(self, state: State | None = None) -> list[str]:
        return [i.name for i in self.items if state is None or i.state == state]

    def with_state(self, name: str, state: State) -> ShoppingList:
        """A copy with the item called exactly `name` set to `state`."""
        lines = tuple(
            replace(line, state=state) if isinstance(line, Item) and line.name == name else line
            for line in self.lines
        )
        return ShoppingList(lines)

    def state_of(self, name: str) -> State | None:
        return next((i.state for i in self.items if i.name == name), None)


def parse(text: str) -> ShoppingList:
    """Items from plain lines and Markdown task-list lines; other Markdown lines are kept."""
    lines: list[Item | str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith(("#", "<!--")):
            lines.append(raw.rstrip())
        elif task := _TASK_RE.match(raw):
            name = task["name"]
            state: State = "found" if task["mark"] in "xX" else "open"
            if state == "open" and name.endswith(SKIPPED_NOTE):
                name, state = name.removesuffix(SKIPPED_NOTE).rstrip(), "skipped"
            lines.append(Item(name, state))
        elif bullet := _BULLET_RE.match(raw):
            lines.append(Item(bullet["name"]))
        else:
            lines.append(Item(stripped))
    return ShoppingList(tuple(lines))


def format_markdown(shopping: ShoppingList) -> str:
    """The file's text: every item as a task-list line, kept lines unchanged."""
    out = []
    for line in shopping.lines:
        if isinstance(line, str):
            out.append(line)
        else:
            mark = "x" if line.state == "found" else " "
            note = SKIPPED_NOTE if line.state == "skipped" else ""
            out.append(f"- [{mark}] {line.name}{note}")
    return "\n".join(out) + "\n"


def format_for_people(shopping: ShoppingList, title: str) -> str:
    """What `shelfsight list FILE` prints: a count, then one line an item."""
    found, skipped = shopping.names("found"), shopping.names("skipped")
    left = shopping.names("open")
    head = f"{title}: {len(found)} of {len(shopping.items)} found, {len(left)} left"
    head += f", {len(skipped)} skipped" if skipped else ""
    marks = {"open": "[ ]", "found": "[x]", "skipped": "[-]"}
    rows = [f"  {marks[i.state]} {i.name}" for i in shopping.items]
    return "\n".join([head, *rows])


def normalise(name: str) -> str:
    """Lower case, no punctuation, no articles, singular-ish: "the Eggs" and "egg" match."""
    words = re.sub(r"[^\w\s-]", " ", name.lower()).replace("-", " ").split()
    kept = [w for w in words if w not in _ARTICLES] or words
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in kept)


def match(shopping: ShoppingList, spoken: str) -> list[str]:
    """The list names `spoken` may mean: one exact match, else every item whose words
    contain the spoken words or are contained in them (empty: not on the list)."""
    wanted = normalise(spoken)
    if not wanted:
        return []
    names = shopping.names()
    exact = [n for n in names if normalise(n) == wanted]
    if exact:
        return exact[:1]
    spoken_words = set(wanted.split())
    out = []
    for n in names:
        words = set(normalise(n).split())
        if words and (words <= spoken_words or spoken_words <= words):
            out.append(n)
    return out


def load(path: Path) -> ShoppingList:
    """Read a list file; UserError (one line) when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"Shopping list {path} does not exist.") from None
    except IsADirectoryError:
        raise UserError(f"Shopping list {path} is a folder, not a file.") from None
    except UnicodeDecodeError:
        raise UserError(f"Shopping list {path} is not UTF-8 text.") from None
    except OSError as exc:
        raise UserError(f"Cannot read shopping list {path}: {exc.strerror or exc}") from None
    shopping = parse(text)
    if not shopping.items:
        raise UserError(f"Shopping list {path} has no items: write one item a line.")
    if len(shopping.items) > MAX_ITEMS:
        raise UserError(f"Shopping list {path} has over {MAX_ITEMS} items: split it.")
    return shopping


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step (temp file, fsync, rename, fsync the folder).
    Keeps the file's permissions. Blocking: call it off the event loop."""
    folder = path.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
