"""What the user sees in the terminal.

Two views with one interface: `LiveView` (rich, a status line that redraws in place above the
scrolling transcript) for a terminal, and `PlainView` (one line per event, nothing redrawn) for
pipes, logs and CI. Transcripts arrive from the server in fragments; both views print a turn's
text once it is complete, so logs hold whole sentences.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO, cast

from rich.console import Console
from rich.live import Live
from rich.text import Text

from shelfsight.session.status import State

STATE_LABELS = {
    State.CONNECTING: "connecting…",
    State.LISTENING: "listening",
    State.USER_TALKING: "you're talking",
    State.THINKING: "thinking…",
    State.ANSWERING: "answering",
    State.RECONNECTING: "reconnecting…",
}


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

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self._flush_transcripts()

    def state(self, state: State) -> None:
        if state != self._state:
            self._state = state
            self._on_state(state)

    def _on_state(self, state: State) -> None:
        quiet = (State.CONNECTING, State.RECONNECTING, State.LISTENING)
        if state in quiet and self.frames_sent == 0:
            self._line(f"[{STATE_LABELS[state]}]")

    def mic_level(self, dbfs: float, speaking: bool) -> None:
        self.level_dbfs, self.speaking = dbfs, speaking

    def frame_sent(self, nbytes: int) -> None:
        self.frames_sent += 1
        self.frame_bytes += nbytes

    def user_said(self, text: str) -> None:
        self._user.append(text)

    def user_typed(self, text: str) -> None:
        self._flush_transcripts()
        self._line(f"You (typed): {text}")

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
            self._line(f"You: {_join(self._user)}")
            self._user.clear()
        if self._answer:
            extras = []
            if latency_s is not None:
                extras.append(f"answered in {latency_s:.2f} s")
            if interrupted:
                extras.append("interrupted")
            if cut:
                extras.append("cut off by the connection")
            suffix = f"  ({', '.join(extras)})" if extras else ""
            self._line(f"shelfsight: {_join(self._answer)}{suffix}")
            self._answer.clear()
        if self._pending_cost:
            self._line(f"  {self._pending_cost}")
            self._pending_cost = ""

    def _line(self, text: str) -> None:
        print(text, file=self._out, flush=True)


class LiveView(PlainView):
    """A status line (state, mic meter, frames, latency) redrawn in place; transcript above."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console()
        super().__init__(cast(TextIO, self._console.file))
        self._live = Live(
            self._status(), console=self._console, refresh_per_second=8, transient=True
        )
        self._t_last_draw = 0.0

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        super().stop()
        self._live.stop()

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
        latency = f"  last answer {self.last_latency_s:.2f} s" if self.last_latency_s else ""
        label = STATE_LABELS[self._state] if self._state else ""
        status = Text.assemble(
            (f" {label:<15}", "bold cyan"),
            ("mic ", "dim"),
            (meter, "green" if self.speaking else "dim"),
            f"  frames {self.frames_sent}{latency}",
        )
        if self.typed_so_far is not None:
            status.append(f"\n Ask: {self.typed_so_far}▏", style="bold")
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


def make_view(
    plain: bool | None = None, *, answer_only: bool = False, screen_reader: bool = False
) -> PlainView:
    """The rich view on a terminal, plain lines otherwise (or when asked); for a screen
    reader, one plain sentence per event (see shelfsight.ui.screen_reader)."""
    if answer_only:
        return AnswerView()
    if screen_reader:
        from shelfsight.ui.screen_reader import ScreenReaderView

        return ScreenReaderView()
    if plain is None:
        plain = not sys.stdout.isatty()
    return PlainView() if plain else LiveView()


def _join(pieces: list[str]) -> str:
    return " ".join("".join(pieces).split())
