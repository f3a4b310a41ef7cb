"""The measurements of `shelfsight doctor --live`: what a finding is, the bounds, the reader of
the session's messages, and the pings, first-answer and usage findings (the spoken ones are in
`doctor_speech`).

Each returns `Finding`s and raises only what the caller (`doctor_live.guarded`) turns into
a FAIL line: a failed finding never stops the others. Every wait has its own bound (`Bounds`),
so a server that never answers or never pongs still ends the probe within a minute. One
event loop; the main session's messages are read by `Inbox` alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from statistics import median
from typing import Any, Literal

from google.genai import errors, types
from websockets.exceptions import ConnectionClosed

Status = Literal["ok", "note", "FAIL", "skip"]
# The bundled picture and question of the first-answer finding (an eval case: a known answer).
PICTURE = ("eval", "suites", "shelf", "pictures", "bakery.jpg")
QUESTION = "Where are the gluten-free crackers?"
LATE_PONG_S = 1.0  # a pong slower than this is reported late


@dataclass(frozen=True)
class Finding:
    """One line of the report; `meaning` (after "->") says what it means for a run;
    `values` are the measured numbers, saved by --json."""

    name: str
    status: Status
    detail: str
    meaning: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        text = f"{self.status:<5} {self.name:<12} {self.detail}"
        return f"{text} -> {self.meaning}" if self.meaning else text

    def as_json(self) -> dict[str, Any]:
        said = {"name": self.name, "status": self.status, "detail": self.detail}
        return {**said, "meaning": self.meaning, **self.values}


@dataclass(frozen=True)
class Bounds:
    """How long each finding may take, in seconds. Worst case, with the 1 s margins of
    `doctor_live.guarded` (a server that accepts the setup, then never answers, pongs or
    closes): connect 10, then the first answer 11, then the talk-over (6 + ~2 talking + 3
    after + 1) alongside 8 kHz (10 + 1 + 3 + 1), then 2 closes: about 38 s. The pings (4 s of
    sending + `pong_wait_s`, at most 30, + 1) run alongside from the connect: at most 45 s."""

    connect_s: float = 10.0
    pings: int = 5
    ping_every_s: float = 1.0
    pong_wait_s: float = 20.0  # websockets' default keepalive timeout: a later pong is lost
    answer_s: float = 10.0  # the first answer: its first audio and its turn_complete
    talk_over_s: float = 6.0  # the long answer's first audio
    after_talk_s: float = 3.0  # after talking over it, for `interrupted` or the answer's end
    rate_audio_s: float = 1.0  # of 8 kHz audio sent
    rate_wait_s: float = 3.0  # after it, for a close


@dataclass(frozen=True)
class Heard:
    """What one server message carried, with when it was read (time.monotonic())."""

    t: float
    kinds: frozenset[str]  # audio, interrupted, generation_complete, turn_complete
    usage: types.UsageMetadata | None = None
    text: str = ""  # output transcription


def heard_of(t: float, msg: types.LiveServerMessage) -> Heard:
    kinds = set()
    content = msg.server_content
    text = ""
    if content is not None:
        parts = content.model_turn.parts if content.model_turn is not None else None
        if any(p.inline_data is not None and p.inline_data.data for p in parts or []):
            kinds.add("audio")
        for flag in ("interrupted", "generation_complete", "turn_complete"):
            if getattr(content, flag):
                kinds.add(flag)
        if content.output_transcription is not None:
            text = content.output_transcription.text or ""
    return Heard(t, frozenset(kinds), msg.usage_metadata, text)


class Inbox:
    """Reads every message of the probe's session as it arrives and keeps what it carried.

    Always reading matters: websockets stops reading the socket when unread messages pile
    up, and a pong behind them would then look late. Holds at most one probe's messages (a
    minute of answers, ~1500). Loop thread only.
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self.heard: list[Heard] = []
        self.closed: BaseException | None = None
        self._changed = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled or the connection ends (kept in `closed`)."""
        try:
            while True:
                async for msg in self._session.receive():
                    self.heard.append(heard_of(time.monotonic(), msg))
                    self._changed.set()
        except (errors.APIError, ConnectionClosed, OSError) as exc:
            self.closed = exc
            self._changed.set()

    def since(self, mark: int, kind: str | None = None) -> list[Heard]:
        return [h for h in self.heard[mark:] if kind is None or kind in h.kinds]

    async def wait_for(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Whether `done()` held within `timeout_s`; raises what closed the connection."""
        try:
            async with asyncio.timeout(timeout_s):
                while not done():
                    if self.closed is not None:
                        raise self.closed
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True


# ---- pings --------------------------------------------------------------------------------


