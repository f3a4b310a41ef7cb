"""Replays and the demo: a recording's client side through the whole pipeline again.

Against Google's endpoint, or offline against the built-in stand-in, which answers each turn
with the answer recorded for it, so an offline replay needs no key and no network.
"""

from __future__ import annotations

from pathlib import Path

from shelfsight.app import converse
from shelfsight.errors import UserError
from shelfsight.guard import SECRETS
from shelfsight.live.setup import Endpoint
from shelfsight.media.open_audio import open_speaker
from shelfsight.session.recording import load_session
from shelfsight.session.replay import RecordedFrames, recorded_answers
from shelfsight.settings import api_key_from_env, load_settings
from shelfsight.standin import StandIn, StandInConfig


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
        )


def demo_speaker() -> str:
    """The default speaker if there is one, else a WAV file in the working directory."""
    try:
        open_speaker("default").close()
    except UserError as exc:
        reason = str(exc).split(":")[0].split(";")[0]
        target = "shelfsight-demo-answer.wav"
        print(f"No speaker to play on ({reason}): the answer goes into {target}.")
        return target
    return "default"
