"""The Live API stand-in, driven by the real google-genai client over real TLS on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types

from shelfsight.standin import (
    DEFAULT_ANSWER_TEXT,
    SILENT_PCM,
    ConnectionFaults,
    ScriptedAnswer,
    ScriptedCall,
    StandIn,
    StandInConfig,
    synth_speech_pcm16,
)
from tests.support.standin_client import (
    LIVE_CONFIG,
    MIC_MIME,
    PTT_CONFIG,
    Heard,
    client_for,
    hear_turn,
    messages,
    silence,
    speak,
    tone,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Shutdown must be clean: no failed handlers, pending tasks or unretrieved exceptions."""
    caplog.set_level(logging.WARNING)
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    noisy = [r for r in records if r.name.split(".")[0] in ("websockets", "asyncio")]
    assert not noisy, [r.getMessage() for r in noisy]


def answer(text: str, duration_s: float) -> ScriptedAnswer:
    return ScriptedAnswer(f"question for {text}", text, synth_speech_pcm16(duration_s, 24_000))


def resume_from(handle: str) -> types.LiveConnectConfig:
    resumption = types.SessionResumptionConfig(handle=handle)
    return LIVE_CONFIG.model_copy(update={"session_resumption": resumption})


async def test_env_pointed_client_completes_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    async with StandIn() as server:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.base_url)
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_pem_path))
        client = genai.Client(api_key="test-key")
        async with client.aio.live.connect(model="gemini-live-test", config=LIVE_CONFIG) as s:
            assert s is not None
        await server.wait_until(lambda: server.connections[0].close_code is not None)
        conn = server.connections[0]
        assert conn.api_key_ok
        assert conn.setup is not None and conn.setup["model"] == "models/gemini-live-test"
        assert "inputAudioTranscription" in conn.setup
        assert conn.close_code == 1000
        assert conn.sent("setup_complete")
    assert not server.ca_pem_path.exists()


async def test_spoken_question_gets_the_scripted_answer() -> None:
    async with StandIn() as server:
        expected = server.config.answers[0]
        async with client_for(server).aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            stream = messages(s)
            question = tone(1.0) + silence(1.0)
            await speak(s, question)
            heard = await hear_turn(stream)
            update = (await anext(stream)).session_resumption_update
        assert heard.input_text == expected.question_text
        assert heard.audio == expected.answer_pcm24k
        assert heard.output_text == DEFAULT_ANSWER_TEXT == expected.answer_text
        assert heard.kinds[0] == "input_transcription"
        assert heard.kinds[-2:] == ["generation_complete", "turn_complete"]
        conn = server.connections[0]
        assert conn.audio_bytes() == question
        assert [t.trigger for t in conn.turns()] == ["vad"]
        assert server.turns_completed == 1
        assert update is not None and update.resumable
        assert [update.new_handle] == server.issued_handles


async def test_quiet_room_noise_is_not_a_question() -> None:
    async with StandIn() as server:
        async with client_for(server).aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            await speak(s, tone(1.0, level_dbfs=-50.0) + silence(0.6))
            await s.send_realtime_input(text="where is the bread?")
            heard = await hear_turn(messages(s))
        assert "input_transcription" not in heard.kinds  # typed, so nothing to transcribe
        assert [t.trigger for t in server.connections[0].turns()] == ["text"]


async def test_typed_questions_get_answers_in_script_order() -> None:
    config = StandInConfig(answers=(answer("first", 0.2), answer("second", 0.3)), speed=8.0)
    async with StandIn(config) as server:
        async with client_for(server).aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            stream = messages(s)
            await s.send_realtime_input(text="where is the bread?")
            first = await hear_turn(stream)
            turn = types.Content(role="user", parts=[types.Part(text="and the milk?")])
            await s.send_client_content(turns=turn, turn_complete=True)
            second = await hear_turn(stream)
            await s.send_realtime_input(text="and the eggs?")
            third = await hear_turn(stream)
        assert (first.output_text, second.output_text, third.output_text) == (
            "first",
            "second",
            "first",
        )
        assert second.audio == config.answers[1].answer_pcm24k
        conn = server.connections[0]
        assert conn.texts() == ["where is the bread?", "and the eggs?"]
        turns = conn.turns()
        assert [(t.trigger, t.question_text) for t in turns] == [
            ("text", "where is the bread?"),
            ("client_content", "and the milk?"),
            ("text", "and the eggs?"),
        ]
        assert all(t.outcome == "completed" for t in turns)


