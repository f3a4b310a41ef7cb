"""What the user does besides talking: the talk key, typed questions, stop and quit.

Inputs become small frozen events on one bounded asyncio queue (overflow drops the newest key: a
user cannot usefully type faster than the loop reads). Sources:

- a terminal (`TerminalKeys`): read raw keys without a thread via `loop.add_reader`, with the
  terminal put in cbreak mode and always restored. On an empty input line, space is the talk
  key, `q` quits, Esc stops the answer and Tab starts or stops guiding; any other key starts a
  typed question (Enter sends it, Esc cancels it). Enter on an empty line opens the question
  prompt explicitly, for questions that start with `q` or a space. Ctrl-D on an empty line
  quits, as it ends a shell; so does the terminal going away (end of file, or EIO once it is
  closed). The terminal's own echo is off (cbreak), so what is typed is echoed by whoever is
  given as `echo` (the plain and screen-reader views: see `shelfsight.ui.view.PlainView`),
  as the keys arrive, not when the conversation gets to them.
- a pipe (`LineReader`): each line of standard input is a typed question (scripts, CI); its
  end is `EndOfInput`, saying how many questions it carried.
- `pynput` (`HoldToTalk`, optional): where the platform reports key releases (macOS, X11),
  holding the talk key talks for as long as it is held.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import sys
import threading
import time
from typing import Any, Protocol, TextIO

from shelfsight.core.controls import (  # noqa: F401 (made here, re-exported)
    Control,
    EndOfInput,
    GuideKey,
    Quit,
    StopAnswer,
    TalkPressed,
    TalkReleased,
    TypedQuestion,
    Typing,
)

CONTROL_QUEUE_SIZE = 256
ESC, ENTER, BACKSPACES, CTRL_D, TAB = "\x1b", ("\r", "\n"), ("\x7f", "\x08"), "\x04", "\t"
CTRL_U, CTRL_W = "\x15", "\x17"  # erase the line, erase the last word (as in a shell)


class ControlQueue:
    """The one queue every control source feeds; loop thread only (threads use `put_threadsafe`)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Control] = asyncio.Queue(CONTROL_QUEUE_SIZE)
        self._loop = asyncio.get_running_loop()

    def put(self, event: Control) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(event)

    def put_threadsafe(self, event: Control) -> None:
        """From any thread; a no-op once the loop has closed (the session is over)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self.put, event)


class KeyParser:
    """Turns raw terminal characters into controls; pure, so it is tested without a terminal."""

    def __init__(self, talk_key: str = " ", *, talk_events: bool = True) -> None:
        self.talk_key = talk_key
        self.talk_events = talk_events  # False when pynput reports the talk key instead
        self.line: str | None = None  # None: no question being typed

    def feed(self, chars: str, now: float) -> list[Control]:
        out: list[Control] = []
        i = 0
        while i < len(chars):
            c = chars[i]
            if c == ESC and chars[i + 1 : i + 2] == "[":  # arrow keys and the like: ignore
                i += 3
                continue
            out.extend(self._key(c, now))
            i += 1
        return out

    def end_of_input(self) -> list[Control]:
        """Quit; a question being typed is dropped (its prompt closes first)."""
        closing: list[Control] = [] if self.line is None else [Typing(None)]
        self.line = None
        return [*closing, Quit()]

    def _key(self, c: str, now: float) -> list[Control]:
        if self.line is None:
            if c == self.talk_key:
                return [TalkPressed(now)] if self.talk_events else []
            if c in ("q", "Q", CTRL_D):
                return [Quit()]
            if c == ESC:
                return [StopAnswer()]
            if c == TAB:
                return [GuideKey()]
            if c in ENTER:
                self.line = ""
                return [Typing("")]
            if c.isprintable():
                self.line = c
                return [Typing(c)]
            return []
        if c in ENTER:
            text, self.line = self.line.strip(), None
            return [TypedQuestion(text), Typing(None)] if text else [Typing(None)]
        if c == ESC:
            self.line = None
            return [Typing(None)]
        if c == CTRL_D and not self.line:  # on an empty line it quits, as in a shell
            return self.end_of_input()
        if c in BACKSPACES:
            self.line = self.line[:-1]
        elif c == CTRL_U:
            self.line = ""
        elif c == CTRL_W:
            self.line = self.line.rstrip()
            self.line = self.line[: len(self.line) - len(self.line.split(" ")[-1])]
        elif c.isprintable():
            self.line += c
        return [Typing(self.line)]


class KeyEcho(Protocol):
    """Shows the question being typed as it is typed (loop thread)."""

    def key_echo(self, text: str | None, *, asked: bool = False) -> None:
        """`text`: the line so far; None: the prompt closed, the question `asked` or not."""


class TerminalKeys:
    """Raw keys from a terminal on standard input; `close()` restores the terminal.

    `fd` is standard input unless given (tests pass one end of a pseudo-terminal).
    """

    def __init__(
        self,
        controls: ControlQueue,
        talk_key: str = " ",
        *,
        talk_events: bool = True,
        echo: KeyEcho | None = None,
        fd: int | None = None,
    ) -> None:
        import termios
        import tty

        self._fd = sys.stdin.fileno() if fd is None else fd
        self._saved = termios.tcgetattr(self._fd)
        self._parser = KeyParser(talk_key, talk_events=talk_events)
        self._controls = controls
        self._echo = echo
        # A character split across two reads is put together, not dropped.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        self._reading = True
        tty.setcbreak(self._fd)
        asyncio.get_running_loop().add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            raw = os.read(self._fd, 64)
        except OSError:  # EIO: the terminal was closed
            raw = b""
        if raw:
            events = self._parser.feed(self._decoder.decode(raw), time.monotonic())
        else:  # end of file: nobody is there to type any more
            self._stop_reading()
            events = self._parser.end_of_input()
        asked = False
        for event in events:
            self._controls.put(event)
            if self._echo is not None and isinstance(event, Typing):
                self._echo.key_echo(event.text, asked=asked)
            asked = isinstance(event, TypedQuestion)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)

    def close(self) -> None:
        import termios

        self._stop_reading()
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)


class LineReader:
    """Typed questions from a pipe, one per line, read on a daemon thread (pipes can block)."""

    def __init__(self, controls: ControlQueue, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdin
        self._controls = controls
        self._thread = threading.Thread(target=self._run, name="stdin-lines", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        questions = 0
        with contextlib.suppress(OSError, ValueError):
            for line in self._stream:
                if line.strip():
                    questions += 1
                    self._controls.put_threadsafe(TypedQuestion(line.strip()))
        self._controls.put_threadsafe(EndOfInput(questions))

    def close(self) -> None:
        pass  # a daemon thread blocked on a pipe ends with the process


class HoldToTalk:
    """Key press and release from pynput, where the platform reports releases (optional)."""

    def __init__(self, controls: ControlQueue, talk_key: str = " ") -> None:
        from pynput import keyboard  # optional extra: pip install 'shelfsight[hotkey]'

        self._keyboard = keyboard
        self._talk = keyboard.Key.space if talk_key == " " else keyboard.KeyCode.from_char(talk_key)
        self._down = False
        self._controls = controls
        self._listener = keyboard.Listener(on_press=self._press, on_release=self._release)
        self._listener.start()

    def _press(self, key: Any) -> None:
        if key == self._talk and not self._down:  # auto-repeat sends many presses
            self._down = True
            self._controls.put_threadsafe(TalkPressed(time.monotonic()))

    def _release(self, key: Any) -> None:
        if key == self._talk:
            self._down = False
            self._controls.put_threadsafe(TalkReleased(time.monotonic()))

    def close(self) -> None:
        self._listener.stop()


def pynput_usable() -> bool:
    """pynput reports key releases on macOS and on X11 (it needs a display there)."""
    import importlib.util

    if importlib.util.find_spec("pynput") is None:
        return False
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY"))


def open_controls(
    controls: ControlQueue, *, talk_key: str, hold_to_talk: bool, echo: KeyEcho | None = None
) -> list[TerminalKeys | LineReader | HoldToTalk]:
    """The sources that fit this standard input; a terminal gets keys (what is typed shown by
    `echo`), a pipe gets lines."""
    sources: list[TerminalKeys | LineReader | HoldToTalk] = []
    if sys.stdin is None or sys.stdin.closed:
        return sources
    if not sys.stdin.isatty():
        sources.append(LineReader(controls))
        return sources
    if hold_to_talk:
        try:
            sources.append(HoldToTalk(controls, talk_key))
        except Exception:  # noqa: BLE001 - no pynput, no display, no permission: use toggle
            hold_to_talk = False
    # With hold-to-talk, pynput reports the talk key; the terminal still reads the rest.
    sources.append(TerminalKeys(controls, talk_key, talk_events=not hold_to_talk, echo=echo))
    return sources
