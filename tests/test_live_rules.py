"""gemini-3.8-live's rules, as the strict stand-in enforces them (shelfsight.standin.strict for
the sources), its usageMetadata, and proof that shelfsight breaks none of them in any mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.genai import errors, types

from shelfsight.live.events import Usage, translate
from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.session.cost import CostMeter, Prices, Tokens
from shelfsight.standin import StandIn, StandInConfig, StandInThread
from shelfsight.standin.protocol import pick
from shelfsight.standin.strict import MAX_INLINE_IMAGE_BYTES, MEDIA_CHUNKS_REASON, setup_violation
from tests.conftest import ASSETS, run_cli, standin_env
from tests.support.standin_client import (
    LIVE_CONFIG,
    PTT_CONFIG,
    client_for,
    hear_turn,
    messages,
    silence,
    speak,
    tone,
)

pytestmark = pytest.mark.anyio
INVALID = "Request contains an invalid argument."


def with_(**fields: object) -> types.LiveConnectConfig:
    return LIVE_CONFIG.model_copy(update=fields)


@pytest.mark.parametrize(
    ("config", "rule", "reason"),
    [
        (with_(thinking_config=types.ThinkingConfig(thinking_budget=0)), "thinkingConfig",
         'Unknown name "thinkingConfig" at \'setup.generation_config\': Cannot find field.'),
        (with_(enable_affective_dialog=False), "enableAffectiveDialog",
         'Unknown name "enableAffectiveDialog" at \'setup.generation_config\''),
        (with_(proactivity=types.ProactivityConfig(proactive_audio=False)),
         "proactive_audio_false", INVALID),
        (with_(response_modalities=[types.Modality.TEXT]), "response_modalities", INVALID),
    ],
    ids=["thinking", "affective-dialog", "proactive-audio-off", "text-responses"],
)  # fmt: skip
async def test_a_setup_field_3_8_refuses_closes_the_connection_with_1007(
    config: types.LiveConnectConfig, rule: str, reason: str
) -> None:
    async with StandIn() as server:
        with pytest.raises(errors.APIError) as refused:
            async with client_for(server).aio.live.connect(model="m", config=config):
                pass
        assert refused.value.code == 1007 and reason in str(refused.value)
        assert server.connections[0].violations == [rule]


async def test_proactive_audio_left_on_is_accepted() -> None:
    config = with_(proactivity=types.ProactivityConfig(proactive_audio=True))
    async with StandIn() as server:
        async with client_for(server).aio.live.connect(model="m", config=config):
            pass
        assert server.connections[0].violations == []


async def test_transcription_in_the_users_language_is_accepted_an_unknown_field_not() -> None:
    """`languageCodes` (BCP-47) is a documented field of input transcription: a setup with it
    goes through; a field AudioTranscriptionConfig does not have, or codes that are not a
    list of strings, are refused as the service refuses such setups."""
    heard = types.AudioTranscriptionConfig(language_codes=["de-DE"], custom_vocabulary=["Hafer"])
    async with StandIn() as server:
        async with client_for(server).aio.live.connect(
            model="m", config=with_(input_audio_transcription=heard)
        ):
            pass
        record = server.connections[0]
        assert record.violations == []
        assert pick(pick(record.setup, "inputAudioTranscription"), "languageCodes") == ["de-DE"]
    unknown = setup_violation({"inputAudioTranscription": {"languageCode": "de-DE"}})
    assert unknown is not None and unknown.code == 1007
    assert "Unknown name \"languageCode\" at 'setup.input_audio_transcription'" in unknown.reason
    not_a_list = setup_violation({"input_audio_transcription": {"language_codes": "de-DE"}})
    assert not_a_list is not None and not_a_list.reason == INVALID


async def refused_after_setup(
    server: StandIn, config: types.LiveConnectConfig, **send: object
) -> errors.APIError:
    async with client_for(server).aio.live.connect(model="m", config=config) as s:
        await s.send_realtime_input(**send)  # type: ignore[arg-type]
        with pytest.raises(errors.APIError) as refused:
            async for _ in messages(s):
                pass
    return refused.value


async def test_media_chunks_close_the_connection_with_their_deprecation_reason() -> None:
    async with StandIn() as server:
        blob = types.Blob(data=silence(0.02), mime_type="audio/pcm;rate=16000")
        error = await refused_after_setup(server, LIVE_CONFIG, media=blob)
        assert error.code == 1007 and MEDIA_CHUNKS_REASON in str(error)
        assert server.connections[0].violations == ["media_chunks"]


async def test_activity_markers_while_the_server_detects_speech_close_the_connection() -> None:
    async with StandIn() as server:
        error = await refused_after_setup(server, LIVE_CONFIG, activity_start=types.ActivityStart())
        assert error.code == 1007 and INVALID in str(error)
        assert server.connections[0].violations == ["activity_with_automatic_detection"]


async def test_a_frame_above_the_inline_image_limit_closes_the_connection() -> None:
    async with StandIn() as server:
        big = types.Blob(data=bytes(MAX_INLINE_IMAGE_BYTES + 1), mime_type="image/jpeg")
        error = await refused_after_setup(server, LIVE_CONFIG, video=big)
        assert error.code == 1007
        assert server.connections[0].violations == ["frame_too_big"]


async def turn_usage(resolution: types.MediaResolution) -> list[types.UsageMetadata]:
    """Two spoken questions with two frames before each; the usage of both answers."""
    config = with_(media_resolution=resolution, system_instruction="Answer briefly.")
    frame = types.Blob(data=b"\xff\xd8 not really a jpeg", mime_type="image/jpeg")
    usage: list[types.UsageMetadata] = []
    async with StandIn(StandInConfig(speed=16.0)) as server:
        async with client_for(server).aio.live.connect(model="m", config=config) as s:
            stream = messages(s)
            for _ in range(2):
                for _ in range(2):
                    await s.send_realtime_input(video=frame)
                await speak(s, tone(1.0) + silence(0.7))
                await hear_turn(stream)  # its last message carries the usage
            async for message in stream:  # the resumption update, then nothing more
                if message.session_resumption_update:
                    break
        for sent in server.connections[0].sent("turn_complete"):
            usage.append(types.UsageMetadata.model_validate(json.loads(sent.text)))
    return usage


async def test_usage_metadata_is_shaped_like_the_services_and_grows_with_the_context() -> None:
    low = await turn_usage(types.MediaResolution.MEDIA_RESOLUTION_LOW)
    medium = await turn_usage(types.MediaResolution.MEDIA_RESOLUTION_MEDIUM)
    for first, second in (low, medium):
        for usage in (first, second):
            assert usage.total_token_count == usage.prompt_token_count + usage.response_token_count
            details = {d.modality.value: d.token_count for d in usage.prompt_tokens_details}
            assert set(details) == {"TEXT", "AUDIO", "VIDEO"}
            assert sum(details.values()) == usage.prompt_token_count
        assert second.prompt_token_count > first.prompt_token_count, "every turn re-reads all"
    video = [{d.modality.value: d.token_count for d in u.prompt_tokens_details}["VIDEO"]
             for u in (*low, *medium)]  # fmt: skip
    assert video == [2 * 64, 4 * 64, 2 * 256, 4 * 256]


def test_the_clients_accounting_reads_a_3_8_receipt() -> None:
    """The gemini-3.8-live receipt quoted on discuss.ai.google.dev (thread 188765): its details
    leave 25 prompt tokens unassigned, and it reports thinking tokens outside the total."""
    receipt = {
        "serverContent": {"turnComplete": True},
        "usageMetadata": {
            "promptTokenCount": 522, "responseTokenCount": 42, "totalTokenCount": 564,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 332},
                                    {"modality": "AUDIO", "tokenCount": 165}],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 42}],
            "thoughtsTokenCount": 136,
        },
    }  # fmt: skip
    events = translate(types.LiveServerMessage.model_validate(receipt), now=1.0)
    usage = events[-1]
    assert isinstance(usage, Usage) and type(events[0]).__name__ == "TurnComplete"
    tokens = Tokens.from_usage(usage)
    assert tokens == Tokens(audio_in=165, video_in=0, text_in=357, audio_out=42, text_out=136)
    meter = CostMeter(Prices())
    bill = meter.add(usage)
    expected = (165 * 3.00 + 357 * 0.75 + 42 * 12.00 + 136 * 4.50) / 1e6
    assert bill.usd == pytest.approx(expected) and meter.usd == pytest.approx(expected)


def no_violations(server: StandInThread) -> None:
    connections = server.server.connections
    assert connections, "shelfsight never connected"
    for conn in connections:
        assert conn.violations == [], conn.violations
        assert conn.close_code == 1000, (conn.close_code, conn.close_reason)


def test_a_hands_free_run_with_camera_sends_nothing_3_8_refuses(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    mic = write_wav(tmp_path / "mic.wav", load_mic_pcm(ASSETS / "question.wav") + silence(3.0))
    result = run_cli(
        *("run", "--camera", str(shelf_video), "--mic", str(mic), "--speaker", "out.wav"),
        *("--vocabulary", "Schär,Oatly", "--media-resolution", "low"),
        env=standin_env(standin),
    )
    assert result.code == 0, result.stderr
    no_violations(standin)
    setup = standin.server.connections[0].setup
    assert setup is not None
    assert setup["generationConfig"]["mediaResolution"] == "MEDIA_RESOLUTION_LOW"
    assert setup["inputAudioTranscription"] == {
        "custom_vocabulary": ["Schär", "Oatly"],
        "language_codes": ["en-US"],  # the user's language (LANG=C: en-US)
    }
    assert "thinkingConfig" not in setup["generationConfig"] and "proactivity" not in setup
    frames = standin.server.connections[0].received("video")
    assert frames and all(max(_jpeg_size(f.data)) <= 768 for f in frames), "768 px by default"


def test_ask_and_replay_send_nothing_3_8_refuses(
    standin: StandInThread, shelf_video: Path, tmp_path: Path
) -> None:
    asked = run_cli("ask", "where is the rye?", "--camera", str(shelf_video), "--speaker",
                    "a.wav", env=standin_env(standin))  # fmt: skip
    assert asked.code == 0, asked.stderr
    replayed = run_cli("replay", str(ASSETS / "demo-session"), "--speaker", "b.wav",
                       env=standin_env(standin))  # fmt: skip
    assert replayed.code == 0, replayed.stderr
    assert len(standin.server.connections) == 2
    no_violations(standin)


def test_the_demo_runs_against_the_strict_stand_in(tmp_path: Path) -> None:
    assert StandInConfig().strict, "the demo's stand-in refuses what 3.8 refuses"
    proc = subprocess.run(
        [sys.executable, "-m", "shelfsight", "demo", "--speaker", "demo.wav", "--plain"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "cost:" in proc.stdout and "≈ $" in proc.stdout


async def test_push_to_talk_markers_are_accepted_when_detection_is_off() -> None:
    async with StandIn(StandInConfig(speed=16.0)) as server:
        async with client_for(server).aio.live.connect(model="m", config=PTT_CONFIG) as s:
            await s.send_realtime_input(activity_start=types.ActivityStart())
            await speak(s, tone(0.5))
            await s.send_realtime_input(activity_end=types.ActivityEnd())
            await hear_turn(messages(s))
        assert server.connections[0].violations == []


def _jpeg_size(jpeg: bytes) -> tuple[int, int]:
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return int(image.shape[1]), int(image.shape[0])
