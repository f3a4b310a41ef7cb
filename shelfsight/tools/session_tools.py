"""The functions one run declares, built from its settings, and what they add to the setup.

Each feature adds its functions only when it is on (a shopping list given with --list, the guide
when a camera is on), so a plain run declares none. The system-instruction addition and the
transcription vocabulary are read on every (re)connect, so a resumed or fresh connection sees
the list as it is now.
"""

from __future__ import annotations

from pathlib import Path

from shelfsight.core.phrases import phrase
from shelfsight.tools.calls import ToolBox
from shelfsight.tools.guide_tools import GUIDE_INSTRUCTION, GuideTarget, guide_tools
from shelfsight.tools.list_file import ListFile
from shelfsight.tools.list_tools import ListTools, list_instruction


class SessionTools:
    """The run's `ToolBox` and the state behind it; `close` saves what is pending."""

    def __init__(self, list_path: Path | None = None) -> None:
        self.box = ToolBox()
        self.list_file = ListFile(list_path) if list_path is not None else None
        if self.list_file is not None:
            self.box.add(ListTools(self.list_file).tools())
        self._guiding = False

    def add_guide(self, target: GuideTarget) -> None:
        """Declare mark_item / stop_guiding (a camera is on); before the first connect."""
        self.box.add(guide_tools(target))
        self._guiding = True

    def instruction(self) -> str:
        """Added to the system instruction ("" when no feature has anything to say)."""
        parts = [GUIDE_INSTRUCTION] if self._guiding else []
        if self.list_file is not None:
            parts.append(list_instruction(self.list_file.current))
        return "\n\n".join(parts)

    def vocabulary(self) -> list[str]:
        """Words the transcription should expect: the list's item names."""
        return self.list_file.current.names() if self.list_file is not None else []

    def opening_notice(self) -> str | None:
        if self.list_file is None:
            return None
        shopping = self.list_file.current
        left = shopping.names("open")
        file = self.list_file.path.name
        if not left:
            return phrase("list_opening_done", file=file)
        total = len(shopping.items)
        return phrase("list_opening", file=file, left=len(left), total=total, items=", ".join(left))

    def close(self) -> None:
        if self.list_file is not None:
            self.list_file.close()
