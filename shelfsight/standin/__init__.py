"""A local stand-in for the Gemini Live `BidiGenerateContent` websocket endpoint.

The real google-genai client talks to it over real TLS on loopback, so tests, the offline demo
and replays exercise the same connection code as a live run. It speaks the wire format the SDK
sends (checked against google-genai 3.6): a `setup` message, then `realtime_input` /
`client_content` messages; it answers with scripted speech in camelCase `serverContent`
messages and fails the way the real service does (close codes 1007, 1008, 1011): scripted per
connection (`ConnectionFaults`: goAway then its deadline, closes, TCP drops, refused upgrades,
forgotten sessions) or on demand (`close_all`, `drop_all`).

Threads: the server runs on one asyncio loop (the caller's, or its own thread via
`StandIn.start_in_thread`); the recordings it keeps are guarded by a lock so tests may read
them from any thread. Nothing here reads or prints an API key: only whether it was accepted.

Modules: `config` (what it accepts and answers), `records` (what it saw, thread-safe),
`audio` (energy VAD, synthetic speech), `protocol` (wire-format details), `handshake` (the
setup message and its refusals), `session` (one connection's turn taking), `server` (the TLS
server, `StandIn`, `StandInThread`).
"""

from shelfsight.standin.audio import synth_speech_pcm16
from shelfsight.standin.config import (
    ANSWER_RATE_HZ,
    AUTO_ID,
    DEFAULT_ANSWER_TEXT,
    DEFAULT_QUESTION_TEXT,
    SILENT_PCM,
    ConnectionFaults,
    ModelHook,
    ScriptedAnswer,
    ScriptedCall,
    StandInConfig,
    default_answers,
)
from shelfsight.standin.records import ConnectionRecord, ReceivedEvent, SentEvent, TurnRecord
from shelfsight.standin.server import StandIn, StandInThread, client_env

__all__ = [
    "ANSWER_RATE_HZ",
    "AUTO_ID",
    "DEFAULT_ANSWER_TEXT",
    "DEFAULT_QUESTION_TEXT",
    "SILENT_PCM",
    "ConnectionFaults",
    "ModelHook",
    "ConnectionRecord",
    "ReceivedEvent",
    "ScriptedAnswer",
    "ScriptedCall",
    "SentEvent",
    "StandIn",
    "StandInConfig",
    "StandInThread",
    "TurnRecord",
    "client_env",
    "default_answers",
    "synth_speech_pcm16",
]
