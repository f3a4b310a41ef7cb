"""One connection after its setup: input recording, turn taking and streamed answers.

A user turn ends on VAD silence, `activityEnd`, typed text, a complete `clientContent` turn or
`audioStreamEnd`. New speech or a new turn cuts a streaming answer short (`interrupted`), unless
the setup asked for NO_INTERRUPTION; then answers queue behind each other, as on the service.
An answer may start with scripted function calls (`toolCall`); the client's function responses
are recorded. Everything here runs on the stand-in's loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from shelfsight.standin.audio import EnergyVad
from shelfsight.standin.config import ANSWER_RATE_HZ, AUTO_ID, ScriptedAnswer, StandInConfig
from shelfsight.standin.handshake import accept_setup, close_connection, drop_connection
from shelfsight.standin.protocol import (
    DEADLINE_REASON,
    SessionOptions,
    decode_b64,
    pick,
    rate_from_mime,
)
from shelfsight.standin.records import (
    ConnectionRecord,
    Ledger,
    ReceivedEvent,
    SentEvent,
    TurnRecord,
)
from shelfsight.standin.strict import content_violation, realtime_violation
from shelfsight.standin.usage import UsageModel


async def serve_connection(
    ws: ServerConnection, record: ConnectionRecord, ledger: Ledger, config: StandInConfig
) -> None:
    """Serves one upgraded websocket until either side closes it. Raises ConnectionClosed when
    the client leaves while something is being sent; the caller records the close."""
    options = await accept_setup(ws, record, ledger, config)
    if options is not None:
        await _Session(ws, record, ledger, config, options).run()


async def _cancel_children(*tasks: asyncio.Task[None] | None) -> None:
    """Cancels child tasks, waits for all of them, then re-raises the first real failure."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    if live:
        await asyncio.wait(live)
    for task in live:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _as_step(action: Callable[[], None]) -> None:
    action()


