"""Turn taking: who is talking, push-to-talk activity signals, and per-turn latency.

All of it runs on the event loop thread and is driven by mic chunks, key events and server
events; it owns no I/O, so it is tested with plain calls.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

BARGE_IN_S = 0.1  # this much speech over a playing answer stops it (hands-free)
HOLD_S = 0.4  # a talk key held at least this long ends the turn on release (hold-to-talk)
# After a local barge-in, answer audio that comes after the user stopped and after this long
# without answer audio is a new generation: the reply to what the user said (gemini-3.8-live's
# polite barge-in may send it in the same model turn, with no `interrupted` before it).
NEW_REPLY_GAP_S = 0.3


@dataclass
class TurnTracker:
    """The one owner of turn state, driven by speech decisions, keys and server events."""

    answering: bool = False
    muted: bool = False  # the user stopped this answer: drop the rest of this generation
    turns_completed: int = 0
    t_last_speech: float | None = None
    speech_since_answer: bool = False
    latency_s: float | None = None
    speech_run_s: float = 0.0  # how long the user has been speaking without a pause
    t_last_answer_audio: float | None = None

    def on_mic(self, speaking: bool, t: float, chunk_s: float = 0.02) -> None:
        self.speech_run_s = self.speech_run_s + chunk_s if speaking else 0.0
        if speaking:
            self.t_last_speech = t
            self.speech_since_answer = True

    def barge_in_due(self, hold_s: float) -> bool:
        """The user has talked for `hold_s` without a pause: stop what is playing (0: never)."""
        return hold_s > 0 and self.speech_run_s >= hold_s

    def on_question_sent(self, t: float) -> None:
        """A typed question or a released talk key: the turn's latency counts from here."""
        self.t_last_speech = t
        self.speech_since_answer = True

    def on_answer_audio(self, t: float) -> bool:
        """True on a turn's first answer chunk (its latency is then in `latency_s`).

        Muted (the user talked over this generation), audio after a pause in the answer that
        began once the user had stopped is the reply to them: it is heard, never muted.
        """
        last, self.t_last_answer_audio = self.t_last_answer_audio, t
        if self.answering:
            if self.muted and self._new_generation(last, t):
                self.muted = False
            return False
        self.answering, self.muted = True, False
        self.latency_s = None if self.t_last_speech is None else max(0.0, t - self.t_last_speech)
        return True

    def _new_generation(self, t_last_audio: float | None, t: float) -> bool:
        if self.speech_run_s > 0 or t_last_audio is None:
            return False
        user_done = self.t_last_speech is None or self.t_last_speech < t - NEW_REPLY_GAP_S
        return user_done and t - t_last_audio >= NEW_REPLY_GAP_S

    def on_turn_end(self, *, interrupted: bool) -> None:
        self.answering, self.muted = False, False
        if not interrupted:
            self.turns_completed += 1
            self.speech_since_answer = False


@dataclass
class PushToTalk:
    """The talk key's state machine; says what to send, the caller sends it.

    A press starts a turn (activity_start, then ~200 ms of pre-roll audio so a word begun just
    before the key is not clipped); the next press ends it, as does releasing a key held for
    at least HOLD_S where releases are reported. After the end, `tail_s` more audio is sent
    before activity_end, so the last word is not cut.
    """

    tail_s: float = 0.3
    preroll_chunks: int = 10
    talking: bool = False
    t_pressed: float = 0.0
    t_tail_ends: float | None = None
    _preroll: collections.deque[bytes] = field(default_factory=collections.deque)

    def press(self, t: float) -> tuple[str, list[bytes]]:
        """('start', pre-roll audio) or ('end', [])."""
        if self.talking:
            self._end(t)
            return "end", []
        self.talking, self.t_pressed, self.t_tail_ends = True, t, None
        preroll, self._preroll = list(self._preroll), collections.deque()
        return "start", preroll

    def release(self, t: float) -> bool:
        """True when this release ends the turn (the key was held, not tapped)."""
        if self.talking and t - self.t_pressed >= HOLD_S:
            self._end(t)
            return True
        return False

    def mic(self, pcm: bytes, t: float) -> tuple[bool, bool]:
        """(send this chunk, then send activity_end)."""
        if self.talking:
            return True, False
        if self.t_tail_ends is not None:
            if t < self.t_tail_ends:
                return True, False
            self.t_tail_ends = None
            return False, True
        self._preroll.append(pcm)
        while len(self._preroll) > self.preroll_chunks:
            self._preroll.popleft()
        return False, False

    def _end(self, t: float) -> None:
        self.talking = False
        self.t_tail_ends = t + self.tail_s
