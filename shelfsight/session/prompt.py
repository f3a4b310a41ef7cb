"""The system instruction, kept in its own Markdown file so it can be edited and tested alone."""

from importlib import resources
from pathlib import Path


def load_system_prompt(path: Path | None = None) -> str:
    """Read the prompt from `path`, or the packaged default when no path is given."""
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    packaged = resources.files("shelfsight") / "prompts" / "system.md"
    return packaged.read_text(encoding="utf-8").strip()
