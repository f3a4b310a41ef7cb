"""The shopping-list functions the model calls: mark_found, mark_skipped, whats_left.

Replies name the item as it is written on the list and say what is left, so the model can
answer "got it, three to go: bread, eggs and coffee" without another call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.genai import types

from shelfsight.core.phrases import phrase
from shelfsight.tools.calls import Reply, Tool, failure, string_arg
from shelfsight.tools.list_file import ListFile
from shelfsight.tools.shopping_list import ShoppingList, State, match

_ITEM = types.Schema(
    type=types.Type.OBJECT,
    properties={
        "item": types.Schema(
            type=types.Type.STRING,
            description="The item as written on the shopping list, e.g. 'oat milk'.",
        )
    },
    required=["item"],
)


def _declare(
    name: str, description: str, parameters: types.Schema | None
) -> types.FunctionDeclaration:
    return types.FunctionDeclaration(
        name=name,
        description=description,
        parameters=parameters,
        behavior=types.Behavior.NON_BLOCKING,
    )


class ListTools:
    """The list functions over one `ListFile`; `on_change` hears every change (loop thread)."""

    def __init__(
        self, store: ListFile, on_change: Callable[[ShoppingList], None] | None = None
    ) -> None:
        self._store = store
        self._on_change = on_change

    def tools(self) -> list[Tool]:
        return [
            Tool(
                _declare(
                    "mark_found",
                    "Tick an item off the shopping list: the user has it (in hand or basket).",
                    _ITEM,
                ),
                self.mark_found,
            ),
            Tool(
                _declare(
                    "mark_skipped",
                    "Skip an item on the shopping list: the user does not want to look for it now.",
                    _ITEM,
                ),
                self.mark_skipped,
            ),
            Tool(
                _declare("whats_left", "What is still to find on the shopping list.", None),
                self.whats_left,
            ),
        ]

    def mark_found(self, args: Mapping[str, Any]) -> Reply:
        return self._mark(string_arg(args, "item"), "found")

    def mark_skipped(self, args: Mapping[str, Any]) -> Reply:
        return self._mark(string_arg(args, "item"), "skipped")

    def whats_left(self, args: Mapping[str, Any]) -> Reply:
        left = self._store.current.names("open")
        return Reply(
            {"status": "ok", **self._summary()}, note=phrase("list_left", left=_left_text(left))
        )

    def _mark(self, spoken: str, state: State) -> Reply:
        shopping = self._store.current
        names = match(shopping, spoken)
        if not names:
            return failure(
                "unknown_item",
                f"{spoken!r} is not on the shopping list.",
                retryable=False,
                **self._summary(),
            )
        if len(names) > 1:
            return failure(
                "ambiguous",
                f"{spoken!r} could be any of these list items; call again with one.",
                retryable=True,
                candidates=names,
            )
        name = names[0]
        before = shopping.state_of(name)
        if before == state or before == "found":
            status = "already_found" if before == "found" else "already_skipped"
            return Reply({"status": status, "item": name, **self._summary()})
        self._set(name, state)
        verb = "found" if state == "found" else "skipped"
        left = self._store.current.names("open")
        return Reply(
            {"status": verb, "item": name, **self._summary()},
            note=phrase(f"list_{verb}", item=name, left=_left_text(left)),
            undo=lambda: self._undo(name, state, before or "open"),
        )

    def _undo(self, name: str, applied: State, previous: State) -> str | None:
        if self._store.current.state_of(name) != applied:
            return None  # changed again since: leave it
        self._set(name, previous)
        key = "list_back_to_find" if previous == "open" else "list_back_to_skipped"
        return phrase(key, item=name)

    def _set(self, name: str, state: State) -> None:
        self._store.update(self._store.current.with_state(name, state))
        if self._on_change is not None:
            self._on_change(self._store.current)

    def _summary(self) -> dict[str, Any]:
        shopping = self._store.current
        return {
            "left": shopping.names("open"),
            "found": shopping.names("found"),
            "skipped": shopping.names("skipped"),
        }


def _left_text(left: list[str]) -> str:
    if not left:
        return phrase("list_nothing_left")
    return phrase("list_some_left", count=len(left), items=", ".join(left))


def list_instruction(shopping: ShoppingList) -> str:
    """Appended to the system instruction on every (re)connect: the list as it is now."""
    lines = []
    for item in shopping.items:
        mark = {"open": "to find", "found": "found", "skipped": "skipped"}[item.state]
        lines.append(f"- {item.name} ({mark})")
    return (
        "The user's shopping list:\n"
        + "\n".join(lines)
        + "\n\nKeep it up to date with the functions: when the user says they have an item "
        '("I\'ve got the milk"), call mark_found; when they want to skip one ("skip the '
        'eggs"), call mark_skipped; when they ask what is left, call whats_left. Use the '
        "item's name as written on the list. After a result, say in a few words what changed "
        "and how many items are left. When helping find an item, look for the next one still "
        "to find unless the user asks for another."
    )