async def test_a_model_answers_each_turn_from_the_last_picture_or_leaves_it_to_the_script() -> None:
    asked: list[tuple[str | None, bytes | None, bool]] = []

    def model(text: str | None, picture: bytes | None) -> ScriptedAnswer | None:
        asked.append((text, picture, threading.current_thread() is threading.main_thread()))
        if text == "and the milk?":
            return None
        mark = ScriptedCall("mark_item", {"box_2d": [100, 200, 300, 400], "name": "bread"})
        return ScriptedAnswer("", "", SILENT_PCM, tool_calls=(mark,))

    config = StandInConfig(answers=(answer("scripted", 0.2),), speed=8.0, model=model)
    async with StandIn(config) as server:
        async with client_for(server).aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            stream = messages(s)
            await s.send_realtime_input(video=types.Blob(data=b"one", mime_type="image/jpeg"))
            await s.send_realtime_input(text="guide me to the bread")
            first = await hear_turn(stream)
            picture = types.Part(inline_data=types.Blob(data=b"two", mime_type="image/jpeg"))
            turn = types.Content(role="user", parts=[picture, types.Part(text="and the milk?")])
            await s.send_client_content(turns=turn, turn_complete=True)
            second = await hear_turn(stream)
        assert asked == [("guide me to the bread", b"one", False), ("and the milk?", b"two", False)]
        assert first.audio == SILENT_PCM and second.output_text == "scripted"
        calls = server.connections[0].sent("tool_call")
        assert [json.loads(c.text)[0]["args"]["name"] for c in calls] == ["bread"]
        turns = server.connections[0].turns()
        assert [(t.question_text, t.answer_text) for t in turns] == [
            ("guide me to the bread", ""),
            ("and the milk?", "scripted"),
        ]


async def test_push_to_talk_turn_is_activity_start_to_end() -> None:
    async with StandIn(StandInConfig(speed=16.0)) as server:
        async with client_for(server).aio.live.connect(model="m", config=PTT_CONFIG) as s:
            await speak(s, tone(0.5) + silence(0.6))  # no key held: not a question
            await s.send_realtime_input(activity_start=types.ActivityStart())
            await speak(s, tone(0.5))
            await s.send_realtime_input(activity_end=types.ActivityEnd())
            heard = await hear_turn(messages(s))
        assert heard.audio == server.config.answers[0].answer_pcm24k
        conn = server.connections[0]
        assert [t.trigger for t in conn.turns()] == ["activity"]
        kinds = [e.kind for e in conn.received() if e.kind != "audio"]
        assert kinds == ["activity_start", "activity_end"]


async def test_audio_stream_end_finishes_a_pending_question() -> None:
    async with StandIn(StandInConfig(speed=16.0)) as server:
        async with client_for(server).aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            await speak(s, tone(0.5))
            await s.send_realtime_input(audio_stream_end=True)
            heard = await hear_turn(messages(s))
        assert heard.kinds[-1] == "turn_complete"
        assert [t.trigger for t in server.connections[0].turns()] == ["audio_stream_end"]


async def test_speaking_over_the_answer_interrupts_it() -> None:
    config = StandInConfig(answers=(answer("long", 3.0), answer("short", 0.2)), speed=1.0)
    async with StandIn(config) as server:
        async with client_for(server).aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            stream = messages(s)
            await speak(s, tone(0.5) + silence(0.6))
            async with asyncio.timeout(5):
                async for message in stream:
                    if message.server_content and message.server_content.model_turn:
                        break
            await speak(s, tone(0.3))  # barge in while the long answer is playing
            cut = await hear_turn(stream)
            await speak(s, silence(0.6))
            follow_up = await hear_turn(stream)
        assert cut.kinds[-1] == "interrupted"
        assert "turn_complete" not in cut.kinds
        assert follow_up.output_text == "short"
        conn = server.connections[0]
        assert [t.outcome for t in conn.turns()] == ["interrupted", "completed"]
        assert conn.interruptions == 1
        sent_audio = sum(e.n_bytes for e in conn.sent("audio"))
        assert sent_audio < len(config.answers[0].answer_pcm24k)


