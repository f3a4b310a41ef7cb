"""Talking to the stand-in with the bare SDK (no shelfsight link): a setup, speech, and what
comes back, turn by turn. For the stand-in's own tests and the Live API rules it enforces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
from google import genai
from google.genai import types

from shelfsight.core.pcm import MIC_CHUNK_BYTES, MIC_MIME
from shelfsight.standin import StandIn

CHUNK_BYTES = MIC_CHUNK_BYTES


def tone(duration_s: float, level_dbfs: float = -20.0) -> bytes:
    """A 300 Hz sine at 16 kHz with RMS `level_dbfs`: 'speech' for an energy detector."""
    t = np.arange(int(duration_s * 16_000)) / 16_000
    peak = 32768 * 10 ** (level_dbfs / 20) * np.sqrt(2)
    return (np.sin(2 * np.pi * 300 * t) * peak).astype("<i2").tobytes()


def silence(duration_s: float) -> bytes:
    return bytes(2 * int(duration_s * 16_000))


LIVE_CONFIG = types.LiveConnectConfig(
    response_modalities=[types.Modality.AUDIO],
    input_audio_transcription=types.AudioTranscriptionConfig(),
    output_audio_transcription=types.AudioTranscriptionConfig(),
    session_resumption=types.SessionResumptionConfig(),
)
PTT_CONFIG = LIVE_CONFIG.model_copy(
    update={
        "realtime_input_config": types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        )
    }
)


def client_for(server: StandIn, api_key: str = "test-key") -> genai.Client:
    return genai.Client(api_key=api_key, http_options=server.http_options())


async def speak(session: genai.live.AsyncSession, pcm: bytes) -> None:
    """Sends mic audio in 20 ms chunks, faster than real time (the stand-in counts audio time)."""
    for i in range(0, len(pcm), CHUNK_BYTES):
        blob = types.Blob(data=pcm[i : i + CHUNK_BYTES], mime_type=MIC_MIME)
        await session.send_realtime_input(audio=blob)


async def messages(session: genai.live.AsyncSession) -> AsyncIterator[types.LiveServerMessage]:
    """All server messages across turns (`receive()` itself stops after each turn_complete)."""
    while True:
        async for message in session.receive():
            yield message


@dataclass
class Heard:
    """What the client got for one turn, in arrival order."""

    kinds: list[str] = field(default_factory=list)
    input_text: str = ""
    output_text: str = ""
    audio: bytes = b""


async def hear_turn(stream: AsyncIterator[types.LiveServerMessage]) -> Heard:
    """Reads until turn_complete or interrupted; ignores resumption updates."""
    heard = Heard()
    async with asyncio.timeout(10):
        async for message in stream:
            content = message.server_content
            if content is None:
                continue
            if content.input_transcription:
                heard.kinds.append("input_transcription")
                heard.input_text += content.input_transcription.text or ""
            if content.output_transcription:
                heard.output_text += content.output_transcription.text or ""
            if content.model_turn and content.model_turn.parts:
                heard.kinds.append("audio")
                blobs = [p.inline_data for p in content.model_turn.parts if p.inline_data]
                heard.audio += b"".join(blob.data or b"" for blob in blobs)
            for flag in ("generation_complete", "turn_complete", "interrupted"):
                if getattr(content, flag):
                    heard.kinds.append(flag)
            if content.turn_complete or content.interrupted:
                return heard
    raise AssertionError("the stream ended mid-turn")
