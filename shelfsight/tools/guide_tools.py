"""The guide's functions: mark_item(box_2d, name), the item to guide the user's hand to;
point_camera(direction, name), the way to turn when the item is not in the picture (the ticks
lead that way, and the model gets a fresh picture as the camera turns, until it can mark the
item: no spoken back-and-forth per step); and stop_guiding().

Declared only when a camera is on (`shelfsight.tools.session_tools`). The box is checked here;
a malformed one is answered `invalid_args` with what to send, and never reaches the tracker.
Both are answered SILENT: the user hears the guidance itself, the model need not talk about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from google.genai import types

from shelfsight.core.guidance import DIRECTIONS
from shelfsight.core.phrases import phrase
from shelfsight.errors import BadArgs
from shelfsight.guide.box import parse_box_2d
from shelfsight.tools.calls import Reply, Tool, string_arg


class GuideTarget(Protocol):
    """What the functions drive (`shelfsight.guide.worker.GuideWorker`); loop thread."""

    def mark(self, box_2d: tuple[float, float, float, float], name: str) -> None: ...
    def lead(self, direction: str, name: str) -> None: ...
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

POINT_CAMERA = types.FunctionDeclaration(
    name="point_camera",
    description=(
        "Lead the user's camera towards an item that is not in the latest camera picture: the "
        "way to turn it, from what you have seen or know of the shelf. Sounds then lead the "
        "camera that way and you get fresh pictures: call mark_item once you see the item."
    ),
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={
            "direction": types.Schema(
                type=types.Type.STRING,
                enum=list(DIRECTIONS),
                description="Which way to turn the camera.",
            ),
            "name": types.Schema(type=types.Type.STRING, description="e.g. 'green oat bag'."),
        },
        required=["direction", "name"],
    ),
    behavior=types.Behavior.NON_BLOCKING,
)

STOP_GUIDING = types.FunctionDeclaration(
    name="stop_guiding",
    description="Stop guiding the user's hand (they have the item, or asked to stop).",
    behavior=types.Behavior.NON_BLOCKING,
)

GUIDE_INSTRUCTION = (
    "Guide mode: when the user asks you to guide them (or their hand) to an item, call "
    "mark_item with its box in the latest picture if you can see it, or point_camera with the "
    "way to turn the camera if you cannot; shelfsight then plays sounds that lead the camera, "
    "so say only a few words. Messages starting 'Guide' come from shelfsight while it guides: "
    "answer them only with a function call, never aloud. Once the item is in reach, the "
    "picture with the user's next question is a close-up of it cut from the full camera "
    "picture: read its label from it. When the user has the item or says stop, call "
    "stop_guiding."
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

    def point(args: Mapping[str, Any]) -> Reply:
        direction = string_arg(args, "direction", max_len=20).lower()
        if direction not in DIRECTIONS:
            raise BadArgs(f"'direction' must be one of: {', '.join(DIRECTIONS)}.")
        name = string_arg(args, "name", max_len=80)
        target.lead(direction, name)
        return Reply(
            {"status": "leading", "item": name, "direction": direction},
            scheduling="SILENT",
            note=phrase("leading_to", item=name, direction=phrase(f"way_{direction}")),
        )

    def stop(args: Mapping[str, Any]) -> Reply:
        if target.stop("the model"):
            return Reply({"status": "stopped"}, scheduling="SILENT", note=phrase("guiding_stopped"))
        return Reply({"status": "not_guiding"}, scheduling="SILENT")

    return [Tool(MARK_ITEM, mark), Tool(POINT_CAMERA, point), Tool(STOP_GUIDING, stop)]
