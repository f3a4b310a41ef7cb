"""The system instruction, kept in its own Markdown file so it can be edited and tested alone."""

from importlib import resources
from pathlib import Path

from shelfsight.errors import UserError


def load_system_prompt(path: Path | None = None) -> str:
    """Read the prompt from `path`, or the packaged default when no path is given."""
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise UserError(f"--prompt-file {path} cannot be read: {reason}.") from None
    packaged = resources.files("shelfsight") / "prompts" / "system.md"
    return packaged.read_text(encoding="utf-8").strip()
