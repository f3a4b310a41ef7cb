"""What the stand-in saw and did, for tests to assert on.

Written only on the stand-in's event loop, read from any thread: every record of one stand-in
shares the `Ledger`'s lock, and every write calls `on_change` (on the loop) so
`StandIn.wait_until` can re-check its predicate instead of polling.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from shelfsight.standin.config import ScriptedAnswer
from shelfsight.standin.protocol import resumption_handle


@dataclass(frozen=True)
class ReceivedEvent:
    """One thing the client sent. kind: audio, video, text, activity_start, activity_end,
    audio_stream_end, client_content, tool_response (text: one function response's JSON),
    other. `data` is decoded (PCM or JPEG bytes)."""

    t_monotonic: float
    kind: str
    data: bytes = b""
    mime_type: str = ""
    text: str = ""


@dataclass(frozen=True)
class SentEvent:
    """One thing the stand-in sent. kind: setup_complete, input_transcription, audio,
    output_transcription, generation_complete, turn_complete (its `text`: the usageMetadata
    sent with it, as JSON), interrupted, go_away, tool_call, tool_call_cancellation,
    session_resumption_update, close, drop (TCP cut without a close frame)."""

    t_monotonic: float
    kind: str
    text: str = ""
    n_bytes: int = 0


@dataclass(frozen=True)
class TurnRecord:
    """One user turn and its answer. outcome: streaming, completed, interrupted, abandoned."""

    trigger: str  # vad, activity, text, client_content, audio_stream_end
    question_text: str
    answer_text: str
    t_start_monotonic: float
    t_end_monotonic: float | None = None
    outcome: str = "streaming"
    input_audio_s: float = 0.0  # seconds of audio this connection had received when it began


class ConnectionRecord:
    """What one connection did. Written on the stand-in's loop, readable from any thread."""

    def __init__(
        self,
        index: int,
        path: str,
        api_key_ok: bool,
        lock: threading.Lock,
        on_change: Callable[[], None],
    ) -> None:
        self.index = index
        self.path = path
        self.api_key_ok = api_key_ok  # the key itself is never kept
        self._lock = lock
        self._on_change = on_change
        self._setup: dict[str, Any] | None = None
        self._close: tuple[int | None, str | None] = (None, None)
        self._received: list[ReceivedEvent] = []
        self._sent: list[SentEvent] = []
        self._turns: list[TurnRecord] = []
        self._session_id: int | None = None
        self._violations: list[str] = []
        # Set by the server while the websocket is served: whether it is still open (not
        # closing), for the one-socket-per-session rule. Called on the loop only.
        self._ws_open: Callable[[], bool] = lambda: False

    @property
    def setup(self) -> dict[str, Any] | None:
        """The client's setup message as sent; None until it arrives (or if it never did)."""
        with self._lock:
            return self._setup

    @property
    def resumed_with(self) -> str | None:
        """The resumption handle the client's setup presented, refused or not; None when it
        asked for a fresh session (or sent no setup)."""
        return resumption_handle(self.setup)

    @property
    def session_id(self) -> int | None:
        """Which session this connection served: its own index when fresh, the issuing
        connection's session when resumed with a handle issued here; None if refused."""
        with self._lock:
            return self._session_id

    @property
    def close_code(self) -> int | None:
        with self._lock:
            return self._close[0]

    @property
    def close_reason(self) -> str | None:
        with self._lock:
            return self._close[1]

    def received(self, kind: str | None = None) -> list[ReceivedEvent]:
        with self._lock:
            return [e for e in self._received if kind is None or e.kind == kind]

    def sent(self, kind: str | None = None) -> list[SentEvent]:
        with self._lock:
            return [e for e in self._sent if kind is None or e.kind == kind]

    def turns(self) -> list[TurnRecord]:
        with self._lock:
            return list(self._turns)

    @property
    def violations(self) -> list[str]:
        """The 3.8 rules the client broke (`shelfsight.standin.strict`), in order; the
        connection was closed on the first."""
        with self._lock:
            return list(self._violations)

    def audio_bytes(self) -> bytes:
        return b"".join(e.data for e in self.received("audio"))

    def frames(self) -> list[bytes]:
        return [e.data for e in self.received("video")]

    def texts(self) -> list[str]:
        """Realtime text (`send_realtime_input(text=...)`)."""
        return [e.text for e in self.received("text")]

    def questions(self) -> list[str]:
        """Typed questions as they came: realtime text or a client-content turn's text."""
        kinds = ("text", "client_content")
        return [e.text for e in self.received() if e.kind in kinds and e.text]

    def tool_responses(self) -> list[dict[str, Any]]:
        """Every function response the client sent, as sent (id, name, response, ...)."""
        return [json.loads(e.text) for e in self.received("tool_response")]

    @property
    def turns_completed(self) -> int:
        return sum(t.outcome == "completed" for t in self.turns())

    @property
    def interruptions(self) -> int:
        return sum(t.outcome == "interrupted" for t in self.turns())

    # Writers: called only on the stand-in's event loop.
    def _set_setup(self, setup: dict[str, Any]) -> None:
        with self._lock:
            self._setup = setup
        self._on_change()

    def _set_session(self, session_id: int) -> None:
        with self._lock:
            self._session_id = session_id
        self._on_change()

    def _set_close(self, code: int | None, reason: str | None) -> None:
        with self._lock:
            self._close = (code, reason)
        self._on_change()

    def _add_violation(self, rule: str) -> None:
        with self._lock:
            self._violations.append(rule)
        self._on_change()

    def _add_received(self, event: ReceivedEvent) -> None:
        with self._lock:
            self._received.append(event)
        self._on_change()

    def _add_sent(self, event: SentEvent) -> None:
        with self._lock:
            self._sent.append(event)
        self._on_change()

    def _start_turn(self, turn: TurnRecord) -> int:
        """Records a new streaming turn; returns its number for `_end_turn`."""
        with self._lock:
            self._turns.append(turn)
            number = len(self._turns) - 1
        self._on_change()
        return number

    def _answered(self, number: int, question_text: str, answer_text: str) -> None:
        """A model's answer is known (it was asked after the turn began)."""
        with self._lock:
            turn = replace(self._turns[number], question_text=question_text)
            self._turns[number] = replace(turn, answer_text=answer_text)
        self._on_change()

    def _end_turn(self, number: int, outcome: str) -> None:
        """Records how a turn ended; the first ending wins."""
        with self._lock:
            if self._turns[number].outcome != "streaming":
                return
            ended = replace(self._turns[number], t_end_monotonic=time.monotonic(), outcome=outcome)
            self._turns[number] = ended
        self._on_change()


class Ledger:
    """One stand-in's state shared by all its connections: their records, which scripted
    answer comes next, and the resumption handles issued. One lock guards all of it."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._on_change = on_change
        self._connections: list[ConnectionRecord] = []
        self._answers_given = 0
        self._handles: list[str] = []
        self._handle_sessions: dict[str, int] = {}
        self._usage: dict[int, Any] = {}  # session id -> its standin.usage.UsageModel

    def open_connection(self, path: str, api_key_ok: bool) -> ConnectionRecord:
        with self._lock:
            index = len(self._connections)
            record = ConnectionRecord(index, path, api_key_ok, self._lock, self._on_change)
            self._connections.append(record)
        self._on_change()
        return record

    @property
    def connections(self) -> list[ConnectionRecord]:
        with self._lock:
            return list(self._connections)

    @property
    def issued_handles(self) -> list[str]:
        with self._lock:
            return list(self._handles)

    def next_answer(self, answers: Sequence[ScriptedAnswer]) -> ScriptedAnswer:
        """The next answer in script order, counted across all connections."""
        with self._lock:
            self._answers_given += 1
            return answers[(self._answers_given - 1) % len(answers)]

    def issue_handle(self, record: ConnectionRecord) -> str:
        with self._lock:
            handle = f"standin-{record.index}-{len(self._handles)}"
            self._handles.append(handle)
            session = record._session_id
            self._handle_sessions[handle] = record.index if session is None else session
            return handle

    def session_for(self, record: ConnectionRecord) -> int:
        """The session a just-accepted setup continues (see ConnectionRecord.session_id)."""
        handle = record.resumed_with
        with self._lock:
            return self._handle_sessions.get(handle or "", record.index)

    def usage_for(self, session_id: int, make: Callable[[], Any]) -> Any:
        """The session's usage model (its context outlives a connection), made on first use."""
        with self._lock:
            if session_id not in self._usage:
                self._usage[session_id] = make()
            return self._usage[session_id]

    def open_in_session(self, session_id: int, other_than: ConnectionRecord) -> bool:
        """Whether another connection of this session is still open (loop thread only)."""
        return any(
            c is not other_than and c.session_id == session_id and c._ws_open()
            for c in self.connections
        )
