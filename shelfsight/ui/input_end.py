"""Standard input ended while a microphone is live: end the session once what was asked before
the end is answered, as `q` would end it.

Without a microphone the conversation ends the session itself when its input ends. With one it
runs on, since the microphone could still ask. But a script that pipes questions in and closes
its end (`printf 'where is the rice?\\n' | shelfsight run`) is done: it expects the session to
end once they are answered, not to run until Ctrl-C. A standard input that carried no question
(/dev/null, as under nohup or a service manager) was never a channel for questions: its end
changes nothing, and the microphone alone drives the session (as it always did).

`EndAfterInput` sits between the control queue and the conversation (it passes every control
on, in order) and is the view the conversation tells: from what it is told (the questions
asked, the answers ended, the state) it knows when nothing is pending any more, waits for the
speaker to play the answer out, and then passes on `Quit`. Loop thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from shelfsight.core.phrases import phrase
from shelfsight.session.status import State
from shelfsight.ui.controls import CONTROL_QUEUE_SIZE, Control, EndOfInput, Quit, TypedQuestion

if TYPE_CHECKING:  # types only: the conversation imports this package's controls
    from shelfsight.media.speaker import SpeakerSink
    from shelfsight.ui.watch import View

# While in one of these the session is busy with a question (or its answer may come again).
BUSY = frozenset(
    {State.USER_TALKING, State.THINKING, State.ANSWERING, State.CONNECTING, State.RECONNECTING}
)


class EndAfterInput:
    """A view in front of `view`, and a relay from `source` to `queue` (run `relay()`)."""

    def __init__(self, view: View, speaker: SpeakerSink, *, answer_wait_s: float) -> None:
        self._view, self._speaker, self._answer_wait_s = view, speaker, answer_wait_s
        self.queue: asyncio.Queue[Control] = asyncio.Queue(CONTROL_QUEUE_SIZE)
        self._state: State | None = None
        self._passed_on = 0  # typed questions given to the conversation
        self._asked = 0  # and those it has asked
        self._expecting = False  # something was asked or said since the last answer ended
        self._changed = asyncio.Event()

    async def relay(self, source: asyncio.Queue[Control]) -> None:
        while True:
            control = await source.get()
            if isinstance(control, TypedQuestion):
                self._passed_on += 1
            await self.queue.put(control)
            if isinstance(control, EndOfInput) and control.questions:
                await self._end()
                return

    async def _end(self) -> None:
        # Not connected yet: the link gives up on its own if the connection never comes.
        await self._wait(lambda: self._state in (None, State.CONNECTING), math.inf)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._answer_wait_s
        # The questions read before the end are asked first (the first may wait for a picture).
        await self._wait(lambda: self._asked < self._passed_on, deadline)
        if self._pending():
            self._view.notice(phrase("waiting_for_answer", why=phrase("input_ended")))
        if not await self._wait(self._pending, deadline):
            self._view.notice(phrase("no_answer_within", seconds=self._answer_wait_s))
        await self._speaker.drained()
        await self.queue.put(Quit())

    def _pending(self) -> bool:
        return self._asked < self._passed_on or self._expecting or self._state in BUSY

    async def _wait(self, waiting: Callable[[], bool], deadline: float) -> bool:
        """Wait while `waiting()`, until `deadline` (loop time); False if that came first."""
        loop = asyncio.get_running_loop()
        while waiting():
            if loop.time() >= deadline:
                return False
            self._changed.clear()
            timeout = None if deadline == math.inf else deadline - loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        return True

    # -- the view the conversation tells (all passed on) ------------------------------------------

    def state(self, state: State) -> None:
        self._view.state(state)
        self._state = state
        self._changed.set()

    def user_typed(self, text: str) -> None:
        self._view.user_typed(text)
        self._asked += 1
        self._expecting = True
        self._changed.set()

    def user_said(self, text: str) -> None:
        self._view.user_said(text)
        self._expecting = True
        self._changed.set()

    def turn_done(self, latency_s: float | None, interrupted: bool, cut: bool = False) -> None:
        self._view.turn_done(latency_s, interrupted, cut)
        if not interrupted and not cut:  # stopped or cut: a reply or the answer comes again
            self._expecting = False
        self._changed.set()

    def mic_level(self, dbfs: float, speaking: bool) -> None:
        self._view.mic_level(dbfs, speaking)

    def frame_sent(self, nbytes: int) -> None:
        self._view.frame_sent(nbytes)

    def typing(self, text: str | None) -> None:
        self._view.typing(text)

    def answer_said(self, text: str) -> None:
        self._view.answer_said(text)

    def notice(self, message: str) -> None:
        self._view.notice(message)

    def answer_cost(self, line: str) -> None:
        self._view.answer_cost(line)
