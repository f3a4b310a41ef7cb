"""Which view a run gets: the one place that knows every kind (so the kinds need not know
each other)."""

from __future__ import annotations

import sys

from shelfsight.ui.screen_reader import ScreenReaderView
from shelfsight.ui.view import AnswerView, LiveView, PlainView


def make_view(
    plain: bool | None = None, *, answer_only: bool = False, screen_reader: bool = False
) -> PlainView:
    """The rich view on a terminal, plain lines otherwise (or when asked); for a screen
    reader, one plain sentence per event (see shelfsight.ui.screen_reader)."""
    if answer_only:
        return AnswerView()
    if screen_reader:
        return ScreenReaderView()
    if plain is None:
        plain = not sys.stdout.isatty()
    return PlainView() if plain else LiveView()
