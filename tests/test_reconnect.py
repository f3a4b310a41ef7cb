"""A session outlives its connections: goAway switches, server errors, network drops, refusals,
and a camera stream or sound device that goes away.

End-to-end tests run the real CLI in a child process against the stand-in over real TLS; the
rest drive `LiveLink` (real client, real TLS) or a real `Camera` on a real HTTP MJPEG stream.
The mic file carries a faint noise floor so that every 20 ms chunk is unique: the audio the
stand-in received on each connection can then be placed exactly in the file.
"""

from __future__ import annotations

import asyncio
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from shelfsight.errors import UserError
from shelfsight.live.link import (
    AnswerAudio,
    AnswerCut,
    Connected,
    Reconnecting,
    TurnComplete,
)
from shelfsight.live.outbox import Audio, Outbox
from shelfsight.media.camera import open_camera
from shelfsight.media.sound_devices import AudioDeviceInfo, DeviceMic, DeviceSpeaker
from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.settings import DEFAULT_MODEL
from shelfsight.standin import (
    ConnectionFaults,
    ConnectionRecord,
    ScriptedAnswer,
    StandIn,
    StandInConfig,
    StandInThread,
    synth_speech_pcm16,
)
from tests.conftest import ASSETS, TEST_KEY, run_cli, standin_env
from tests.support.link_run import LinkRun, jpeg_frame
from tests.support.listen import plays_of
from tests.support.mjpeg import MjpegServer
from tests.support.scene import read_frame_number

RATE_HZ = 16_000
CHUNK = 640  # the client's 20 ms mic chunk
GAP_S = 3.0  # silence between the two questions


@pytest.fixture(scope="module")
def two_questions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, list[float]]:
    """0.5 s, the bundled question, 3 s, the question again, 1 s; a -60 dBFS noise floor.
    Returns the WAV, its PCM and where each question starts and ends (seconds)."""
    question = np.frombuffer(load_mic_pcm(ASSETS / "question.wav"), "<i2").astype(np.int32)
    lead, gap, tail = (np.zeros(int(s * RATE_HZ), np.int32) for s in (0.5, GAP_S, 1.0))
    signal = np.concatenate([lead, question, gap, question, tail])
    signal += np.random.default_rng(5).normal(0, 30, len(signal)).astype(np.int32)
    pcm = np.clip(signal, -32768, 32767).astype("<i2").tobytes()
    path = tmp_path_factory.mktemp("mic") / "two-questions.wav"
    write_wav(path, pcm, RATE_HZ)
    q_s = len(question) / RATE_HZ
    return path, pcm, [0.5, 0.5 + q_s, 0.5 + q_s + GAP_S, 0.5 + 2 * q_s + GAP_S]


ALL_AUDIO = ("--send-audio", "always")
TIMER = ("--pictures", "timer")


def _standin_config(*faults: ConnectionFaults, **kwargs: Any) -> StandInConfig:
    models = frozenset({DEFAULT_MODEL})
    return StandInConfig(
        api_keys=frozenset({TEST_KEY}), models=models, connection_faults=faults, **kwargs
    )


def _run(standin: StandInThread, camera: str, mic: Path, out: Path, *extra: str) -> None:
    args = ["run", "--camera", camera, "--mic", str(mic), "--speaker", str(out), *extra]
    result = run_cli(*args, env=standin_env(standin))
    assert result.code == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def _mic_offset(mic: bytes, conn: ConnectionRecord) -> tuple[int, int]:
    """Where the connection's audio starts and ends in the mic PCM (bytes), checking that in
    between it is exactly the mic, in order (after the file ends the client sends silence)."""
    audio = conn.audio_bytes()
    start = mic.find(audio[:CHUNK])
    assert start >= 0 and start % CHUNK == 0, "audio that is not from the mic file"
    n = min(len(audio), len(mic) - start)
    assert audio[:n] == mic[start : start + n], "mic audio out of order or with a hole"
    return start, start + n


def _answers_in(played: Path) -> int:
    with wave.open(str(played), "rb") as w:
        pcm = w.readframes(w.getnframes())
    return plays_of(pcm, StandInConfig().answers[0].answer_pcm24k)  # a playback hole is no loss


def test_an_answer_with_a_playback_hole_is_one_play_and_a_cut_one_is_none() -> None:
    answer = StandInConfig().answers[0].answer_pcm24k
    gap = bytes(48000)
    with_hole = answer[:9600] + bytes(960) + answer[9600:]  # 20 ms underrun 0.2 s in
    assert plays_of(gap + answer + gap + with_hole + gap, answer) == 2
    assert plays_of(gap + answer[: len(answer) - 9600] + gap, answer) == 0  # 0.2 s short
    assert plays_of(answer + gap + answer + answer, answer) == 3


