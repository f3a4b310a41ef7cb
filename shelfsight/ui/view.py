"""What the user sees in the terminal.

Two views with one interface: `LiveView` (rich, a status line that redraws in place above the
scrolling transcript) for a terminal, and `PlainView` (one line per event, nothing redrawn) for
pipes, logs and CI. Transcripts arrive from the server in fragments; both views print a turn's
text once it is complete, so logs hold whole sentences.

On a terminal the plain view wraps its lines at word boundaries to the terminal's width (a
pipe gets them whole, one per event), and echoes the question being typed as it is typed
(`key_echo`: the terminal's own echo is off while shelfsight reads single keys), so a screen
reader has something to read back; a line printed meanwhile goes above it and the question so
far is written again below.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
import unicodedata
from collections.abc import Sequence
from typing import TextIO, cast

from rich.console import Console
from rich.live import Live
from rich.text import Text

from shelfsight.core.phrases import phrase
from shelfsight.session.status import State


def state_label(state: State) -> str:
    """ "listening", "thinking…": the state in the session's language."""
    return phrase("state_" + state.value.replace(" ", "_"))


def prompt() -> str:
    """ "Ask: ", which opens the echoed line of a question being typed."""
    return phrase("prompt")


# A latency under this took no network round trip: it timed only this computer (see
# PlainView.shown_latency).
MIN_LATENCY_S = 0.01


class PlainView:
    """Line-per-event output; the base of the rich view too."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._user: list[str] = []
        self._answer: list[str] = []
        self._state: State | None = None
        self.frames_sent = 0
        self.frame_bytes = 0
        self.level_dbfs = -120.0
        self.speaking = False
        self.last_latency_s: float | None = None
        self.typed_so_far: str | None = None
        self.last_cost = ""
        self._pending_cost = ""
        self.key_hints = ""
        # False when the answers come from the offline stand-in: no latency is then shown.
        self.latency_measured = True
        self._echoed: str | None = None  # the question echoed so far (None: no prompt open)
        self._tty = _isatty(self._out)

    def start(self, banner: Sequence[str] = ()) -> None:
        """Show the start banner (each text a paragraph), then the keys, once."""
        for text in banner:
            self._banner(text)
        if self.key_hints:
            self._banner(phrase("keys", keys=self.key_hints.replace("  ·  ", "; ")))

    def stop(self) -> None:
        self._flush_transcripts()
        self.key_echo(None)  # a question left half typed: the shell prompt starts afresh

    def key_echo(self, text: str | None, *, asked: bool = False) -> None:
        """Echo the question being typed as the keys arrive (a terminal only: a log gets the
        question once, as "You (typed): ..."). Backspace erases on screen as a shell does;
        the prompt closing ends the line, with "(cancelled)" when nothing was asked."""
        if not self._tty:
            return
        old, self._echoed = self._echoed, text
        if text is None:
            if old is not None:
                self._out.write(phrase("cancelled") + "\n" if old and not asked else "\n")
        elif old is None:
            self._out.write(prompt() + text)
        else:
            self._out.write(self._edit(old, text))
        self._out.flush()

    def _edit(self, old: str, new: str) -> str:
        """What turns the echoed `old` into `new`: backspaces over what changed, then the new
        end; where that would cross a line the terminal wrapped, the line again, below."""
        keep = 0
        while keep < min(len(old), len(new)) and old[keep] == new[keep]:
            keep += 1
        erase = _cells(old[keep:])
        width = self._width()
        if width and erase > _cells(prompt() + old) % width:  # the cursor's column
            return "\n" + prompt() + new
        return "\b \b" * erase + new[keep:]

    def shown_latency(self, latency_s: float | None) -> float | None:
        """The answer's latency if it measures something: the wait from the end of the
        question (typed, talk key released, or last speech) to the first answer audio, from a
        real endpoint. Not from the offline stand-in (canned, in this process: it answers at
        once by construction), and not under MIN_LATENCY_S (0 is what an answer that began
        before the question ended is given: the reply to something said earlier)."""
        if latency_s is None or not self.latency_measured or latency_s < MIN_LATENCY_S:
            return None
        return latency_s

    def state(self, state: State) -> None:
        if state != self._state:
            self._state = state
            self._on_state(state)

    def _on_state(self, state: State) -> None:
        quiet = (State.CONNECTING, State.RECONNECTING, State.LISTENING)
        if state in quiet and self.frames_sent == 0:
            self._line(f"[{state_label(state)}]")

    def mic_level(self, dbfs: float, speaking: bool) -> None:
        self.level_dbfs, self.speaking = dbfs, speaking

    def frame_sent(self, nbytes: int) -> None:
        self.frames_sent += 1
        self.frame_bytes += nbytes

    def user_said(self, text: str) -> None:
        self._user.append(text)

    def user_typed(self, text: str) -> None:
        self._flush_transcripts()
        self._line(phrase("you_typed", text=text))

    def typing(self, text: str | None) -> None:
        self.typed_so_far = text

    def answer_said(self, text: str) -> None:
        if self._user:
            self._flush_transcripts()
        self._answer.append(text)

    def turn_done(self, latency_s: float | None, interrupted: bool, cut: bool = False) -> None:
        self.last_latency_s = latency_s
        self._flush_transcripts(latency_s=latency_s, interrupted=interrupted, cut=cut)

    def notice(self, message: str) -> None:
        self._line(f"· {message}")

    def answer_cost(self, line: str) -> None:
        """What the answer just given cost (tokens, estimated price): printed under its text,
        so held while that text is still arriving."""
        self.last_cost = line
        if self._answer:
            self._pending_cost = line
        else:
            self._line(f"  {line}")

    def _flush_transcripts(
        self, *, latency_s: float | None = None, interrupted: bool = False, cut: bool = False
    ) -> None:
        if self._user:
            self._line(phrase("you", text=_join(self._user)))
            self._user.clear()
        if self._answer:
            extras = []
            if (shown := self.shown_latency(latency_s)) is not None:
                extras.append(phrase("note_answered_in", seconds=shown))
            if interrupted:
                extras.append(phrase("note_interrupted"))
            if cut:
                extras.append(phrase("note_cut"))
            text = _join(self._answer)
            if extras:
                self._line(phrase("answer_line_notes", text=text, notes=", ".join(extras)))
            else:
                self._line(phrase("answer_line", text=text))
            self._answer.clear()
        if self._pending_cost:
            self._line(f"  {self._pending_cost}")
            self._pending_cost = ""

    def _banner(self, text: str) -> None:
        self._line(text)

    def _line(self, text: str) -> None:
        self._emit(self._wrap(text))

    def _emit(self, text: str) -> None:
        """One line out; a question being typed moves below it."""
        if self._echoed is not None:
            self._out.write("\n")
        self._out.write(text + "\n")
        if self._echoed is not None:
            self._out.write(prompt() + self._echoed)
        self._out.flush()

    def _wrap(self, text: str) -> str:
        return wrap_to(text, self._width())

    def _width(self) -> int | None:
        return terminal_width(self._out) if self._tty else None


class LiveView(PlainView):
    """A status line (state, mic meter, frames, latency) redrawn in place; transcript above."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console()
        super().__init__(cast(TextIO, self._console.file))
        self._live = Live(
            self._status(), console=self._console, refresh_per_second=8, transient=True
        )
        self._t_last_draw = 0.0

    def start(self, banner: Sequence[str] = ()) -> None:
        self._live.start()
        for text in banner:
            self._line(text)  # above the status line, which holds the keys

    def stop(self) -> None:
        super().stop()
        self._live.stop()

    def key_echo(self, text: str | None, *, asked: bool = False) -> None:
        pass  # the status line shows the question being typed (`typing`)

    def _on_state(self, state: State) -> None:
        self._redraw(force=True)

    def mic_level(self, dbfs: float, speaking: bool) -> None:
        super().mic_level(dbfs, speaking)
        self._redraw()

    def frame_sent(self, nbytes: int) -> None:
        super().frame_sent(nbytes)
        self._redraw(force=True)

    def _line(self, text: str) -> None:
        self._live.console.print(Text(text))

    def _redraw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._t_last_draw > 0.1:
            self._t_last_draw = now
            self._live.update(self._status())

    def typing(self, text: str | None) -> None:
        super().typing(text)
        self._redraw(force=True)

    def _status(self) -> Text:
        filled = int(max(0.0, min(1.0, (self.level_dbfs + 60) / 60)) * 20)
        meter = "█" * filled + "·" * (20 - filled)
        shown = self.shown_latency(self.last_latency_s)
        latency = "  " + phrase("status_last_answer", seconds=shown) if shown is not None else ""
        label = state_label(self._state) if self._state else ""
        status = Text.assemble(
            (f" {label:<15}", "bold cyan"),
            (phrase("status_mic"), "dim"),
            (meter, "green" if self.speaking else "dim"),
            "  " + phrase("status_frames", count=self.frames_sent) + latency,
        )
        if self.typed_so_far is not None:
            status.append(f"\n {prompt()}{self.typed_so_far}▏", style="bold")
        if self.key_hints:
            status.append(f"\n {self.key_hints}", style="dim")
        return status