async def test_no_interruption_mode_finishes_the_answer_then_takes_the_next() -> None:
    no_barge_in = LIVE_CONFIG.model_copy(
        update={
            "realtime_input_config": types.RealtimeInputConfig(
                activity_handling=types.ActivityHandling.NO_INTERRUPTION
            )
        }
    )
    config = StandInConfig(answers=(answer("long", 1.5), answer("short", 0.2)), speed=2.0)
    async with StandIn(config) as server:
        async with client_for(server).aio.live.connect(model="m", config=no_barge_in) as s:
            stream = messages(s)
            await speak(s, tone(0.5) + silence(0.6))
            await speak(s, tone(0.3) + silence(0.6))  # while the first answer is streaming
            first = await hear_turn(stream)
            second = await hear_turn(stream)
        assert first.audio == config.answers[0].answer_pcm24k
        assert second.output_text == "short"
        turns = server.connections[0].turns()
        assert [t.outcome for t in turns] == ["completed", "completed"]
        first_end = turns[0].t_end_monotonic
        assert first_end is not None and turns[1].t_start_monotonic < first_end  # overlapped


async def test_wrong_api_key_is_refused_with_1007() -> None:
    async with StandIn(StandInConfig(api_keys=frozenset({"right-key"}))) as server:
        with pytest.raises(errors.APIError) as caught:
            async with client_for(server, api_key="wrong-key").aio.live.connect(model="m"):
                pass
        assert caught.value.code == 1007
        assert "API key not valid" in str(caught.value)
        conn = server.connections[0]
        assert not conn.api_key_ok
        assert "wrong-key" not in repr(vars(conn))


async def test_unknown_model_is_refused_with_1008() -> None:
    async with StandIn(StandInConfig(models=frozenset({"gemini-live-test"}))) as server:
        with pytest.raises(errors.APIError) as caught:
            async with client_for(server).aio.live.connect(model="gemini-nope"):
                pass
        assert caught.value.code == 1008
        assert "models/gemini-nope is not found for API version v1" in str(caught.value)
        async with client_for(server).aio.live.connect(model="models/gemini-live-test"):
            pass


async def test_scripted_go_away_then_internal_error_then_healthy_reconnect() -> None:
    faults = ConnectionFaults(go_away_after_s=0.1, go_away_time_left_s=0.5, close_after_s=0.3)
    async with StandIn(StandInConfig(connection_faults=(faults,), speed=16.0)) as server:
        client = client_for(server)
        async with client.aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            stream = messages(s)
            first = await anext(stream)
            assert first.go_away is not None and first.go_away.time_left == "0.5s"
            with pytest.raises(errors.APIError) as caught:
                await anext(stream)
            assert caught.value.code == 1011
        async with client.aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            await s.send_realtime_input(text="still there?")
            assert (await hear_turn(messages(s))).kinds[-1] == "turn_complete"
        assert [c.close_code for c in server.connections][:1] == [1011]


async def test_reconnect_resumes_with_the_handle_it_was_issued() -> None:
    only_issued = StandInConfig(resumption_handles=frozenset(), speed=16.0)
    async with StandIn(only_issued) as server:
        client = client_for(server)
        async with client.aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            stream = messages(s)
            await s.send_realtime_input(text="where is the bread?")
            await hear_turn(stream)
            update = (await anext(stream)).session_resumption_update
        assert update is not None and update.new_handle
        async with client.aio.live.connect(model="m", config=resume_from(update.new_handle)) as s:
            await s.send_realtime_input(text="and the milk?")
            assert (await hear_turn(messages(s))).kinds[-1] == "turn_complete"
        fresh, resumed = server.connections
        assert fresh.resumed_with is None
        assert resumed.resumed_with == update.new_handle == server.issued_handles[0]


async def test_reconnect_with_an_unknown_handle_is_refused_with_1007() -> None:
    async with StandIn(StandInConfig(resumption_handles=frozenset({"saved"}))) as server:
        client = client_for(server)
        with pytest.raises(errors.APIError) as caught:
            async with client.aio.live.connect(model="m", config=resume_from("stale")):
                pass
        assert caught.value.code == 1007
        async with client.aio.live.connect(model="m", config=resume_from("saved")):
            pass
        await server.wait_until(lambda: server.connections[-1].close_code is not None)
        refused, resumed = server.connections
        assert refused.resumed_with == "stale" and not refused.sent("setup_complete")
        assert resumed.resumed_with == "saved" and resumed.sent("setup_complete")