async def ping_finding(ws: Any, bounds: Bounds) -> Finding:
    """`bounds.pings` websocket pings, `ping_every_s` apart, each waited for `pong_wait_s`."""
    if ws is None:
        return Finding("pings", "skip", "the SDK's websocket is not reachable (see internals)")

    async def one(index: int) -> float | None:
        await asyncio.sleep(index * bounds.ping_every_s)
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(bounds.pong_wait_s):
                await (await ws.ping())
        except TimeoutError:
            return None
        return time.monotonic() - t0

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(i)) for i in range(bounds.pings)]
    latencies = [task.result() for task in tasks]
    came = [s for s in latencies if s is not None]
    values = {"sent": bounds.pings, "pong_wait_s": bounds.pong_wait_s, "latencies_s": latencies}
    wait = f"{bounds.pong_wait_s:g} s"
    if not came:
        detail = f"no pong to any of {bounds.pings} pings within {wait} each"
        return Finding("pings", "note", detail, "liveness cannot rest on pongs", values)
    late = sum(s > LATE_PONG_S for s in came)
    detail = f"{len(came)} of {bounds.pings} pongs within {wait}: p50 {ms(median(came))}, "
    detail += f"max {ms(max(came))}"
    if late:
        detail += f"; {late} late (over {LATE_PONG_S:g} s)"
    if len(came) < bounds.pings:
        detail += f"; {bounds.pings - len(came)} none within {wait}"
    if late or len(came) < bounds.pings:
        return Finding("pings", "note", detail, "liveness cannot rest on pongs", values)
    return Finding("pings", "ok", detail, values=values)


def ms(seconds: float) -> str:
    """A duration as people read it: milliseconds under a second, else seconds."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


# ---- the first answer and its usage ---------------------------------------------------------


def bundled_picture() -> bytes:
    return resources.files("shelfsight").joinpath(*PICTURE).read_bytes()


async def answer_findings(session: Any, inbox: Inbox, bounds: Bounds) -> list[Finding]:
    """A picture and a question in one client-content turn; time to the first answer audio,
    and whether usage metadata came with the answer."""
    mark = len(inbox.heard)
    parts = [
        types.Part(inline_data=types.Blob(data=bundled_picture(), mime_type="image/jpeg")),
        types.Part(text=QUESTION),
    ]
    t0 = time.monotonic()
    await session.send_client_content(
        turns=types.Content(role="user", parts=parts), turn_complete=True
    )
    await inbox.wait_for(lambda: bool(inbox.since(mark, "turn_complete")), bounds.answer_s)
    heard = inbox.since(mark)
    audio = [h.t for h in heard if "audio" in h.kinds]
    ends = [h.t for h in heard if "turn_complete" in h.kinds]
    said = "".join(h.text for h in heard).strip()
    values = {
        "question": QUESTION,
        "picture": PICTURE[-1],
        "first_audio_s": audio[0] - t0 if audio else None,
        "turn_complete_s": ends[0] - t0 if ends else None,
        "transcript": said,
    }
    if not audio:
        detail = f"no answer audio within {bounds.answer_s:g} s of a picture and a question"
        answer = Finding("first answer", "FAIL", detail, "a run would wait in vain", values)
    else:
        detail = f"audio {audio[0] - t0:.2f} s after a picture and a question"
        detail += f", whole in {ends[0] - t0:.2f} s" if ends else ", no turn_complete"
        answer = Finding("first answer", "ok", detail + _quoted(said), values=values)
    if not audio and not ends:
        return [answer, Finding("usage", "skip", "not known: no answer came")]
    return [answer, _usage_finding(heard, bool(ends), bounds.answer_s)]


def _quoted(text: str, limit: int = 60) -> str:
    if not text:
        return ""
    return f': "{text[:limit]}…"' if len(text) > limit else f': "{text}"'


def _usage_finding(heard: list[Heard], ended: bool, bounds_s: float) -> Finding:
    usage = next((h.usage for h in reversed(heard) if h.usage is not None), None)
    if usage is None:
        by = "by its turn_complete" if ended else f"in the {bounds_s:g} s it was awaited"
        meaning = "the cost line cannot use the service's own token counts"
        return Finding("usage", "note", f"no usage metadata with the answer {by}", meaning)
    counts = {
        "prompt_tokens": usage.prompt_token_count,
        "response_tokens": usage.response_token_count,
        "total_tokens": usage.total_token_count,
    }
    detail = "came: " + ", ".join(f"{k.split('_')[0]} {v}" for k, v in counts.items())
    return Finding("usage", "ok", detail + " tokens", values=counts)


def close_of(exc: BaseException) -> tuple[int, str] | None:
    """The close code and reason behind an SDK or websockets error, if it was a close."""
    if isinstance(exc, errors.APIError):
        return exc.code, str(exc.details or exc.message or "")
    if isinstance(exc, ConnectionClosed):
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (1006, "no close frame")
    return None