class AnswerView(PlainView):
    """For `ask` in scripts: the answer's text alone on stdout, everything else on stderr."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def turn_done(self, latency_s: float | None, interrupted: bool, cut: bool = False) -> None:
        if self._answer and not cut:  # a cut answer comes again whole
            print(_join(self._answer), file=sys.stdout, flush=True)
        self._answer.clear()
        super().turn_done(latency_s, interrupted, cut)


def _join(pieces: list[str]) -> str:
    return " ".join("".join(pieces).split())


def terminal_width(out: TextIO) -> int | None:
    """The width of the terminal `out` is, now (it may have been resized); None for a pipe or a
    file, or a terminal that does not say."""
    if not _isatty(out):
        return None
    try:
        return os.get_terminal_size(out.fileno()).columns or None
    except (OSError, ValueError):
        return None


def wrap_to(text: str, width: int | None) -> str:
    """`text` at word boundaries to `width` (None: whole); a word longer than a line, such as a
    path, is left whole; continuation lines indented two spaces more than the first."""
    if not width or len(text) <= width:
        return text
    indent = text[: len(text) - len(text.lstrip())]
    return textwrap.fill(
        text,
        width=width,
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def print_paragraph(text: str, out: TextIO | None = None) -> None:
    """A banner printed outside a session's view (the demo's last words): wrapped at word
    boundaries to the terminal's width, whole into a pipe or a file."""
    out = out or sys.stdout
    print(wrap_to(text, terminal_width(out)), file=out, flush=True)


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _cells(text: str) -> int:
    """Terminal cells `text` takes: wide (CJK) characters two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )
