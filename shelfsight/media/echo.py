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

from shelfsight.errors import UserError
from shelfsight.media.mic import MicChunk
from shelfsight.media.pcm import MIC_RATE_HZ, SPEAKER_RATE_HZ

FRAME_S = 0.01  # the native module's frame
MIC_FRAME_BYTES = int(MIC_RATE_HZ * FRAME_S) * 2  # 320
REF_FRAME_SAMPLES = int(SPEAKER_RATE_HZ * FRAME_S)  # 240
REF_QUEUE_BLOCKS = 500  # speaker blocks waiting for the mic path: 2.5 s of 5 ms device blocks
REF_JITTER_S = 0.02  # timestamp wobble absorbed as is; a larger jump is a gap or an overlap
REF_MAX_LAG_S = 0.1  # reference later than this behind the mic timeline is skipped
REF_MAX_GAP_S = 0.5  # a longer pause in the speaker's timestamps starts the timeline afresh
REF_LEAD_S = 0.02  # reference fed up to this far ahead of the mic: headroom for timestamp errors
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

    def process(self, pcm: bytes, t_capture: float) -> bytes:
        """Mic path: 16 kHz mono PCM16 captured from monotonic `t_capture` on, echo removed.

        Same size out; one thread, chunks in capture order, a whole number of 10 ms (every
        MicSource gives 20 ms). The cleaned audio lags the input by about 14 ms (AEC3 8 ms,
        noise suppression 6 ms). Disabled, the very same bytes come back.
        """
        if not self.enabled:
            return pcm
        if len(pcm) % MIC_FRAME_BYTES:
            raise ValueError(f"mic chunk of {len(pcm)} bytes is not a multiple of 10 ms")
        self._take_incoming()
        out = bytearray(pcm)
        for start in range(0, len(out), MIC_FRAME_BYTES):
            t_frame = t_capture + start / 2 / MIC_RATE_HZ
            for ref in self._timeline.frames_for(t_frame):
                self._apm.process_reverse_stream(
                    self._frame_cls(ref, SPEAKER_RATE_HZ, 1, REF_FRAME_SAMPLES)
                )
            out[start : start + MIC_FRAME_BYTES] = self._process_mic_frame(
                out[start : start + MIC_FRAME_BYTES]
            )
            self._mic_frames += 1
        return bytes(out)

    def process_chunk(self, chunk: MicChunk) -> MicChunk:
        """`process` for a whole MicChunk: same `t_capture`, cleaned `pcm`."""
        return replace(chunk, pcm=self.process(chunk.pcm, chunk.t_capture))

    @property
    def stats(self) -> EchoStats:
        """Read on the mic path's thread."""
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
    REF_JITTER_S; a later block leaves a gap filled with silence (up to REF_MAX_GAP_S, past
    which the stream starts afresh), an earlier one is trimmed.
    """

    def __init__(self) -> None:
        self._pending = np.zeros(0, np.int16)
        self._t_head: float | None = None  # play time of _pending[0]
        self.frames_fed = 0
        self.late_frames = 0
        self.dropped_s = 0.0

    def add(self, samples: np.ndarray, t_played: float) -> None:
        gap_s = 0.0 if self._t_head is None else t_played - self._t_end()
        if self._t_head is None or gap_s > REF_MAX_GAP_S:  # first block, or speaker reopened
            self.dropped_s += len(self._pending) / SPEAKER_RATE_HZ
            self._pending, self._t_head = samples, t_played
            return
        gap = round(gap_s * SPEAKER_RATE_HZ)
        if gap_s > REF_JITTER_S:
            samples = np.concatenate([np.zeros(gap, np.int16), samples])
        elif gap_s < -REF_JITTER_S:
            samples = samples[-gap:]  # overlaps what we have (or already fed): keep the rest
        self._pending = np.concatenate([self._pending, samples])

    def frames_for(self, t_mic: float) -> list[bytes]:
        """The 10 ms frames (bytes) to feed with the mic frame captured at `t_mic`: those
        whose play time starts by `t_mic + REF_LEAD_S`, in order."""
        if self._t_head is None:
            return []
        if self._t_head < t_mic - REF_MAX_LAG_S:  # stale backlog, or a gap in the mic
            self._skip(t_mic - self._t_head)
        frames = []
        while self._t_head <= t_mic + REF_LEAD_S + 1e-6 and len(self._pending) >= REF_FRAME_SAMPLES:
            if self._t_head < t_mic - FRAME_S - 1e-6:  # played before this mic frame began
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