class _Session:
    """One accepted connection after `setupComplete`. Owns the websocket until `run` returns;
    every message it sends is recorded as it goes out, so tests see the client's order."""

    def __init__(
        self,
        ws: ServerConnection,
        record: ConnectionRecord,
        ledger: Ledger,
        config: StandInConfig,
        options: SessionOptions,
    ) -> None:
        self._ws, self._record, self._ledger = ws, record, ledger
        self._config, self._options = config, options
        self._vad: EnergyVad | None = None  # made on the first audio, remade if its rate changes
        self._activity_open = False
        self._answer_task: asyncio.Task[None] | None = None
        self._audio_received_s = 0.0
        self._closing = False  # answers cancelled from now on were abandoned, not interrupted
        session_id = record.session_id if record.session_id is not None else record.index
        make_usage = partial(UsageModel, config.usage, record.setup or {})
        self._usage: UsageModel = ledger.usage_for(session_id, make_usage)
        self._calls_made = 0  # for unique function call ids
        self._last_picture: bytes | None = None  # what a model answers about (config.model)

    async def run(self) -> None:
        await self._send({"setupComplete": {}}, "setup_complete")
        faults = asyncio.create_task(self._run_faults())
        try:
            await self._read_loop()  # ends when either side closes, a scripted fault included
        finally:
            self._closing = True
            await _cancel_children(faults, self._answer_task)

    async def _read_loop(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                t = time.monotonic()
                realtime = pick(message, "realtimeInput")
                content = pick(message, "clientContent")
                tool_response = pick(message, "toolResponse")
                if await self._refused(realtime, content):
                    return
                if realtime is not None:
                    await self._on_realtime_input(realtime, t)
                elif content is not None:
                    await self._on_client_content(content, t)
                elif tool_response is not None:
                    self._on_tool_response(tool_response, t)
                else:
                    self._record._add_received(ReceivedEvent(t, "other", text=str(raw)[:200]))
        except ConnectionClosed:
            return

    async def _refused(self, realtime: Any, content: Any) -> bool:
        """Closes the connection as gemini-3.8-live does on a message it refuses (strict)."""
        if not self._config.strict:
            return False
        violation = None
        if isinstance(realtime, Mapping):
            violation = realtime_violation(
                realtime, self._options.manual_activity, self._config.refuse_audio_rates_hz
            )
        elif isinstance(content, Mapping):
            violation = content_violation(content)
        if violation is None:
            return False
        self._record._add_violation(violation.rule)
        await close_connection(self._ws, self._record, violation.code, violation.reason)
        return True

    async def _on_realtime_input(self, realtime: Mapping[str, Any], t: float) -> None:
        for blob in pick(realtime, "mediaChunks") or []:
            await self._on_blob(blob, t)
        for key in ("audio", "video"):
            if realtime.get(key) is not None:
                await self._on_blob(realtime[key], t)
        if (text := realtime.get("text")) is not None:
            self._record._add_received(ReceivedEvent(t, "text", text=text))
            self._usage.read_text(text)
            await self._user_turn_ended("text", text)
        if pick(realtime, "activityStart") is not None:
            self._record._add_received(ReceivedEvent(t, "activity_start"))
            self._activity_open = True
            await self._user_started_speaking()
        if pick(realtime, "activityEnd") is not None:
            self._record._add_received(ReceivedEvent(t, "activity_end"))
            if self._activity_open:
                self._activity_open = False
                await self._user_turn_ended("activity", None)
        if pick(realtime, "audioStreamEnd"):
            self._record._add_received(ReceivedEvent(t, "audio_stream_end"))
            if self._vad is not None and self._vad.force_end():
                await self._user_turn_ended("audio_stream_end", None)

    async def _on_blob(self, blob: Mapping[str, Any], t: float) -> None:
        mime_type = str(pick(blob, "mimeType") or "")
        data = decode_b64(str(blob.get("data", "")))
        media = mime_type.split("/")[0]
        kind = {"audio": "audio", "image": "video", "video": "video"}.get(media, "other")
        kept = data if kind != "video" or self._config.keep_frames else b""
        self._record._add_received(ReceivedEvent(t, kind, data=kept, mime_type=mime_type))
        if kind == "video":
            self._usage.saw_frame()
            self._last_picture = data
        if kind != "audio":
            return
        rate_hz = rate_from_mime(mime_type)
        self._audio_received_s += len(data) / 2 / rate_hz
        self._usage.heard_audio(len(data) / 2 / rate_hz)
        if self._options.manual_activity:
            return
        if self._vad is None or self._vad.rate_hz != rate_hz:
            config = self._config
            self._vad = EnergyVad(
                rate_hz,
                threshold_dbfs=config.vad_threshold_dbfs,
                window_ms=config.vad_window_ms,
                speech_ms=config.vad_speech_ms,
                silence_ms=self._options.silence_ms,
            )
        for transition in self._vad.feed(data):
            if transition == "start":
                await self._user_started_speaking()
            else:
                await self._user_turn_ended("vad", None)

    async def _on_client_content(self, content: Mapping[str, Any], t: float) -> None:
        turns = content.get("turns") or []
        parts = [p for turn in turns if turn.get("role", "user") == "user" for p in turn["parts"]]
        for part in parts:  # an inline picture reaches the model as a frame does
            if (blob := pick(part, "inlineData")) is not None:
                data = decode_b64(str(blob.get("data", "")))
                kept = data if self._config.keep_frames else b""
                mime_type = str(pick(blob, "mimeType") or "")
                event = ReceivedEvent(t, "video", kept, mime_type, text="client_content")
                self._record._add_received(event)
                self._usage.saw_image()
                self._last_picture = data
        text = " ".join(str(p["text"]) for p in parts if "text" in p)
        self._record._add_received(ReceivedEvent(t, "client_content", text=text))
        self._usage.read_text(text)
        if pick(content, "turnComplete"):
            await self._user_turn_ended("client_content", text)

    def _on_tool_response(self, tool_response: Mapping[str, Any], t: float) -> None:
        """Recorded only: the script does not speak about function results."""
        for response in pick(tool_response, "functionResponses") or []:
            text = json.dumps(response)
            self._record._add_received(ReceivedEvent(t, "tool_response", text=text))

    async def _send_tool_calls(self, answer: ScriptedAnswer) -> None:
        if not answer.tool_calls:
            return
        calls = []
        for call in answer.tool_calls:
            sent: dict[str, Any] = {"name": call.name}
            if call.args is not None:
                sent["args"] = call.args
            if call.call_id == AUTO_ID:
                self._calls_made += 1
                sent["id"] = f"standin-call-{self._record.index}-{self._calls_made}"
            elif call.call_id is not None:
                sent["id"] = call.call_id
            calls.append(sent)
        message = {"toolCall": {"functionCalls": calls}}
        await self._send(message, "tool_call", json.dumps(calls))

    async def _user_started_speaking(self) -> None:
        await self._barge_in()

    async def _barge_in(self) -> None:
        """The user spoke over an answer: what the configured model does (see StandInConfig)."""
        if not self._options.barge_in or self._config.barge_in == "polite_finish":
            return
        await self._interrupt(say_so=self._config.barge_in == "interrupt")

    async def _user_turn_ended(self, trigger: str, typed_text: str | None) -> None:
        """Starts the next answer (the model's, when there is one, is asked in `_answer`); a
        typed question is recorded as typed."""
        await self._barge_in()
        answer = None if self._config.model is not None else self._scripted(typed_text)
        scripted_question = answer.question_text if answer is not None else ""
        question = scripted_question if typed_text is None else typed_text
        answer_text = answer.answer_text if answer is not None else ""
        turn = TurnRecord(trigger, question, answer_text, time.monotonic())
        number = self._record._start_turn(replace(turn, input_audio_s=self._audio_received_s))
        previous = self._answer_task  # queue behind it if still streaming (NO_INTERRUPTION)
        previous = previous if previous is not None and not previous.done() else None
        asked = (typed_text, self._last_picture)
        self._answer_task = asyncio.create_task(
            self._answer(number, answer or asked, spoken=typed_text is None, after=previous)
        )

    def _scripted(self, typed_text: str | None) -> ScriptedAnswer:
        typed = self._config.typed_answer(typed_text) if typed_text is not None else None
        return typed or self._ledger.next_answer(self._config.answers)

    async def _ask_model(
        self, number: int, typed_text: str | None, picture: bytes | None
    ) -> ScriptedAnswer:
        """The configured model's answer to this turn (on a worker thread), else the script's."""
        assert self._config.model is not None
        answer = await asyncio.to_thread(self._config.model, typed_text, picture)
        answer = answer or self._scripted(typed_text)
        question = answer.question_text if typed_text is None else typed_text
        self._record._answered(number, question, answer.answer_text)
        return answer

    async def _interrupt(self, say_so: bool = True) -> None:
        """Cuts the streaming answer; with `say_so`, tells the client with `interrupted`."""
        task = self._answer_task
        if task is None or task.done():
            return
        await _cancel_children(task)
        if say_so:
            await self._send({"serverContent": {"interrupted": True}}, "interrupted")

    async def _answer(
        self,
        number: int,
        answer: ScriptedAnswer | tuple[str | None, bytes | None],
        spoken: bool,
        after: asyncio.Task[None] | None,
    ) -> None:
        """Streams one answer (a scripted one, or the model's to (typed text, picture));
        records how the turn ended. Cancelled on barge-in."""
        try:
            if after is not None:
                await after
            if not isinstance(answer, ScriptedAnswer):
                answer = await self._ask_model(number, *answer)
            if spoken and self._options.input_transcription:
                message = {"serverContent": {"inputTranscription": {"text": answer.question_text}}}
                await self._send(message, "input_transcription", answer.question_text)
            await self._send_tool_calls(answer)
            if self._config.think_s:
                await asyncio.sleep(self._config.think_s)
            await self._stream_audio(answer)
            if answer.cancel_calls:
                cancel = {"toolCallCancellation": {"ids": list(answer.cancel_calls)}}
                await self._send(cancel, "tool_call_cancellation", " ".join(answer.cancel_calls))
            await self._send({"serverContent": {"generationComplete": True}}, "generation_complete")
            usage = self._usage.bill(len(answer.answer_pcm24k) / 2 / ANSWER_RATE_HZ)
            done = {"serverContent": {"turnComplete": True}, "usageMetadata": usage}
            await self._send(done, "turn_complete", json.dumps(usage))
            self._record._end_turn(number, "completed")
            if self._options.resumption:
                handle = self._ledger.issue_handle(self._record)
                update = {"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}}
                await self._send(update, "session_resumption_update", handle)
        except asyncio.CancelledError:
            self._record._end_turn(number, "abandoned" if self._closing else "interrupted")
            raise
        except ConnectionClosed:
            self._record._end_turn(number, "abandoned")

    async def _stream_audio(self, answer: ScriptedAnswer) -> None:
        """Sends answer audio in chunks `speed` times faster than real time, with transcript
        pieces (words with their leading spaces) spread evenly across the chunks."""
        chunk_ms = self._config.answer_chunk_ms
        chunk_bytes = 2 * ANSWER_RATE_HZ * chunk_ms // 1000
        pcm = answer.answer_pcm24k
        chunks = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
        pieces_before: dict[int, list[str]] = {}  # chunk index -> transcript pieces sent before it
        if self._options.output_transcription:
            pieces = re.findall(r"\s*\S+", answer.answer_text)
            for k, piece in enumerate(pieces):
                pieces_before.setdefault(k * len(chunks) // len(pieces), []).append(piece)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, chunk in enumerate(chunks):
            for piece in pieces_before.get(i, []):
                transcript = {"serverContent": {"outputTranscription": {"text": piece}}}
                await self._send(transcript, "output_transcription", piece)
            data = base64.b64encode(chunk).decode()
            inline = {"inlineData": {"mimeType": f"audio/pcm;rate={ANSWER_RATE_HZ}", "data": data}}
            message = {"serverContent": {"modelTurn": {"parts": [inline]}}}
            await self._send(message, "audio", n_bytes=len(chunk))
            due = start + (i + 1) * chunk_ms / 1000 / self._config.speed
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def _run_faults(self) -> None:
        """Plays this connection's scripted goAway, close and drop at their times. The reader
        ends on the close (or drop), which ends the session."""
        faults = self._config.faults_for(self._record.index)
        steps: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        if faults.go_away_after_s is not None:
            time_left = f"{faults.go_away_time_left_s:g}s"
            go_away = partial(self._send, {"goAway": {"timeLeft": time_left}}, "go_away", time_left)
            steps.append((faults.go_away_after_s, go_away))
            if faults.go_away_enforced:
                expire = partial(close_connection, self._ws, self._record, 1011, DEADLINE_REASON)
                steps.append((faults.go_away_after_s + faults.go_away_time_left_s, expire))
        if faults.close_after_s is not None:
            close = partial(
                close_connection, self._ws, self._record, faults.close_code, faults.close_reason
            )
            steps.append((faults.close_after_s, close))
        if faults.drop_after_s is not None:
            drop = partial(_as_step, partial(drop_connection, self._ws, self._record))
            steps.append((faults.drop_after_s, drop))
        loop = asyncio.get_running_loop()
        start = loop.time()
        for at_s, step in sorted(steps, key=lambda s: s[0]):
            await asyncio.sleep(max(0.0, start + at_s - loop.time()))
            await step()

    async def _send(
        self, message: dict[str, Any], kind: str, text: str = "", n_bytes: int = 0
    ) -> None:
        """Sends one server message as a binary JSON frame, as the real service does."""
        await self._ws.send(json.dumps(message).encode())
        self._record._add_sent(SentEvent(time.monotonic(), kind, text=text, n_bytes=n_bytes))
