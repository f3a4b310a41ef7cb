"""Output for a screen reader (VoiceOver, Orca): one plain sentence per meaningful event.

A screen reader speaks every line a terminal prints and re-reads whatever is redrawn, so this
view never redraws (no status line, no level meter, no spinner, no carriage return, no ANSI
code), never prints the same line twice in a row, and leaves out what only matters on a screen
(frame counts, latencies). Lines read as sentences: "You said: ...", "shelfsight said: ...",
"Reconnected after 2.1 s.", in the session's language (`shelfsight.core.phrases`).
Connection and camera news come from the same notices the other views show
(`shelfsight.session.status`). A line is never wrapped by shelfsight (the terminal
may soft-wrap it; the screen reader reads it whole), and a banner of several sentences is one
line per sentence. What the user types is echoed as a shell would (`PlainView.key_echo`),
so the screen reader can read it back. Loop thread only.
"""

from __future__ import annotations

import re
from typing import TextIO

from shelfsight.core.phrases import phrase
from shelfsight.session.status import State
from shelfsight.ui.view import PlainView, _join


class ScreenReaderView(PlainView):
    def __init__(self, out: TextIO | None = None) -> None:
        super().__init__(out)
        self._last_line: str | None = None
        self._ready_said = False

    def _on_state(self, state: State) -> None:
        # Reconnects are told by their notices (a planned switch of a second is not worth a
        # line); thinking and answering are told by the sound cues and the answer itself.
        if state == State.CONNECTING and not self._ready_said:
            self._line(phrase("connecting"))
        elif state == State.LISTENING and not self._ready_said:
            self._ready_said = True
            self._line(phrase("ready"))

    def user_typed(self, text: str) -> None:
        self._flush_transcripts()
        self._line(phrase("you_asked", text=text))

    def notice(self, message: str) -> None:
        self._line(_sentence(message))

    def _flush_transcripts(
        self, *, latency_s: float | None = None, interrupted: bool = False, cut: bool = False
    ) -> None:
        if self._user:
            self._line(phrase("you_said", text=_join(self._user)))
            self._user.clear()
        if self._answer:
            key = (
                "answer_said_stopped"
                if interrupted
                else "answer_said_cut"
                if cut
                else "answer_said"
            )
            self._line(phrase(key, text=_join(self._answer)))
            self._answer.clear()

    def _banner(self, text: str) -> None:
        for sentence in SENTENCE_END.split(" ".join(text.split())):
            self._line(_sentence(sentence))

    def _line(self, text: str) -> None:
        text = " ".join(text.split())  # one physical line, whatever the text held
        if text and text != self._last_line:
            self._last_line = text
            self._emit(text)


# Where one sentence ends and the next begins: ". A", "? Über", "! (", ". ¿Dónde".
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^\W\d_a-zß-ÿ]|[(\"'¿¡])")


def _sentence(message: str) -> str:
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?", ")")) else message + "."
