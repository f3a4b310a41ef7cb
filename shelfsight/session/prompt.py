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


LANGUAGE_NAMES = {
    "ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French", "he": "Hebrew",
    "hi": "Hindi", "hu": "Hungarian", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "nb": "Norwegian (Bokmål)", "nl": "Dutch", "nn": "Norwegian (Nynorsk)", "no": "Norwegian",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip


def with_language(prompt: str, language: str) -> str:
    """The prompt with an instruction to answer in `language` (BCP-47; empty: no change)."""
    if not language:
        return prompt
    name = LANGUAGE_NAMES.get(language.split("-")[0].lower())
    spoken_as = f"{name} ({language})" if name else f"the language with BCP-47 tag {language}"
    return (
        f"{prompt}\n\nLanguage: always answer in {spoken_as}, the user's language, even when "
        "the labels in view are in another language (read a label's words as printed, then "
        "say what they mean)."
    )
