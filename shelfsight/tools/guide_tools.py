"""The guide's function: mark_item(box_2d, name), the item to guide the user's hand to.

Declared only when a camera is on and the guide is wired into the run (not yet: see README,
"Guide me"). The box is checked here; a malformed one is answered `invalid_args` with what
to send, and never reaches the tracker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.genai import types

from shelfsight.guide.box import parse_box_2d
from shelfsight.tools.calls import Reply, Tool, string_arg

OnMark = Callable[[tuple[float, float, float, float], str], None]

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


def mark_item_tool(on_mark: OnMark) -> Tool:
    def handle(args: Mapping[str, Any]) -> Reply:
        box = parse_box_2d(args.get("box_2d"))
        name = string_arg(args, "name", max_len=80)
        on_mark(box, name)
        return Reply(
            {"status": "guiding", "item": name, "note": "The user hears where it is."},
            scheduling="SILENT",
            note=f"guiding you to the {name}",
        )

    return Tool(MARK_ITEM, handle)
