"""Replays and the demo: a recording's client side through the whole pipeline again.

Against Google's endpoint, or offline against the built-in stand-in, which answers each turn
with the answer recorded for it, so an offline replay needs no key and no network.
"""

from __future__ import annotations

import os
import sys
import tempfile
import wave
from importlib import resources
from pathlib import Path
from typing import Any

from shelfsight.app import converse
from shelfsight.core.phrases import Phrase
from shelfsight.errors import UserError
from shelfsight.guard import SECRETS
from shelfsight.live.setup import Endpoint
from shelfsight.media.open_audio import open_speaker
from shelfsight.session.recording import load_session
from shelfsight.session.replay import RecordedFrames, recorded_answers
from shelfsight.settings import Settings, api_key_from_env, load_settings
from shelfsight.standin import ScriptedAnswer, StandIn, StandInConfig
from shelfsight.ui.view import print_paragraph


async def replay_session(
    folder: Path,
    *,
    offline: bool,
    speaker: str | None,
    model: str | None,
    record: Path | None,
    plain: bool,
) -> None:
    """Replay `folder` through the whole pipeline, against Google's endpoint or offline.

    The recorded mic audio is sent as one stream, so turns are found by the server's voice
    detection: a push-to-talk recording is replayed hands-free, and typed questions are not
    re-sent (the recording keeps them as `typed_text` events).
    """

    session = load_session(folder)
    recorded = session.manifest.get("settings", {})
    flags = {
        "mic": str(folder / "mic.wav"),
        "camera": "none",
        "speaker": speaker,
        "model": model or recorded.get("model"),
        "voice": recorded.get("voice"),
        "mode": "handsfree",
    }
    settings = load_settings(flags)
    frames = RecordedFrames(session)
    if not offline:
        key = api_key_from_env()
        SECRETS.append(key)
        await converse(settings, key, plain=plain, record=record, frames=frames)
        return
    answers = recorded_answers(session)
    if not answers:
        raise UserError(f"{folder} holds no recorded answer to play back offline.")
    async with StandIn(StandInConfig(answers=answers)) as server:
        endpoint = Endpoint(server.base_url, server.client_ssl_context())
        await converse(
            settings,
            "offline-replay",
            plain=plain,
            record=record,
            endpoint=endpoint,
            frames=frames,
            offline=True,
        )


OFFLINE_QUESTION_TEXT = "(your question: offline, not transcribed)"
OFFLINE_ANSWER_TEXT = (
    "(offline canned answer) Third shelf from the top, right end. "
    "It's a green bag with a yellow label."
)


def canned_answer() -> ScriptedAnswer:
    """The bundled spoken answer (assets/answer.wav) and its text, labelled as canned."""
    packaged = resources.files("shelfsight") / "assets" / "answer.wav"
    with resources.as_file(packaged) as path, wave.open(str(path), "rb") as w:
        pcm = w.readframes(w.getnframes())
    return ScriptedAnswer(OFFLINE_QUESTION_TEXT, OFFLINE_ANSWER_TEXT, pcm)


async def offline_run(settings: Settings, *, plain: bool, record: Path | None) -> None:
    """`run --offline`: the user's own camera, mic and speaker against the built-in stand-in,
    in-process on its own TLS, which answers every question with one canned answer."""
    async with StandIn(StandInConfig(answers=(canned_answer(),))) as server:
        endpoint = Endpoint(server.base_url, server.client_ssl_context())
        await converse(
            settings,
            "offline",
            plain=plain,
            record=record,
            endpoint=endpoint,
            interactive=True,
            offline=True,
            canned=True,
            banner=(Phrase("offline_banner"),),
        )


async def guide_demo(speaker: str, *, plain: bool) -> None:
    """`demo --guide`: the real guide on a rendered shelf video, the stand-in marking the bag
    (shelfsight.guide_demo)."""
    import asyncio

    from shelfsight import guide_demo as demo
    from shelfsight.media.tts import StatusVoice, find_engine

    folder = usable_cache_dir()
    video = folder / "guide-demo.avi"
    try:
        box_2d = await asyncio.to_thread(demo.write_video, video)
    except OSError as exc:
        raise UserError(f"Cannot write the demo video into {folder}: {exc}") from None
    engine = find_engine()
    voice = StatusVoice(engine) if engine is not None else None
    pcm = await asyncio.to_thread(voice.render, demo.ANSWER_TEXT) if voice else None
    settings = load_settings({"camera": str(video), "mic": "none", "speaker": speaker})
    controls: asyncio.Queue[Any] = asyncio.Queue()
    async with StandIn(demo.standin_config(box_2d, pcm)) as server:
        endpoint = Endpoint(server.base_url, server.client_ssl_context())
        keys = asyncio.create_task(demo.press_keys(controls))
        try:
            await converse(
                settings,
                "offline-demo",
                plain=plain,
                record=None,
                endpoint=endpoint,
                offline=True,
                banner=(Phrase("demo_guide_banner"),),
                scripted=controls,
            )
        finally:
            keys.cancel()


def user_cache_dir() -> Path:
    """Where shelfsight keeps files nobody asked for by name: $XDG_CACHE_HOME/shelfsight,
    ~/.cache/shelfsight, or ~/Library/Caches/shelfsight on macOS."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "shelfsight"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shelfsight"


def usable_cache_dir() -> Path:
    """`user_cache_dir()`, made if missing; the system's temporary folder if it cannot be."""
    folder = user_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(tempfile.gettempdir())
    return folder


def demo_speaker() -> str:
    """The default speaker if there is one, else a WAV file in the user's cache folder."""
    try:
        open_speaker("default").close()
    except UserError as exc:
        reason = str(exc).split(":")[0].split(";")[0]
        target = str(usable_cache_dir() / "demo-answer.wav")
        print_paragraph(f"No speaker to play on ({reason}): the answer goes into {target}.")
        return target
    return "default"


NEXT_STEP = (
    "Next: get a key at https://aistudio.google.com/apikey, export GEMINI_API_KEY=..., then "
    "`shelfsight run --camera iphone` (or --camera 0, a stream URL or a video file); "
    "without a key, try your own devices with `shelfsight run --offline`."
)
