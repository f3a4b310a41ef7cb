"""Function calls from the model, answered: one `ToolBox` per session.

On gemini-3.8-live calls are NON_BLOCKING by default: the model goes on talking while the
client works, and the client answers each call by id with a `FunctionResponse` whose
`scheduling` says what the model does with it (WHEN_IDLE: speak about it once idle; SILENT:
only note it; INTERRUPT: speak about it now). The model retries, sometimes several times in a
row, when a call comes back empty, so every call gets an informative answer: a status, what
it changed, and for failures whether trying again can help (`retryable`). That includes calls
to functions this session never declared, calls with malformed arguments, and a second call
with an id already answered (its first answer again, nothing applied twice). A cancelled call
(`toolCallCancellation`) has its change undone when nothing changed the item since.
Loop thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from google.genai import types

from shelfsight.core.phrases import phrase
from shelfsight.errors import BadArgs

log = logging.getLogger(__name__)

Scheduling = Literal["WHEN_IDLE", "SILENT", "INTERRUPT"]
ANSWERED_KEPT = 256  # call ids remembered for duplicate detection (oldest forgotten first)


@dataclass(frozen=True)
class Reply:
    """The answer to one call, and what the user should be told of it."""

    response: dict[str, Any]
    scheduling: Scheduling = "WHEN_IDLE"
    note: str | None = None  # one line for the view, e.g. "list: milk found, 3 left"
    undo: Callable[[], str | None] | None = field(default=None, compare=False)


Handler = Callable[[Mapping[str, Any]], Reply]


@dataclass(frozen=True)
class Tool:
    declaration: types.FunctionDeclaration
    handle: Handler

    @property
    def name(self) -> str:
        return self.declaration.name or ""


def failure(status: str, error: str, *, retryable: bool, **extra: Any) -> Reply:
    return Reply({"status": status, "error": error, "retryable": retryable, **extra})


class ToolBox:
    """The session's declared functions, and the memory of which calls were answered."""

    def __init__(self, tools: Sequence[Tool] = ()) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._answered: dict[str, Reply] = {}

    def add(self, tools: Sequence[Tool]) -> None:
        for tool in tools:
            self._tools[tool.name] = tool

    def declarations(self) -> list[types.Tool]:
        """For LiveConnectConfig.tools: empty when no feature declared a function."""
        if not self._tools:
            return []
        return [types.Tool(function_declarations=[t.declaration for t in self._tools.values()])]

    def answer(self, call_id: str | None, name: str, args: Any) -> Reply:
        """The reply to one call; applies its change at most once per id."""
        if call_id is not None and call_id in self._answered:
            first = self._answered[call_id]
            response = {**first.response, "duplicate_call": True}
            return Reply(response, first.scheduling, note=phrase("repeated_call", name=name))
        reply = self._dispatch(name, args)
        if call_id is not None:
            self._answered[call_id] = reply
            while len(self._answered) > ANSWERED_KEPT:
                del self._answered[next(iter(self._answered))]
        return reply

    def cancel(self, call_ids: Sequence[str]) -> list[str]:
        """Undo what the cancelled calls changed; returns the notes for the user."""
        notes = []
        for call_id in call_ids:
            reply = self._answered.get(call_id)
            if reply is not None and reply.undo is not None:
                if note := reply.undo():
                    notes.append(note)
                self._answered[call_id] = replace(reply, undo=None)
        return notes

    def _dispatch(self, name: str, args: Any) -> Reply:
        tool = self._tools.get(name)
        if tool is None:
            known = sorted(self._tools)
            return failure(
                "unknown_function",
                f"No function named {name!r} in this session.",
                retryable=False,
                available=known,
            )
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            return failure("invalid_args", "Arguments must be a JSON object.", retryable=True)
        try:
            return tool.handle(args)
        except BadArgs as exc:
            return failure("invalid_args", str(exc), retryable=True)
        except Exception:  # a bug here must not end the user's session
            log.exception("function %s failed", name)
            return failure("error", f"{name} failed on the device.", retryable=False)


def string_arg(args: Mapping[str, Any], key: str, *, max_len: int = 200) -> str:
    """A required non-empty string argument, or BadArgs saying what is wrong."""
    value = args.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadArgs(f"{key!r} must be a non-empty string.")
    if len(value) > max_len:
        raise BadArgs(f"{key!r} is longer than {max_len} characters.")
    return value.strip()