async def test_a_go_away_is_enforced_with_1011_when_time_left_runs_out() -> None:
    every = ConnectionFaults(go_away_after_s=0.1, go_away_time_left_s=0.3)
    async with StandIn(StandInConfig(default_faults=every)) as server:
        for _ in range(2):  # the default faults apply to every connection
            async with client_for(server).aio.live.connect(model="m", config=LIVE_CONFIG) as s:
                stream = messages(s)
                assert (await anext(stream)).go_away is not None
                with pytest.raises(errors.APIError) as caught:
                    await anext(stream)
            assert caught.value.code == 1011 and "Deadline expired" in str(caught.value)
        await server.wait_until(lambda: server.connections[-1].close_code is not None)
        assert [c.close_code for c in server.connections] == [1011, 1011]


async def test_a_network_drop_reaches_the_client_as_1006_without_a_close_frame() -> None:
    drop = ConnectionFaults(drop_after_s=0.2)
    async with StandIn(StandInConfig(connection_faults=(drop,))) as server:
        async with client_for(server).aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            with pytest.raises(errors.APIError) as caught:
                await anext(messages(s))
        assert caught.value.code == 1006
        await server.wait_until(lambda: server.connections[0].close_code is not None)
        conn = server.connections[0]
        assert conn.sent("drop") and not conn.sent("close") and conn.close_code == 1006


async def test_resuming_while_the_old_connection_is_still_open_is_refused_with_1011() -> None:
    async with StandIn(StandInConfig(speed=16.0)) as server:
        client = client_for(server)
        async with client.aio.live.connect(model="m", config=LIVE_CONFIG) as old:
            stream = messages(old)
            await old.send_realtime_input(text="where is the bread?")
            await hear_turn(stream)
            handle = (await anext(stream)).session_resumption_update.new_handle
            with pytest.raises(errors.APIError) as caught:
                async with client.aio.live.connect(model="m", config=resume_from(handle)):
                    pass
            assert caught.value.code == 1011
        async with client.aio.live.connect(model="m", config=resume_from(handle)):
            pass  # once the old connection is closed the session resumes
        await server.wait_until(lambda: server.connections[-1].close_code is not None)
        old_rec, refused, resumed = server.connections
        assert old_rec.session_id == resumed.session_id == 0 and refused.session_id is None


async def test_a_forgotten_session_refuses_its_handle_and_close_all_ends_every_connection() -> None:
    forgot = ConnectionFaults(refuse_resumption=True)
    async with StandIn(StandInConfig(connection_faults=(forgot,), speed=16.0)) as server:
        client = client_for(server)
        with pytest.raises(errors.APIError) as caught:
            async with client.aio.live.connect(model="m", config=resume_from("standin-9-9")):
                pass
        assert caught.value.code == 1007
        async with client.aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            await s.send_realtime_input(audio=types.Blob(data=tone(0.5), mime_type=MIC_MIME))
            await server.wait_until(lambda: server.connections[-1].received("audio"))
            assert await server.close_all(1011) == 1
            with pytest.raises(errors.APIError) as caught:
                await anext(messages(s))
        assert caught.value.code == 1011


async def test_a_turn_records_how_much_audio_its_connection_had_received() -> None:
    async with StandIn() as server:
        async with client_for(server).aio.live.connect(model="m", config=LIVE_CONFIG) as s:
            await speak(s, tone(1.0) + silence(1.0))
            await hear_turn(messages(s))
        (turn,) = server.connections[0].turns()
        assert 1.4 <= turn.input_audio_s <= 2.0  # the speech plus the VAD's 500 ms of silence


async def test_refused_upgrade_reaches_the_client_as_a_handshake_error() -> None:
    refuse = ConnectionFaults(refuse_http_status=503)
    async with StandIn(StandInConfig(connection_faults=(refuse,))) as server:
        with pytest.raises(Exception) as caught:
            async with client_for(server).aio.live.connect(model="m"):
                pass
        assert "503" in str(caught.value)
        assert server.connections[0].setup is None


def test_thread_stand_in_serves_a_sync_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    with StandIn.start_in_thread(StandInConfig(speed=16.0)) as handle:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", handle.base_url)
        monkeypatch.setenv("SSL_CERT_FILE", str(handle.ca_pem_path))

        async def ask() -> Heard:
            client = genai.Client(api_key="test-key")
            async with client.aio.live.connect(model="m", config=LIVE_CONFIG) as s:
                await s.send_realtime_input(text="where is the bread?")
                return await hear_turn(messages(s))

        heard = asyncio.run(ask())
        assert heard.output_text == DEFAULT_ANSWER_TEXT
        handle.wait_until(lambda: handle.server.turns_completed == 1)
        pem = handle.ca_pem_path
    assert not pem.exists()
