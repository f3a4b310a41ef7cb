"""The spoken findings of `shelfsight doctor --live`: talking over an answer, 8 kHz audio.

Speech is the bundled question (assets/question.wav) sent as a microphone would: 20 ms
chunks paced at real time. One event loop; the main session's messages are read by
`doctor_findings.Inbox` alone.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from typing import Any

import numpy as np
import soxr
from google.genai import errors, types
from websockets.exceptions import ConnectionClosed

from shelfsight.doctor_findings import Bounds, Finding, Heard, Inbox, close_of
from shelfsight.live.slow import SLOW_RATE_HZ
from shelfsight.media.pcm import MIC_CHUNK_BYTES, MIC_RATE_HZ, rms_dbfs
from shelfsight.media.wav import load_mic_pcm

# Asked after the first answer, for an answer long enough to be talked over.
LONG_QUESTION = "Name every product you can see on these shelves, one by one, top shelf first."
STOP_GAP_S = 1.0  # no answer audio this long while talked over, with no end message: stopped
RATE_NAME = f"{SLOW_RATE_HZ // 1000} kHz audio"  # the finding on the slow link's audio rate
SPEECH_DBFS = -50.0  # the talk-over speech starts at the first 20 ms louder than this


# ---- talked over ----------------------------------------------------------------------------


def question_speech() -> bytes:
    """The bundled spoken question (16 kHz PCM16) from its first loud 20 ms: talk at once."""
    packaged = resources.files("shelfsight") / "assets" / "question.wav"
    with resources.as_file(packaged) as path:
        pcm = load_mic_pcm(path)
    starts = range(0, len(pcm), MIC_CHUNK_BYTES)
    onset = next((i for i in starts if rms_dbfs(pcm[i : i + MIC_CHUNK_BYTES]) > SPEECH_DBFS), 0)
    return pcm[onset:]


async def talk(session: Any, pcm: bytes, rate_hz: int, manual_activity: bool) -> None:
    """Send `pcm` as realtime audio in 20 ms chunks paced at real time, as a microphone
    would; with `manual_activity` (push-to-talk setups) between activity markers."""
    chunk = rate_hz * 2 // 50
    if manual_activity:
        await session.send_realtime_input(activity_start=types.ActivityStart())
    start = time.monotonic()
    for i, at in enumerate(range(0, len(pcm), chunk)):
        blob = types.Blob(data=pcm[at : at + chunk], mime_type=f"audio/pcm;rate={rate_hz}")
        await session.send_realtime_input(audio=blob)
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
    if manual_activity:
        await session.send_realtime_input(activity_end=types.ActivityEnd())
    else:
        await session.send_realtime_input(audio_stream_end=True)


async def talk_over_finding(
    session: Any, inbox: Inbox, bounds: Bounds, manual_activity: bool
) -> Finding:
    """Ask for a long answer, talk over it as soon as it starts, and see what the server does:
    `interrupted`, the answer stopping without it (polite barge-in), or the answer going on."""
    mark = len(inbox.heard)
    await session.send_client_content(
        turns=types.Content(role="user", parts=[types.Part(text=LONG_QUESTION)]),
        turn_complete=True,
    )
    if not await inbox.wait_for(lambda: bool(inbox.since(mark, "audio")), bounds.talk_over_s):
        detail = f"no answer audio within {bounds.talk_over_s:g} s to talk over"
        return Finding("talked over", "skip", detail)
    speech = question_speech()
    t_talk = time.monotonic()
    await talk(session, speech, MIC_RATE_HZ, manual_activity)
    t_end = time.monotonic()

    def decided() -> bool:
        return barge_in(inbox.since(mark), t_talk, t_end, time.monotonic())[0] != "streaming"

    await inbox.wait_for(decided, bounds.after_talk_s)
    outcome, at_s = barge_in(inbox.since(mark), t_talk, t_end, time.monotonic())
    values = {"outcome": outcome, "at_s": at_s, "talk_s": round(t_end - t_talk, 2)}
    return _talk_over_line(outcome, at_s, t_end - t_talk, values)


def barge_in(
    heard: list[Heard], t_talk: float, t_end: float, now: float
) -> tuple[str, float | None]:
    """What talking from `t_talk` to `t_end` over a streaming answer did, and when (seconds
    after `t_talk`): interrupted, stopped (no audio for STOP_GAP_S during the talk, no end
    message), finished (its end came while the audio still flowed), ended_before (it ended
    before the talk began) or streaming (none of these yet)."""
    last_audio = t_talk
    for h in heard:
        if h.t < t_talk:
            if h.kinds & {"generation_complete", "turn_complete"}:
                return "ended_before", None
            continue
        gap = h.t - last_audio >= STOP_GAP_S and last_audio < t_end
        if "interrupted" in h.kinds:
            return "interrupted", h.t - t_talk
        if gap and h.kinds & {"audio", "generation_complete", "turn_complete"}:
            return "stopped", last_audio - t_talk
        if h.kinds & {"generation_complete", "turn_complete"}:
            return "finished", h.t - t_talk
        if "audio" in h.kinds:
            last_audio = h.t
    if now - last_audio >= STOP_GAP_S and last_audio < t_end:
        return "stopped", last_audio - t_talk
    return "streaming", None


def _talk_over_line(
    outcome: str, at_s: float | None, talk_s: float, values: dict[str, Any]
) -> Finding:
    spoke = f"{talk_s:.1f} s of speech over the answer"
    if outcome == "interrupted":
        detail = f"`interrupted` came {at_s:.2f} s into {spoke}"
        return Finding("talked over", "ok", detail, values=values)
    if outcome == "stopped":
        detail = f"the answer stopped {at_s:.2f} s into {spoke}, with no `interrupted`"
        meaning = "polite barge-in: the client must stop playback itself"
        return Finding("talked over", "ok", detail, meaning, values)
    if outcome == "finished":
        detail = f"the answer ran to its end ({at_s:.2f} s into {spoke}), no `interrupted`"
        meaning = "the server did not stop for speech: the client must"
        return Finding("talked over", "note", detail, meaning, values)
    if outcome == "ended_before":
        detail = "the answer had ended before the talking began: nothing to tell"
        return Finding("talked over", "skip", detail, values=values)
    detail = f"the answer kept streaming through {spoke}, no `interrupted`"
    return Finding("talked over", "note", detail, "the client must stop playback itself", values)


# ---- 8 kHz audio ----------------------------------------------------------------------------


def speech_at(rate_hz: int, seconds: float) -> bytes:
    """`seconds` of the bundled question, resampled to `rate_hz` (PCM16)."""
    pcm16k = np.frombuffer(question_speech(), "<i2")[: int(seconds * MIC_RATE_HZ)]
    out = soxr.resample(pcm16k.astype(np.float32) / 32768, MIC_RATE_HZ, rate_hz)
    return (np.clip(out, -1, 1) * 32767).astype("<i2").tobytes()


async def rate_finding(session: Any, bounds: Bounds, manual_activity: bool) -> Finding:
    """Send `rate_audio_s` of 8 kHz speech on a connection of its own (it may be closed for
    it) and wait `rate_wait_s` for a close."""
    inbox = Inbox(session)
    reader = asyncio.create_task(inbox.run())
    values: dict[str, Any] = {"rate_hz": SLOW_RATE_HZ, "sent_s": bounds.rate_audio_s}
    try:
        speech = speech_at(SLOW_RATE_HZ, bounds.rate_audio_s)
        await talk(session, speech, SLOW_RATE_HZ, manual_activity)
        await inbox.wait_for(lambda: False, bounds.rate_wait_s)
    except (errors.APIError, ConnectionClosed) as exc:
        inbox.closed = inbox.closed or exc
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    closed = close_of(inbox.closed) if inbox.closed is not None else None
    if closed is None:
        detail = f"accepted: {bounds.rate_audio_s:g} s sent, still open {bounds.rate_wait_s:g} s on"
        return Finding(RATE_NAME, "ok", detail, values={**values, "accepted": True})
    code, reason = closed
    values.update(close_code=code, close_reason=reason[:200])
    detail = f"the connection was closed with {code} ({reason[:80]})"
    if code != 1007:  # not "invalid argument": something else went wrong meanwhile
        return Finding(RATE_NAME, "FAIL", detail + " while it was sent", values=values)
    meaning = "a slow link falls back to 16 kHz"
    return Finding(RATE_NAME, "note", f"refused: {detail}", meaning, {**values, "accepted": False})