# ---- whole runs through the CLI ----------------------------------------------------------------


def test_a_go_away_during_a_question_moves_the_session_after_the_answer_losing_nothing(
    two_questions: tuple[Path, bytes, list[float]], shelf_video: Path, tmp_path: Path
) -> None:
    mic_path, mic, _ = two_questions
    go_away = ConnectionFaults(go_away_after_s=1.5, go_away_time_left_s=8.0)  # mid-question
    with StandIn.start_in_thread(_standin_config(go_away)) as standin:
        # All the mic goes up, so every sample can be checked (by default only speech).
        _run(standin, str(shelf_video), mic_path, tmp_path / "out.wav", *ALL_AUDIO)
        first, second = standin.server.connections
        issued_on_first = [h for h in standin.server.issued_handles if h.startswith("standin-0-")]
    # The client switched on its own, after the first answer and its handle, before the deadline.
    assert first.close_code == 1000 and not first.sent("close")
    assert [t.outcome for t in first.turns()] == ["completed"]
    assert first.sent("session_resumption_update")[-1].t_monotonic < second.sent()[0].t_monotonic
    assert second.resumed_with == issued_on_first[-1]
    assert [t.outcome for t in second.turns()] == ["completed"]
    # Every mic sample reached the endpoint exactly once, in order, across both connections.
    start1, end1 = _mic_offset(mic, first)
    start2, end2 = _mic_offset(mic, second)
    assert (start1, start2, end2) == (0, end1, len(mic))
    assert _answers_in(tmp_path / "out.wav") == 2


def test_a_question_cut_by_a_server_error_is_heard_whole_and_answered(
    two_questions: tuple[Path, bytes, list[float]], shelf_video: Path, tmp_path: Path
) -> None:
    mic_path, mic, (_, q1_end, q2_start, q2_end) = two_questions
    fault = ConnectionFaults(close_after_s=6.2)  # 1011 "Internal error encountered."
    with StandIn.start_in_thread(_standin_config(fault)) as standin:
        _run(standin, str(shelf_video), mic_path, tmp_path / "out.wav", *ALL_AUDIO)
        first, second = standin.server.connections
        handles = standin.server.issued_handles
    assert first.close_code == 1011
    assert second.resumed_with == handles[0]  # the handle issued after the first answer
    assert [t.outcome for t in first.turns()] == ["completed"]
    assert [t.outcome for t in second.turns()] == ["completed"]
    # The failure came mid-question; the new connection got everything sent since the handle
    # again (the resumed session does not hold it), so it heard the whole second question.
    start1, end1 = _mic_offset(mic, first)
    start2, end2 = _mic_offset(mic, second)
    assert start1 == 0 and end2 == len(mic)
    assert q2_start * RATE_HZ * 2 < end1 < q2_end * RATE_HZ * 2, "not cut mid-question"
    assert q1_end * RATE_HZ * 2 < start2 <= q2_start * RATE_HZ * 2, "overlap is since the handle"
    assert _answers_in(tmp_path / "out.wav") == 2


@pytest.mark.parametrize(
    ("key", "model", "fault", "fragment"),
    [
        ("wrong-key", DEFAULT_MODEL, None, "key was rejected"),
        (TEST_KEY, "gemini-0.1-gone", None, "not available"),
        (
            TEST_KEY,
            DEFAULT_MODEL,
            ConnectionFaults(close_after_s=0.5, close_code=1008, close_reason="Policy violation."),
            "1008",
        ),
    ],
    ids=["1007 bad key", "1008 unknown model", "1008 policy mid-session"],
)
def test_a_fatal_refusal_ends_the_run_at_once_without_retrying(
    tmp_path: Path, key: str, model: str, fault: ConnectionFaults | None, fragment: str
) -> None:
    config = _standin_config(*([fault] if fault else []))
    with StandIn.start_in_thread(config) as standin:
        t0 = time.monotonic()
        result = run_cli(
            "run", "--camera", "none", "--mic", str(ASSETS / "question.wav"),
            "--speaker", str(tmp_path / "o.wav"), "--model", model,
            "--speak-status", "off",  # the time is about retries, not the spoken reason
            env=standin_env(standin, key=key),
        )  # fmt: skip
        elapsed_s = time.monotonic() - t0
        attempts = len(standin.server.connections)
    assert result.code == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0].lower(), result.stderr
    assert attempts == 1, "a fatal refusal must not be retried"
    assert elapsed_s < 10


