"""What the stand-in accepts, how it answers and how it misbehaves.

All frozen: a config is built once by a test or the demo and read by every connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from shelfsight.standin.audio import synth_speech_pcm16
from shelfsight.standin.usage import UsageRates

ANSWER_RATE_HZ = 24_000
DEFAULT_ANSWER_TEXT = "Third shelf from the top, right end, green bag."
DEFAULT_QUESTION_TEXT = "Where are the gluten-free crackers?"
SILENT_PCM = bytes(2 * ANSWER_RATE_HZ // 50)  # 20 ms of silence: an answer that is only calls


AUTO_ID = ""  # ScriptedCall.call_id: the stand-in makes up a unique id


@dataclass(frozen=True)
class ScriptedCall:
    """A function call the stand-in makes as its answer starts (before the audio, as the
    model calls NON_BLOCKING functions and talks on). `args` is sent as given, so a test can
    send malformed ones; `call_id` AUTO_ID gets a unique id, None sends the call without one,
    any other string is used as is (repeat it for duplicate ids)."""

    name: str
    args: Any = None
    call_id: str | None = AUTO_ID


@dataclass(frozen=True)
class ScriptedAnswer:
    """One scripted exchange: the transcript of the spoken question and the spoken answer
    (24 kHz mono PCM16, exactly the bytes the client will receive), with the function calls
    made as it starts and the call ids withdrawn (`toolCallCancellation`) once it is spoken."""

    question_text: str
    answer_text: str
    answer_pcm24k: bytes
    tool_calls: tuple[ScriptedCall, ...] = ()
    cancel_calls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.answer_pcm24k or len(self.answer_pcm24k) % 2:
            raise ValueError("answer_pcm24k must be non-empty whole PCM16 samples")


def default_answers() -> tuple[ScriptedAnswer, ...]:
    """The one bundled answer: ~1.5 s of speech-like audio about the green bag."""
    pcm = synth_speech_pcm16(1.5, ANSWER_RATE_HZ)
    return (ScriptedAnswer(DEFAULT_QUESTION_TEXT, DEFAULT_ANSWER_TEXT, pcm),)


ModelHook = Callable[[str | None, bytes | None], ScriptedAnswer | None]


@dataclass(frozen=True)
class ConnectionFaults:
    """Scripted misbehaviour for one connection; times count from `setupComplete`.

    After a goAway the connection is closed when `time_left` runs out, with 1011 "Deadline
    expired before operation could complete." as the service does, unless
    `go_away_enforced=False`. `drop_after_s` cuts the TCP connection without a close frame
    (a network drop: the client sees 1006).
    """

    refuse_http_status: int | None = None  # e.g. 503: the websocket upgrade is refused
    go_away_after_s: float | None = None
    go_away_time_left_s: float = 5.0
    close_after_s: float | None = None
    close_code: int = 1011
    close_reason: str = "Internal error encountered."
    drop_after_s: float | None = None
    go_away_enforced: bool = True
    refuse_resumption: bool = False  # a setup with a handle gets 1007: the session is forgotten


@dataclass(frozen=True)
class StandInConfig:
    """What the stand-in accepts and how it answers.

    `api_keys=None` accepts any non-empty key; `models=None` accepts any model (names with or
    without the "models/" prefix). `resumption_handles=None` resumes with any handle; a set
    resumes only with those and with the handles this stand-in has issued, as the real service
    honours only its own handles (others are refused with close code 1007; pass an empty set
    for exactly that). Answers are used in order across all connections, cycling.
    `connection_faults[i]` applies to the i-th connection (0-based); later ones get
    `default_faults` (by default: none). `speed` is how many times faster than real time answer
    audio is sent (inf: no pacing). With `one_socket_per_session`, resuming a session while
    an earlier connection of it is still open is refused with 1011, as the service is reported
    to do: a client must close the old connection first. `keep_frames=False` records frames
    without their JPEG bytes (long soak runs). With `strict` (the default) what
    gemini-3.8-live refuses is refused with its close code and reason; `usage` sets the token
    rates behind the `usageMetadata` sent with each completed turn. `barge_in` is what speech
    over a streaming answer does (when the setup allows interruption): "interrupt" cuts it with
    `interrupted` (the older models); "polite_stop" (gemini-3.8-live) stops the old generation
    without a word and replies, in the same model turn, once the user stops; "polite_finish"
    lets the old generation finish (`turnComplete`) and replies after it once the user stops.
    `think_s` delays each answer's audio after its question's transcript, as a slow model would.
    """

    api_keys: frozenset[str] | None = None
    models: frozenset[str] | None = None
    answers: tuple[ScriptedAnswer, ...] = field(default_factory=default_answers)
    answer_chunk_ms: int = 40
    speed: float = 4.0
    vad_threshold_dbfs: float = -35.0
    vad_window_ms: int = 20
    vad_speech_ms: int = 100
    vad_silence_ms: int = 500  # overridden by the setup's silenceDurationMs when given
    connection_faults: tuple[ConnectionFaults, ...] = ()
    resumption_handles: frozenset[str] | None = None  # new fields go last: positional order
    default_faults: ConnectionFaults = field(default_factory=ConnectionFaults)
    one_socket_per_session: bool = True
    keep_frames: bool = True
    # Refuse what gemini-3.8-live refuses, with its close (shelfsight.standin.strict).
    strict: bool = True
    # The usage model behind each turn's usageMetadata (shelfsight.standin.usage).
    usage: UsageRates = field(default_factory=UsageRates)
    # A typed question equal to one of these texts (ignoring case) gets its answer, out of the
    # script's order (which it does not advance): typed and spoken turns may come in any order.
    typed_answers: tuple[tuple[str, ScriptedAnswer], ...] = ()

    def typed_answer(self, text: str) -> ScriptedAnswer | None:
        wanted = text.strip().casefold()
        return next((a for t, a in self.typed_answers if t.strip().casefold() == wanted), None)

    barge_in: Literal["interrupt", "polite_stop", "polite_finish"] = "interrupt"
    # Offer permessage-deflate (websockets' default). Whether Google's endpoint does is not
    # documented; a slow link is worst without it, so its tests turn it off.
    compression: bool = True
    think_s: float = 0.0  # the model's thinking time: from the question's transcript to its answer
    # Websocket pings: "prompt" answers at once (websockets' default), "late" after
    # `pong_delay_s`, "never" not at all. No Google document promises a pong time; the real
    # service's pongs have been reported 8-30 s late, so a client must not depend on them.
    pongs: Literal["prompt", "late", "never"] = "prompt"
    pong_delay_s: float = 20.0
    # Realtime audio at one of these rates (Hz) is refused with 1007, as a service that does
    # not take that rate would; e.g. frozenset({8000}) tests the slow link's fallback to 16 kHz.
    refuse_audio_rates_hz: frozenset[int] = frozenset()
    # A model in place of the script (benchmarks): called for every user turn with the turn's
    # text (typed; None for speech) and the last picture received before it ended (JPEG bytes;
    # None before any), on a worker thread, so it may take as long as a real model thinks.
    # Its answer (with its function calls) is streamed as a scripted one; None: the script's.
    model: ModelHook | None = None

    def faults_for(self, index: int) -> ConnectionFaults:
        in_range = index < len(self.connection_faults)
        return self.connection_faults[index] if in_range else self.default_faults
