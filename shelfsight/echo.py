"""Echo cancellation: the answer played on the speaker, taken back out of the microphone.

WebRTC's audio processing module (AEC3 with noise suppression and a high-pass filter, through
the `livekit` package) does the signal work. This module's job is feeding it in step: the speaker
thread hands over exactly what it played with its play time (`on_played`), the mic path hands
over each chunk with its capture time (`process`), and both are paired on one timeline, so the
echo canceller only has to find the acoustic path and what the device timestamps got wrong,
never the speaker's buffering or the mic's queueing.

Threads: `on_played` on the speaker's audio thread (appends to a bounded queue under a lock held
for one append); everything else on the mic path's thread, which alone touches the native module.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from shelfsight.audio import MIC_RATE_HZ, SPEAKER_RATE_HZ, MicChunk
from shelfsight.errors import UserError

FRAME_S = 0.01  # the native module's frame
MIC_FRAME_BYTES = int(MIC_RATE_HZ * FRAME_S) * 2  # 320
REF_FRAME_SAMPLES = int(SPEAKER_RATE_HZ * FRAME_S)  # 240
REF_QUEUE_BLOCKS = 200  # speaker blocks waiting for the mic path (~4 s of 20 ms blocks)
REF_JITTER_S = 0.02  # timestamp wobble absorbed as is; a larger jump is a gap or an overlap
REF_MAX_LAG_S = 0.1  # reference later than this behind the mic timeline is skipped
REF_LEAD_S = 0.01  # reference fed this far ahead of the mic: headroom for timestamp errors
MAX_STREAM_DELAY_MS = 500  # the native module refuses more; AEC3 searches about that far itself


@dataclass(frozen=True)
class EchoStats:
    """Counters for the log; `ref_late_frames` counts 10 ms reference frames fed after the mic
    frame they belonged with (a speaker thread that reports late), `ref_dropped_s` reference
    audio thrown away (queue overflow, stale start-up backlog, mic gaps)."""

    mic_frames: int
    ref_frames: int
    ref_late_frames: int
    ref_dropped_s: float


class EchoCanceller:
    """Cleans 16 kHz mono PCM16 mic chunks of what the 24 kHz speaker played.

    `device_latency_ms`: how much later than its timestamps the echo reaches the mic, beyond
    what `t_played`/`t_capture` already account for: 0 when the device reports its latencies
    (PortAudio's DAC/ADC times, WAV sinks), a guess of the unreported part otherwise. It is only
    a starting hint (AEC3 finds the real delay within about 500 ms). `enabled=False` is a
    byte-exact pass-through for headphones (`--no-aec`) and needs no native library.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        device_latency_ms: float = 0.0,
        noise_suppression: bool = True,
        high_pass_filter: bool = True,
        auto_gain_control: bool = False,
    ) -> None:
        self.enabled = enabled
        self._stream_delay_ms = int(
            min(MAX_STREAM_DELAY_MS, max(0.0, device_latency_ms + REF_LEAD_S * 1000))
        )
        self._lock = threading.Lock()
        self._incoming: deque[tuple[float, bytes]] = deque()  # speaker thread -> mic path
        self._queue_dropped_s = 0.0  # under the lock
        self._timeline = _ReferenceTimeline()  # mic path only
        self._mic_frames = 0
        self._apm: Any = None
        self._frame_cls: Any = None
        if enabled:
            self._apm, self._frame_cls = _open_apm(
                noise_suppression, high_pass_filter, auto_gain_control
            )

    def on_played(self, pcm24k: bytes, t_played: float) -> None:
        """Speaker audio thread: 24 kHz mono PCM16 as heard from monotonic time `t_played` on.

        Silence blocks too: they keep the timeline whole. Overflow drops the oldest block.
        """
        if not self.enabled or not pcm24k:
            return
        with self._lock:
            if len(self._incoming) >= REF_QUEUE_BLOCKS:
                self._queue_dropped_s += len(self._incoming.popleft()[1]) / 2 / SPEAKER_RATE_HZ
            self._incoming.append((t_played, pcm24k))

    def process(self, chunk: MicChunk) -> MicChunk:
        """Mic path: the chunk with the echo removed, same size and `t_capture`.

        The chunk must be a whole number of 10 ms (20 ms from every MicSource). Disabled, the
        very same chunk comes back.
        """
        if not self.enabled:
            return chunk
        if len(chunk.pcm) % MIC_FRAME_BYTES:
            raise ValueError(f"mic chunk of {len(chunk.pcm)} bytes is not a multiple of 10 ms")
        self._take_incoming()
        out = bytearray(chunk.pcm)
        for start in range(0, len(out), MIC_FRAME_BYTES):
            t_frame = chunk.t_capture + start / 2 / MIC_RATE_HZ
            for ref in self._timeline.frames_until(t_frame + REF_LEAD_S):
                self._apm.process_reverse_stream(
                    self._frame_cls(ref, SPEAKER_RATE_HZ, 1, REF_FRAME_SAMPLES)
                )
            out[start : start + MIC_FRAME_BYTES] = self._process_mic_frame(
                out[start : start + MIC_FRAME_BYTES]
            )
            self._mic_frames += 1
        return replace(chunk, pcm=bytes(out))

    @property
    def stats(self) -> EchoStats:
        with self._lock:
            queue_dropped_s = self._queue_dropped_s
        t = self._timeline
        return EchoStats(
            self._mic_frames, t.frames_fed, t.late_frames, queue_dropped_s + t.dropped_s
        )

    def _take_incoming(self) -> None:
        with self._lock:
            blocks = list(self._incoming)
            self._incoming.clear()
        for t_played, pcm in blocks:
            self._timeline.add(np.frombuffer(pcm, "<i2"), t_played)

    def _process_mic_frame(self, pcm: bytearray) -> bytes:
        frame = self._frame_cls(pcm, MIC_RATE_HZ, 1, MIC_FRAME_BYTES // 2)
        self._apm.set_stream_delay_ms(self._stream_delay_ms)  # required before every frame
        self._apm.process_stream(frame)
        return bytes(frame.data.cast("B"))


def _open_apm(noise_suppression: bool, high_pass: bool, auto_gain: bool) -> tuple[Any, Any]:
    """The native module and its frame class; imported here so pass-through never loads it."""
    try:
        from livekit.rtc import AudioFrame, AudioProcessingModule
    except ImportError as e:
        raise UserError(
            f"echo cancellation needs the `livekit` package ({e}); install it with "
            "`pip install livekit`, or use headphones and pass --no-aec"
        ) from None
    apm = AudioProcessingModule(
        echo_cancellation=True,
        noise_suppression=noise_suppression,
        high_pass_filter=high_pass,
        auto_gain_control=auto_gain,
    )
    return apm, AudioFrame


class _ReferenceTimeline:
    """What the speaker played, as one contiguous 24 kHz stream with a play time; mic path only.

    Blocks are appended as they come while their timestamps agree with the stream within
    REF_JITTER_S; a later block leaves a gap filled with silence, an earlier one is trimmed.
    `frames_until(t)` hands out 10 ms frames whose play time has begun by `t`.
    """

    def __init__(self) -> None:
        self._pending = np.zeros(0, np.int16)
        self._t_head: float | None = None  # play time of _pending[0]
        self.frames_fed = 0
        self.late_frames = 0
        self.dropped_s = 0.0

    def add(self, samples: np.ndarray, t_played: float) -> None:
        if self._t_head is None:
            self._t_head = t_played
        gap = round((t_played - self._t_end()) * SPEAKER_RATE_HZ)
        if gap > REF_JITTER_S * SPEAKER_RATE_HZ:
            samples = np.concatenate([np.zeros(gap, np.int16), samples])
        elif gap < -REF_JITTER_S * SPEAKER_RATE_HZ:
            samples = samples[-gap:]  # overlaps what we have (or already fed): keep the rest
        self._pending = np.concatenate([self._pending, samples])

    def frames_until(self, t: float) -> list[bytes]:
        """10 ms frames (bytes) that start at or before mic-timeline time `t`, in order."""
        if self._t_head is None:
            return []
        if self._t_head < t - REF_MAX_LAG_S:  # stale backlog or a gap in the mic: jump ahead
            self._skip(t - self._t_head)
        frames = []
        while self._t_head <= t + 1e-6 and len(self._pending) >= REF_FRAME_SAMPLES:
            if self._t_head < t - FRAME_S + 1e-6:
                self.late_frames += 1
            frames.append(self._pending[:REF_FRAME_SAMPLES].tobytes())
            self._pending = self._pending[REF_FRAME_SAMPLES:]
            self._t_head += FRAME_S
        self.frames_fed += len(frames)
        return frames

    def _t_end(self) -> float:
        assert self._t_head is not None
        return self._t_head + len(self._pending) / SPEAKER_RATE_HZ

    def _skip(self, seconds: float) -> None:
        assert self._t_head is not None
        n = round(seconds * SPEAKER_RATE_HZ)
        self.dropped_s += min(n, len(self._pending)) / SPEAKER_RATE_HZ
        self._pending = self._pending[n:]
        self._t_head += seconds
