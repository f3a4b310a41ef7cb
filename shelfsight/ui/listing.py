"""Listings (`shelfsight sessions`, `shelfsight eval`): a table on a terminal wide enough to
hold it, else plain lines.

A table squeezed into 80 columns or a pipe folds every cell into one-word lines that neither
an eye nor a screen reader can follow. A `Listing` is rows of labelled values; `show` prints
the table only when every row fits on one terminal line, and otherwise one line per item:
its name alone (a folder stays pasteable), then its values as "label value" pairs, each
wrapped at word boundaries. Main thread only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from shelfsight.ui.view import print_paragraph


@dataclass
class Listing:
    title: str
    columns: list[str]  # the first names the item (a folder, a case)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # per row: a long text (an answer), or ""
    footer: list[str] | None = None  # totals, one per column (the first: what they are)

    def add(self, values: list[str], note: str = "") -> None:
        self.rows.append(values)
        self.notes.append(note)

    def table(self) -> Table:
        table = Table(title=self.title, title_justify="left", show_footer=self.footer is not None)
        notes = any(self.notes)
        for i, name in enumerate(self.columns):
            footer = self.footer[i] if self.footer else ""
            table.add_column(name, footer=footer, no_wrap=i == 0)
        if notes:
            table.add_column("answer", overflow="fold")
        for row, note in zip(self.rows, self.notes, strict=True):
            table.add_row(*row, *([note] if notes else []))
        return table

    def lines(self) -> list[str]:
        """The plain form: the title, then per item its name and its labelled values."""
        out = [f"{self.title}:"]
        for row, note in zip(self.rows, self.notes, strict=True):
            out.append(row[0])
            out.append("  " + ", ".join(_pairs(self.columns[1:], row[1:])))
            if note:
                out.append(f"  answer: {note}")
        if self.footer:
            out.append(f"{self.footer[0]}: " + ", ".join(_pairs(self.columns[1:], self.footer[1:])))
        return out


def _pairs(labels: list[str], values: list[str]) -> list[str]:
    return [f"{label} {value}" for label, value in zip(labels, values, strict=True) if value]


def show(listing: Listing, out: TextIO | None = None) -> None:
    """The table if `out` (stdout) is a terminal wide enough for it without folding, else
    plain lines."""
    out = out or sys.stdout
    console = Console(file=out)
    table = listing.table()
    measured = Measurement.get(console, console.options.update_width(100_000), table)
    # With an answer column, that may fold; the rest must fit beside a readable answer.
    needed = measured.minimum + 30 if any(listing.notes) else measured.maximum
    if console.is_terminal and needed <= console.width:
        console.print(table)
        return
    for line in listing.lines():
        print_paragraph(line, out)
