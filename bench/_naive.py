"""The usual way, for comparison: Google's Live API starter script, reshaped for files.

Kept from the starter: one shared `asyncio.Queue(maxsize=5)` for audio and video; 1024-sample
mic reads (64 ms) through `asyncio.to_thread`; a camera loop that reads a frame, makes a
1024 px JPEG and then sleeps one second (`frames="1fps"`), or sends every frame at the
camera's rate (`frames="camera"`, the first prototype's shape); answer audio through an
unbounded queue into a blocking speaker write, emptied whenever a turn ends. Replaced, so
that it runs here: PyAudio by a real-time WAV mic and the shelfsight WAV speaker (written to
from a worker thread, blocking while more than 100 ms is queued, like PortAudio's blocking
write), PIL by OpenCV, the deprecated `session.send` by `send_realtime_input`.

    python -m bench._naive --mic q.wav --camera shelf.avi --speaker out.wav [--frames camera]
    (key and endpoint from GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL, SSL_CERT_FILE)
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
from google.genai import types

from shelfsight.live.setup import Endpoint, live_config, make_client
from shelfsight.media.speaker import SpeakerSink, WavSpeaker
from shelfsight.media.wav import load_mic_pcm
from shelfsight.session.prompt import load_system_prompt
from shelfsight.settings import Settings, api_key_from_env

CHUNK_SIZE = 1024  # samples per mic read, as in the starter
MIC_RATE_HZ = 16000
CAMERA_FPS = 30.0
WRITE_BUFFER_S = 0.1

MicHook = Callable[[float, bytes], None]  # (capture time of the first sample, pcm)


def get_frame(cap: cv2.VideoCapture) -> bytes | None:
    """The starter's _get_frame: read, RGB, thumbnail to 1024 px, JPEG (worker thread)."""
    ok, frame = cap.read()
    if not ok:
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # a file, not a camera: loop it
        ok, frame = cap.read()
        if not ok:
            return None
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    scale = min(1.0, 1024 / max(width, height))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (round(width * scale), round(height * scale)))
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return jpeg.tobytes() if ok else None


class Starter:
    def __init__(self, session: Any, speaker: SpeakerSink, mic_hook: MicHook | None = None) -> None:
        self.session = session
        self.speaker = speaker
        self.mic_hook = mic_hook
        self.out_queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=5)
        self.audio_in_queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.flushed_bytes = 0  # answer audio dropped by the end-of-turn flush

    async def send_realtime(self) -> None:
        while True:
            kind, data = await self.out_queue.get()
            if kind == "audio":
                blob = types.Blob(data=data, mime_type="audio/pcm;rate=16000")
                await self.session.send_realtime_input(audio=blob)
            else:
                await self.session.send_realtime_input(
                    video=types.Blob(data=data, mime_type="image/jpeg")
                )

    async def listen_audio(self, mic_wav: Path) -> None:
        """Reads the WAV as PyAudio would read a mic: each read returns when 64 ms are in."""
        pcm = load_mic_pcm(mic_wav)
        chunk_bytes = CHUNK_SIZE * 2
        t0 = time.monotonic()

        def read(k: int) -> bytes:
            time.sleep(max(0.0, t0 + (k + 1) * CHUNK_SIZE / MIC_RATE_HZ - time.monotonic()))
            return pcm[k * chunk_bytes : (k + 1) * chunk_bytes].ljust(chunk_bytes, b"\0")

        for k in range(len(pcm) // chunk_bytes):
            data = await asyncio.to_thread(read, k)
            if self.mic_hook is not None:
                self.mic_hook(t0 + k * CHUNK_SIZE / MIC_RATE_HZ, data)
            await self.out_queue.put(("audio", data))

    async def get_frames(self, video: Path, at_camera_rate: bool) -> None:
        cap = await asyncio.to_thread(cv2.VideoCapture, str(video))
        t_next = time.monotonic()
        try:
            while True:
                frame = await asyncio.to_thread(get_frame, cap)
                if frame is None:
                    break
                if at_camera_rate:  # a device delivers 30 fps; a file must be paced to it
                    t_next += 1 / CAMERA_FPS
                    await asyncio.sleep(max(0.0, t_next - time.monotonic()))
                else:
                    await asyncio.sleep(1.0)
                await self.out_queue.put(("video", frame))
        finally:
            cap.release()

    async def receive_audio(self) -> None:
        while True:
            async for response in self.session.receive():
                if data := response.data:
                    self.audio_in_queue.put_nowait(data)
            # The starter empties the queue when a turn ends (meant for interruptions).
            while not self.audio_in_queue.empty():
                self.flushed_bytes += len(self.audio_in_queue.get_nowait())

    async def play_audio(self) -> None:
        def write(pcm: bytes) -> None:
            self.speaker.play(pcm)
            while self.speaker.pending_s > WRITE_BUFFER_S:
                time.sleep(0.005)

        while True:
            await asyncio.to_thread(write, await self.audio_in_queue.get())


async def run_starter(
    *,
    client: Any,
    model: str,
    config: types.LiveConnectConfig,
    mic_wav: Path,
    video: Path | None,
    speaker: SpeakerSink,
    frames: str = "1fps",
    tail_s: float = 2.0,
    mic_hook: MicHook | None = None,
) -> Starter:
    """Runs until the mic file has been streamed, then `tail_s` more; returns the starter."""
    async with client.aio.live.connect(model=model, config=config) as session:
        starter = Starter(session, speaker, mic_hook)
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(starter.send_realtime()),
                tg.create_task(starter.receive_audio()),
                tg.create_task(starter.play_audio()),
            ]
            if video is not None:
                tasks.append(tg.create_task(starter.get_frames(video, frames == "camera")))
            await starter.listen_audio(mic_wav)
            await asyncio.sleep(tail_s)
            for task in tasks:
                task.cancel()
    return starter


async def main_async(args: argparse.Namespace) -> None:
    settings = Settings()
    client = make_client(api_key_from_env(), Endpoint())
    speaker = WavSpeaker(args.speaker)
    speaker.start()
    try:
        await run_starter(
            client=client,
            model=settings.model,
            config=live_config(settings, load_system_prompt(None), None),
            mic_wav=args.mic,
            video=args.camera,
            speaker=speaker,
            frames=args.frames,
        )
    finally:
        speaker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mic", type=Path, required=True)
    parser.add_argument("--camera", type=Path)
    parser.add_argument("--speaker", type=Path, required=True)
    parser.add_argument("--frames", choices=("1fps", "camera"), default="1fps")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