# ---- the link on its own -----------------------------------------------------------------------


pytestmark = pytest.mark.anyio


async def test_a_typed_question_goes_out_after_the_frame_it_is_about(
    tasks: list[asyncio.Task[Any]],
) -> None:
    """Queued before the connection is up: audio, a frame, then a question. The question must
    not overtake the frame (frames otherwise wait until the outbox is empty)."""
    async with StandIn(_standin_config()) as server:
        run = LinkRun(server)
        for _ in range(5):
            run.link.send_audio(bytes(640))
        run.link.send_frame(jpeg_frame(b"\xff\xd8 a shelf \xff\xd9"))
        run.link.send_text("where is the rice?")
        tasks += [asyncio.create_task(run.link.run()), asyncio.create_task(run.collect())]
        await run.until(lambda: run.of(TurnComplete))
        received = server.connections[-1].received()
    asked = [e for e in received if e.kind != "audio"]
    assert [(e.kind, e.text) for e in asked] == [
        ("video", "client_content"),  # the frame travels in the question's own turn, first
        ("client_content", "where is the rice?"),
    ]
    assert asked[0].data == b"\xff\xd8 a shelf \xff\xd9"


async def test_an_answer_cut_by_a_drop_is_announced_and_then_comes_again_whole(
    tasks: list[asyncio.Task[Any]],
) -> None:
    long_answer = ScriptedAnswer("q", "a long answer", synth_speech_pcm16(2.0, 24_000))
    drop = ConnectionFaults(drop_after_s=0.6)
    async with StandIn(_standin_config(drop, answers=(long_answer,), speed=1.0)) as server:
        run = LinkRun(server)
        tasks += [asyncio.create_task(run.link.run()), asyncio.create_task(run.collect())]
        run.link.send_text("where are the crackers?")
        await run.until(lambda: run.of(TurnComplete))
    kinds = [type(e).__name__ for e in run.events if not isinstance(e, AnswerAudio)]
    assert kinds.index("AnswerCut") < kinds.index("Reconnecting") < kinds.index("TurnComplete")
    cut_at = run.events.index(run.of(AnswerCut)[0])
    after_cut = b"".join(e.pcm for e in run.events[cut_at:] if isinstance(e, AnswerAudio))
    assert after_cut == long_answer.answer_pcm24k, "the answer comes again from its start"
    first, second = server.connections
    assert first.close_code == 1006  # cut without a close frame
    assert second.questions() == ["where are the crackers?"]  # the unanswered question, re-sent


async def test_a_go_away_that_cannot_wait_for_the_answer_cuts_it_and_asks_again(
    tasks: list[asyncio.Task[Any]],
) -> None:
    long_answer = ScriptedAnswer("q", "a long answer", synth_speech_pcm16(2.0, 24_000))
    hurry = ConnectionFaults(go_away_after_s=0.3, go_away_time_left_s=1.6)  # 0.1 s to switch
    async with StandIn(_standin_config(hurry, answers=(long_answer,), speed=1.0)) as server:
        run = LinkRun(server)
        tasks += [asyncio.create_task(run.link.run()), asyncio.create_task(run.collect())]
        run.link.send_frame(jpeg_frame(b"the only picture"))
        run.link.send_text("where are the crackers?")
        await run.until(lambda: run.of(TurnComplete))
    first, second = server.connections
    assert first.close_code == 1000 and not first.sent("close"), "closed by the client in time"
    assert second.frames() == [b"the only picture"], "the freshest frame goes out again"
    kinds = [type(e).__name__ for e in run.events if not isinstance(e, AnswerAudio)]
    assert kinds.index("GoAway") < kinds.index("AnswerCut") < kinds.index("TurnComplete")
    reconnecting = run.of(Reconnecting)[0]
    assert reconnecting.planned and reconnecting.delay_s == 0.0
    assert second.questions() == ["where are the crackers?"]
    assert second.turns()[0].outcome == "completed"


async def test_a_forgotten_session_falls_back_once_to_a_fresh_one(
    tasks: list[asyncio.Task[Any]],
) -> None:
    faults = (ConnectionFaults(close_after_s=1.0), ConnectionFaults(refuse_resumption=True))
    async with StandIn(_standin_config(*faults, speed=16.0)) as server:
        run = LinkRun(server)
        tasks += [asyncio.create_task(run.link.run()), asyncio.create_task(run.collect())]
        run.link.send_text("where is the bread?")
        await run.until(lambda: len(run.of(Connected)) == 2)
        run.link.send_text("and the milk?")
        await run.until(lambda: len(run.of(TurnComplete)) == 2)
    first, refused, fresh = server.connections
    assert refused.resumed_with == server.issued_handles[0] and refused.close_code == 1007
    assert fresh.resumed_with is None and fresh.questions() == ["and the milk?"]
    last = run.of(Connected)[-1]
    assert last.context_lost and not last.resumed


