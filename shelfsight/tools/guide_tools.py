"""The guide's functions: mark_item(box_2d, name), the item to guide the user's hand to, and
stop_guiding().

Declared only when a camera is on (`shelfsight.tools.session_tools`). The box is checked here;
a malformed one is answered `invalid_args` with what to send, and never reaches the tracker.
Both are answered SILENT: the user hears the guidance itself, the model need not talk about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from google.genai import types

from shelfsight.core.phrases import phrase
from shelfsight.guide.box import parse_box_2d
from shelfsight.tools.calls import Reply, Tool, string_arg


class GuideTarget(Protocol):
    """What the functions drive (`shelfsight.guide.worker.GuideWorker`); loop thread."""

    def mark(self, box_2d: tuple[float, float, float, float], name: str) -> None: ...
    def stop(self, why: str) -> bool: ...


MARK_ITEM = types.FunctionDeclaration(
    name="mark_item",
    description=(
        "Guide the user's hand to an item in the latest camera picture: give its bounding box "
        "and a short name. Call it when the user asks to be guided to something you can see."
    ),
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={
            "box_2d": types.Schema(
                type=types.Type.ARRAY,
                items=types.Schema(type=types.Type.INTEGER),
                description="[ymin, xmin, ymax, xmax] normalised to 0-1000.",
            ),
            "name": types.Schema(type=types.Type.STRING, description="e.g. 'green oat bag'."),
        },
        required=["box_2d", "name"],
    ),
    behavior=types.Behavior.NON_BLOCKING,
)

STOP_GUIDING = types.FunctionDeclaration(
    name="stop_guiding",
    description="Stop guiding the user's hand (they have the item, or asked to stop).",
    behavior=types.Behavior.NON_BLOCKING,
)

GUIDE_INSTRUCTION = (
    "Guide mode: when the user asks you to guide them (or their hand) to an item you can see, "
    "call mark_item with its box in the latest picture; shelfsight then plays sounds that lead "
    "the camera to it, so say only a few words. If you cannot see it, say so and how to move "
    "the camera. When they have it or say stop, call stop_guiding."
)


def guide_tools(target: GuideTarget) -> list[Tool]:
    def mark(args: Mapping[str, Any]) -> Reply:
        box = parse_box_2d(args.get("box_2d"))
        name = string_arg(args, "name", max_len=80)
        target.mark(box, name)
        return Reply(
            {"status": "guiding", "item": name, "note": "The user hears where it is."},
            scheduling="SILENT",
            note=phrase("guiding_to", item=name),
        )

    def stop(args: Mapping[str, Any]) -> Reply:
        if target.stop("the model"):
            return Reply({"status": "stopped"}, scheduling="SILENT", note=phrase("guiding_stopped"))
        return Reply({"status": "not_guiding"}, scheduling="SILENT")

    return [Tool(MARK_ITEM, mark), Tool(STOP_GUIDING, stop)]
