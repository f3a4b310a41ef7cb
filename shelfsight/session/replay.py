"""Replaying a recorded session: its client side again, and (offline) its server side too.

The client side is re-sent through the same pipeline as a live run: the recorded mic audio is a
WAV mic (paced in real time, as recorded), and the recorded frames go out at their recorded
times relative to the start of the mic audio. Offline, the stand-in endpoint answers each turn
with the answer recorded for it (audio, transcripts), so a replay needs no key and no network.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from shelfsight.core.frames import EncodedFrame
from shelfsight.session.recording import RecordedSession
from shelfsight.standin import ScriptedAnswer


class RecordedFrames:
    """The frames of a recording, yielded at their recorded send times."""

    def __init__(self, session: RecordedSession) -> None:
        self._session = session
        starts = session.of_type("mic_start")
        self._t_mic_start = float(starts[0]["t"]) if starts else 0.0

    async def frames(self) -> AsyncIterator[EncodedFrame]:
        t_start = time.monotonic()
        for seq, event in enumerate(self._session.of_type("frame")):
            due = t_start + float(event["t"]) - self._t_mic_start
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            path = self._session.folder / event["file"]
            jpeg = await asyncio.to_thread(path.read_bytes)
            now = time.monotonic()
            yield EncodedFrame(
                jpeg=jpeg,
                width=int(event.get("width", 0)),
                height=int(event.get("height", 0)),
                t_capture=now,
                t_encoded=now,
                seq=seq,
            )


def recorded_answers(session: RecordedSession) -> tuple[ScriptedAnswer, ...]:
    """Each answered turn of the recording: what the user said, what came back, its audio.

    A turn ends at `turn_complete` or `interrupted`; turns that carried no audio are skipped.
    """
    audio = session.answer_pcm()
    answers: list[ScriptedAnswer] = []
    asked: list[str] = []
    said: list[str] = []
    chunks: list[bytes] = []
    for event in session.events:
        kind = event.get("type")
        if kind == "user_transcript":
            asked.append(event.get("text", ""))
        elif kind == "answer_transcript":
            said.append(event.get("text", ""))
        elif kind == "answer_audio":
            offset, size = int(event["offset"]), int(event["bytes"])
            chunks.append(audio[offset : offset + size])
        elif kind in ("turn_complete", "interrupted"):
            pcm = b"".join(chunks)
            if pcm and len(pcm) % 2 == 0:
                answers.append(ScriptedAnswer(_join(asked), _join(said), pcm))
            asked, said, chunks = [], [], []
    return tuple(answers)


def describe(session: RecordedSession) -> dict[str, object]:
    """One row of `shelfsight sessions`."""
    started = session.manifest.get("started_at", "")
    try:
        when = datetime.fromisoformat(started).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        when = "?"
    return {
        "folder": session.folder,
        "started": when,
        "duration_s": session.duration_s,
        "questions": len(_turns_asked(session)),
        "answers": len(session.of_type("turn_latency")),
        "complete": "ended_at" in session.manifest,
        "budget_usd": session.manifest.get("budget_usd"),  # None: the session had none
        **_billed(session),
    }


def _billed(session: RecordedSession) -> dict[str, object]:
    """Tokens and estimated price: the manifest's totals, else the `answer_cost` events so far
    (a session cut short has no final manifest)."""
    tokens = session.manifest.get("tokens")
    if isinstance(tokens, dict) and "cost_usd" in session.manifest:
        return {
            "tokens_in": int(tokens.get("in", 0)),
            "tokens_out": int(tokens.get("out", 0)),
            "cost_usd": float(session.manifest["cost_usd"]),
        }
    bills = session.of_type("answer_cost")
    kinds_in, kinds_out = ("audio_in", "video_in", "text_in"), ("audio_out", "text_out")
    return {
        "tokens_in": sum(int(b.get(k, 0)) for b in bills for k in kinds_in),
        "tokens_out": sum(int(b.get(k, 0)) for b in bills for k in kinds_out),
        "cost_usd": sum(float(b.get("usd", 0.0)) for b in bills),
    }


def _turns_asked(session: RecordedSession) -> list[int]:
    """Turn numbers in which the user said something (transcripts come in fragments)."""
    turns: list[int] = []
    turn = 0
    for event in session.events:
        if event.get("type") in ("turn_complete", "interrupted"):
            turn += 1
        elif event.get("type") in ("user_transcript", "typed_text") and turn not in turns:
            turns.append(turn)
    return turns


def find_sessions(root: Path) -> list[Path]:
    """The recordings in `root`, or `root` itself when it is one."""
    if (root / "events.jsonl").is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "events.jsonl").is_file())


def _join(pieces: list[str]) -> str:
    return " ".join("".join(pieces).split())