async def test_an_endpoint_that_stays_down_is_reported_and_given_up_on(
    tasks: list[asyncio.Task[Any]],
) -> None:
    down = ConnectionFaults(refuse_http_status=503)
    faults = (ConnectionFaults(close_after_s=0.3), *[down] * 50)
    async with StandIn(_standin_config(*faults)) as server:
        # No acknowledgement probe: a late ACK of the setup could count as the connection
        # working (it did, on a loaded machine), and this one must be one that never did.
        run = LinkRun(server, max_outage_s=2.5, ack_probe=lambda: None)
        collector = asyncio.create_task(run.collect())
        tasks.append(collector)
        with pytest.raises(UserError, match=r"Cannot reconnect .* 503"):
            async with asyncio.timeout(10):
                await run.link.run()
        await asyncio.sleep(0.05)
    retries = run.of(Reconnecting)
    assert len(retries) >= 3
    first_retry = retries[0].attempt  # 2: a connection that failed at once continues the outage
    assert retries[0].again and not any(r.again for r in retries[1:]), "said once"
    assert [r.attempt for r in retries] == list(range(first_retry, first_retry + len(retries)))
    assert all(a.outage_s < b.outage_s for a, b in zip(retries, retries[1:], strict=False))
    assert retries[-1].gives_up_in_s < retries[0].gives_up_in_s <= 2.5
    assert len(server.connections) == 1 + len(retries)  # the first, then one per retry


@pytest.mark.parametrize(("buffer_s", "kept"), [(0.1, slice(7, None)), (0.3, slice(1, None))])
def test_a_long_outage_keeps_the_newest_audio_and_resends_since_the_handle_in_order(
    buffer_s: float, kept: slice
) -> None:
    """Sent since the handle (then lost with the connection) and captured during the
    outage count together against the buffer: what goes out afterwards is the newest audio,
    contiguous, never older audio glued to newer across a hole."""
    outbox = Outbox(max_audio_s=buffer_s, replay_s=0.06)
    chunks = [Audio(bytes([i]) * CHUNK) for i in range(12)]
    for chunk in chunks[:4]:  # sent on a connection that then fails
        outbox.put(chunk)
        assert outbox.take() is chunk
        outbox.sent()
    for chunk in chunks[4:]:  # captured during the outage: 0.16 s
        outbox.put(chunk)
    assert outbox.replay() == pytest.approx(0.06)  # the newest 60 ms sent since the handle
    order = []
    while (item := outbox.take()) is not None:
        order.append(item)
        outbox.sent()
    assert order == chunks[kept]
    assert outbox.audio_dropped_s == pytest.approx((len(chunks) - 1 - len(order)) * 0.02)


# ---- camera and sound devices ------------------------------------------------------------------


@pytest.fixture
def mjpeg() -> Iterator[MjpegServer]:
    server = MjpegServer()
    yield server
    server.close()


def _outage(stream: MjpegServer, after: Any, down_s: float) -> threading.Thread:
    def run() -> None:
        deadline = time.monotonic() + 20
        while not after() and time.monotonic() < deadline:
            time.sleep(0.05)
        stream.up = False
        time.sleep(down_s)
        stream.up = True

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_camera_stream_that_drops_and_comes_back_does_not_end_the_session(
    mjpeg: MjpegServer, two_questions: tuple[Path, bytes, list[float]], tmp_path: Path
) -> None:
    mic_path, _, _ = two_questions
    with StandIn.start_in_thread(_standin_config()) as standin:

        def conns() -> list[ConnectionRecord]:
            return standin.server.connections

        outage = _outage(mjpeg, lambda: bool(conns()) and len(conns()[-1].frames()) >= 2, 3.0)
        # Pictures on the sampler's timer, so the outage shows as a pause in them.
        _run(standin, mjpeg.url, mic_path, tmp_path / "out.wav", "--fps", "2", *TIMER)
        outage.join()
        conn = standin.server.connections[-1]
        frames = conn.received("video")
    assert conn.turns_completed == 2, "audio went on while the camera was away"
    images = [cv2.imdecode(np.frombuffer(e.data, np.uint8), cv2.IMREAD_COLOR) for e in frames]
    numbers = [read_frame_number(image) for image in images if image is not None]
    assert len(numbers) == len(frames), "every frame sent is a JPEG of the shelf"
    gaps = np.diff([e.t_monotonic for e in frames])
    biggest = int(np.argmax(gaps))
    assert gaps[biggest] > 2.0, "the outage shows as a pause in frames"
    assert len(frames) - biggest - 1 >= 3, "frames resumed after the stream came back"
    assert numbers[biggest + 1] > numbers[biggest], "and they are new frames"


async def test_a_dropped_camera_stream_is_reported_lost_then_back(mjpeg: MjpegServer) -> None:
    camera = open_camera(mjpeg.url)
    assert camera is not None
    camera.start()
    try:
        changes = camera.status_changes(poll_s=0.1)
        await asyncio.sleep(0.5)
        mjpeg.up = False
        async with asyncio.timeout(10):
            lost = await anext(changes)
        mjpeg.up = True
        async with asyncio.timeout(15):
            back = await anext(changes)
        assert lost.stalled and not back.stalled and back.outage_s > 0.2
        assert await camera.frame(timeout_s=2.0) is not None
    finally:
        camera.close()


class FakePortAudio:
    """Stands in for the sounddevice module (no sound hardware here): streams call back every
    20 ms from a thread until `unplug` stops them, with or without PortAudio's finished
    callback (host APIs differ: some end the stream, some just stop calling)."""

    PortAudioError = RuntimeError

    def __init__(self, blocks_before_unplug: int, finish: bool) -> None:
        self._blocks = blocks_before_unplug
        self._finish = finish
        self.closed = threading.Event()

    def check_input_settings(self, **kwargs: Any) -> None:
        pass

    check_output_settings = check_input_settings

    def RawInputStream(self, **kwargs: Any) -> FakePortAudio._Stream:  # noqa: N802
        return self._Stream(self, kwargs, "in")

    def RawOutputStream(self, **kwargs: Any) -> FakePortAudio._Stream:  # noqa: N802
        return self._Stream(self, kwargs, "out")

    class _Stream:
        def __init__(self, owner: FakePortAudio, args: dict[str, Any], kind: str) -> None:
            self._owner, self._args, self._kind = owner, args, kind

        def start(self) -> None:
            threading.Thread(target=self._run, daemon=True).start()

        def _run(self) -> None:
            frames = int(self._args["samplerate"] * 0.02)
            info = SimpleNamespace(currentTime=0, inputBufferAdcTime=0, outputBufferDacTime=0)
            for _ in range(self._owner._blocks):
                if self._owner.closed.is_set():
                    return
                data = bytearray(frames * 2 * self._args["channels"])
                self._args["callback"](data, frames, info, None)
                time.sleep(0.02)
            if self._owner._finish and self._args.get("finished_callback"):
                self._args["finished_callback"]()

        def abort(self, ignore_errors: bool = True) -> None:
            self._owner.closed.set()

        close = abort


DEVICE_IN = AudioDeviceInfo("USB headset", 3, "in", 1, 16000.0, True)
DEVICE_OUT = AudioDeviceInfo("USB headset", 3, "out", 1, 24000.0, True)


@pytest.mark.parametrize("finish", [True, False], ids=["stream ends", "callbacks stop"])
async def test_an_unplugged_microphone_ends_the_run_with_a_clear_message(finish: bool) -> None:
    portaudio: Any = FakePortAudio(10, finish)
    mic = DeviceMic(DEVICE_IN, sd=portaudio, stall_timeout_s=0.5)
    await mic.start()
    chunks = 0
    with pytest.raises(UserError, match=r"microphone USB headset \(#3\) .*unplugged.*--mic"):
        async with asyncio.timeout(5):
            while await mic.read() is not None:
                chunks += 1
    mic.close()
    assert chunks == 10
    assert await mic.read() is None  # closed: no error, no hang


@pytest.mark.parametrize("finish", [True, False], ids=["stream ends", "callbacks stop"])
async def test_an_unplugged_speaker_ends_the_run_with_a_clear_message(finish: bool) -> None:
    portaudio: Any = FakePortAudio(5, finish)
    speaker = DeviceSpeaker(DEVICE_OUT, sd=portaudio, stall_timeout_s=0.5)
    speaker.start()
    speaker.play(bytes(48_000))  # 1 s of answer: more than plays before the unplug
    with pytest.raises(UserError, match=r"speaker USB headset \(#3\) .*unplugged.*--speaker"):
        async with asyncio.timeout(5):
            await speaker.drained()
    with pytest.raises(UserError):
        speaker.play(bytes(960))
    speaker.close()
    await speaker.drained()  # closed: returns at once
