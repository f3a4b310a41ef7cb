"""Sound devices through sounddevice / PortAudio, behind the same contracts as the WAV files.

sounddevice is imported only when a device is asked for: its import raises OSError when the
PortAudio library is missing, and a WAV-only run must not need it. PortAudio calls our callbacks
on its own thread; they hand mic chunks to the loop with `loop.call_soon_threadsafe` and take the
speaker's jitter buffer lock only for a copy. Resampling there uses soxr "LQ": 16-bit precision,
a few ms of delay, plenty for speech.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
import soxr

from shelfsight.errors import UserError
from shelfsight.media.alsa_log import route_alsa_errors_to_log
from shelfsight.media.mic import MicChunk
from shelfsight.media.off_loop import off_loop
from shelfsight.media.pcm import (
    CHUNK_S,
    MIC_CHUNK_BYTES,
    MIC_RATE_HZ,
    SPEAKER_BLOCK_BYTES,
    SPEAKER_RATE_HZ,
    float_to_pcm16,
    mono_float,
    to_mono_pcm16,
)
from shelfsight.media.speaker import BufferedSink, JitterBuffer, Overlay, PlayedCallback, mix


@dataclass(frozen=True)
class AudioDeviceInfo:
    name: str
    index: int
    kind: Literal["in", "out"]
    channels: int
    default_rate_hz: float
    is_default: bool


PORTAUDIO_MISSING = (
    "PortAudio is not installed (needed for microphone and speaker devices): on Debian/Ubuntu "
    "`sudo apt-get install libportaudio2`, on macOS `brew install portaudio`; "
    "or use a WAV file with --mic/--speaker"
)
MIC_QUEUE_CHUNKS = 50  # 1 s of mic audio waiting for the loop; then the oldest chunk is dropped
STALL_TIMEOUT_S = 3.0  # a started stream silent this long is gone (unplugged, taken, asleep)
# PortAudio's default "low" latency underruns through PulseAudio/PipeWire's ALSA plugin; 0.1 s
# did not (measured on a real PulseAudio server, tests/test_pulse.py).
OUTPUT_LATENCY_S = 0.1


def _release(stream: Any) -> None:
    """Stop a PortAudio stream at once (no draining) and give the device back."""
    stream.abort(ignore_errors=True)
    stream.close(ignore_errors=True)


def _gone(kind: str, name: str, how: str) -> UserError:
    flag = "--mic" if kind == "microphone" else "--speaker"
    return UserError(
        f"The {kind} {name} {how} (unplugged, or taken by another app?): plug it back in and "
        f"start again, or choose another with {flag}."
    )


def import_sounddevice() -> ModuleType:
    """sounddevice, with libasound's messages routed into the log before PortAudio starts."""
    route_alsa_errors_to_log()
    try:
        import sounddevice
    except OSError:
        raise UserError(PORTAUDIO_MISSING) from None
    return sounddevice


def list_devices() -> list[AudioDeviceInfo]:
    """Every input and output device; a duplex device appears once per kind."""
    sd = import_sounddevice()
    default_in, default_out = (int(i) for i in sd.default.device)
    kinds: tuple[tuple[Literal["in", "out"], str, int], ...] = (
        ("in", "max_input_channels", default_in),
        ("out", "max_output_channels", default_out),
    )
    return [
        AudioDeviceInfo(d["name"], d["index"], kind, d[key], d["default_samplerate"], i == default)
        for i, d in enumerate(sd.query_devices())
        for kind, key, default in kinds
        if d[key] > 0
    ]


def find_device(spec: str, kind: Literal["in", "out"]) -> AudioDeviceInfo:
    """`default`, an index, or a case-insensitive name substring (an exact name wins)."""
    noun, flag = ("microphone", "--mic") if kind == "in" else ("speaker", "--speaker")
    devices = [d for d in list_devices() if d.kind == kind]
    if not devices:
        raise UserError(f"no {noun}s found on this machine; use a WAV file: {flag} FILE.wav")
    if spec == "default":
        return next((d for d in devices if d.is_default), devices[0])
    if spec.isdigit():
        matches = [d for d in devices if d.index == int(spec)]
    else:
        matches = [d for d in devices if spec.lower() in d.name.lower()]
    if not matches:
        available = "; ".join(f"{d.index}: {d.name}" for d in devices)
        raise UserError(
            f"no {noun} matches {spec!r}; available {noun}s: {available} "
            f"(or give a .wav path to {flag})"
        )
    return next((d for d in matches if d.name.lower() == spec.lower()), matches[0])


def pick_format(
    sd: ModuleType, device: AudioDeviceInfo, rate_hz: int, channels_wanted: int = 1
) -> tuple[int, int]:
    """(rate_hz, channels) to open int16 with: `channels_wanted` at `rate_hz` if accepted,
    else mono, else the device's own."""
    check = sd.check_input_settings if device.kind == "in" else sd.check_output_settings
    default_rate = int(device.default_rate_hz)
    wanted = min(channels_wanted, max(1, device.channels))
    for rate, channels in (
        (rate_hz, wanted),
        (default_rate, wanted),
        (rate_hz, 1),
        (default_rate, 1),
        (default_rate, min(2, device.channels)),
        (default_rate, device.channels),
    ):
        try:
            check(device=device.index, channels=channels, dtype="int16", samplerate=rate)
            return rate, channels
        except (sd.PortAudioError, ValueError):
            continue
    return default_rate, device.channels  # let opening the stream report what is wrong


def _stream_lag_s(later: float, earlier: float, fallback_s: float) -> float:
    """A PortAudio stream-time difference, or the fallback where the host API reports none."""
    lag = later - earlier
    return lag if earlier > 0 and 0 <= lag < 1 else fallback_s


class MicConverter:
    """Device blocks (any rate, interleaved int16) -> 20 ms 16 kHz mono chunks; one thread only."""

    def __init__(self, rate_hz: int, channels: int) -> None:
        self._rate_hz = rate_hz
        self._channels = channels
        self._resampler = (
            None
            if rate_hz == MIC_RATE_HZ
            else soxr.ResampleStream(rate_hz, MIC_RATE_HZ, 1, dtype="float32", quality="LQ")
        )
        self._pending = bytearray()

    def feed(self, block: bytes, t_first: float) -> list[MicChunk]:
        """`t_first`: monotonic capture time of the block's first sample."""
        t_end = t_first + len(block) / (2 * self._channels) / self._rate_hz
        if self._resampler is None:
            self._pending += to_mono_pcm16(block, self._channels)
        else:
            mono = self._resampler.resample_chunk(mono_float(block, self._channels))
            self._pending += float_to_pcm16(mono)
            t_end -= self._resampler.delay() / MIC_RATE_HZ
        chunks = []
        while len(self._pending) >= MIC_CHUNK_BYTES:
            t_capture = t_end - len(self._pending) / 2 / MIC_RATE_HZ
            chunks.append(MicChunk(bytes(self._pending[:MIC_CHUNK_BYTES]), t_capture))
            del self._pending[:MIC_CHUNK_BYTES]
        return chunks


class DeviceMic:
    """A sound input device: PortAudio's thread hands 20 ms chunks to the loop.

    At most MIC_QUEUE_CHUNKS wait for the reader; past that the oldest is dropped and counted in
    `dropped_chunks`. `read()` returns None after `close()`, and raises UserError when the
    device goes away: PortAudio ends the stream by itself, or stops calling back for
    `stall_timeout_s` (what an unplugged device does, depending on the host API). `sd` is the
    sounddevice module (imported on start when not given). Loop thread only, apart from the
    callback.
    """

    def __init__(
        self,
        device: AudioDeviceInfo,
        sd: ModuleType | None = None,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> None:
        self.name = f"{device.name} (#{device.index})"
        self.dropped_chunks = 0
        self.xruns = 0  # PortAudio input overflows (written by its thread, read at the end)
        self._device = device
        self._sd = sd
        self._stall_timeout_s = stall_timeout_s
        # None marks the end of the stream: after close() a normal end, before it a lost device.
        self._queue: asyncio.Queue[MicChunk | None] = asyncio.Queue(MIC_QUEUE_CHUNKS)
        self._stream: Any = None
        self._closed = False

    @classmethod
    def find(cls, spec: str) -> DeviceMic:
        return cls(find_device(spec, "in"))

    async def start(self) -> None:
        sd = self._sd or import_sounddevice()
        loop = asyncio.get_running_loop()
        rate, channels = pick_format(sd, self._device, MIC_RATE_HZ)
        converter = MicConverter(rate, channels)

        def hand_over(item: MicChunk | None) -> None:
            try:
                loop.call_soon_threadsafe(self._put, item)
            except RuntimeError:  # the loop has closed: the program is ending
                pass

        def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
            if status is not None and status.input_overflow:
                self.xruns += 1
            lag = _stream_lag_s(time_info.currentTime, time_info.inputBufferAdcTime, frames / rate)
            for chunk in converter.feed(bytes(indata), time.monotonic() - lag):
                hand_over(chunk)

        def open_stream() -> None:
            stream = sd.RawInputStream(
                samplerate=rate,
                blocksize=round(rate * CHUNK_S),
                device=self._device.index,
                channels=channels,
                dtype="int16",
                callback=callback,
                finished_callback=lambda: hand_over(None),
            )
            stream.start()
            self._stream = stream
            if self._closed:  # closed (Ctrl-C) while opening: release the device now
                _release(stream)

        try:
            await off_loop(open_stream, self.name)
        except sd.PortAudioError as e:
            raise UserError(f"cannot open microphone {self.name}: {e}") from None

    def _put(self, item: MicChunk | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped_chunks += 1
        self._queue.put_nowait(item)

    async def read(self) -> MicChunk | None:
        if self._closed:
            return None
        try:
            async with asyncio.timeout(self._stall_timeout_s):
                chunk = await self._queue.get()
        except TimeoutError:
            if self._closed:
                return None
            how = f"sent no audio for {self._stall_timeout_s:g} s"
            raise _gone("microphone", self.name, how) from None
        if chunk is None and not self._closed:
            raise _gone("microphone", self.name, "stopped")
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._stream is not None:
            _release(self._stream)
        self._put(None)  # wakes a pending read()


class SpeakerRenderer:
    """Turns the 24 kHz jitter buffer into device-rate mono blocks; PortAudio thread only.

    At 24 kHz it copies. At another rate it pulls 20 ms of 24 kHz at a time (silence when the
    buffer is dry, which also flushes the resampler's tail) through a soxr stream, and keeps the
    surplus for the next block. `on_played` gets the 24 kHz audio pulled, timed by where it lands
    in the device's output (input and output sample counters since the last reset).
    """

    def __init__(
        self,
        buffer: JitterBuffer,
        rate_hz: int,
        notify: PlayedCallback,
        overlay: Overlay | None = None,
    ) -> None:
        self._buffer = buffer
        self._overlay = overlay
        self._rate_hz = rate_hz
        self._notify = notify
        self._reset_requested = False
        self._resampler = soxr.ResampleStream(
            SPEAKER_RATE_HZ, rate_hz, 1, dtype="int16", quality="LQ"
        )
        self._surplus = np.zeros(0, np.int16)
        self._in_total = 0  # 24 kHz samples fed to the resampler
        self._out_total = 0  # device samples handed to the device

    def request_reset(self) -> None:
        """Any thread: drop the resampler's surplus at the next block (barge-in)."""
        self._reset_requested = True

    def render_stereo(self, frames: int, t_dac: float) -> tuple[bytes, np.ndarray | None]:
        """As `render`, plus the overlay mixed in stereo ((frames, 2) int16; None while it is
        silent). At 24 kHz `on_played` gets the mono mix of both; at other rates the overlay
        (synthetic ticks) is interpolated to the device rate after the answer's resampling,
        and the echo reference holds the answer alone."""
        if self._overlay is None:
            return self.render(frames, t_dac), None
        if self._rate_hz == SPEAKER_RATE_HZ:
            block = self._buffer.pop(frames * 2).ljust(frames * 2, b"\0")
            stereo, mono = mix(block, self._overlay)
            self._notify(mono, t_dac)
            return mono, stereo
        answer = self.render(frames, t_dac)
        n24 = max(1, round(frames * SPEAKER_RATE_HZ / self._rate_hz))
        extra = self._overlay.render(n24)
        if extra is None:
            return answer, None
        at = np.linspace(0, n24 - 1, frames)
        ticks = np.stack([np.interp(at, np.arange(n24), extra[:, c]) for c in (0, 1)], axis=1)
        samples = np.frombuffer(answer, np.int16).astype(np.float64)
        stereo = np.clip(samples[:, None] + ticks, -32768, 32767).astype(np.int16)
        return answer, stereo

    def render(self, frames: int, t_dac: float) -> bytes:
        """`frames` mono int16 samples to play from monotonic time `t_dac` on."""
        if self._rate_hz == SPEAKER_RATE_HZ:
            block = self._buffer.pop(frames * 2).ljust(frames * 2, b"\0")
            self._notify(block, t_dac)
            return block
        if self._reset_requested:
            self._reset_requested = False
            self._resampler.clear()
            self._surplus = np.zeros(0, np.int16)
            self._in_total = self._out_total = 0
        parts = [self._surplus]
        have = len(self._surplus)
        for _ in range(16):  # soxr emits in bursts of ~20 ms; a few pulls always suffice
            if have >= frames:
                break
            pcm = self._buffer.pop(SPEAKER_BLOCK_BYTES).ljust(SPEAKER_BLOCK_BYTES, b"\0")
            lead = self._in_total * self._rate_hz / SPEAKER_RATE_HZ - self._out_total  # samples
            self._notify(pcm, t_dac + lead / self._rate_hz)
            self._in_total += len(pcm) // 2
            out = self._resampler.resample_chunk(np.frombuffer(pcm, np.int16))
            parts.append(out)
            have += len(out)
        samples = np.concatenate(parts)
        self._surplus = samples[frames:]
        self._out_total += min(frames, len(samples))
        return samples[:frames].tobytes().ljust(frames * 2, b"\0")


class DeviceSpeaker(BufferedSink):
    """A sound output device whose PortAudio callback drains the 24 kHz jitter buffer.

    Opened at 24 kHz mono when the device accepts it; otherwise at its default rate and channel
    count, resampled in the callback and copied to every channel. With an `overlay` (guide
    mode) it opens in stereo and the overlay's left/right go to the first two channels.
    `drained()` returns when the buffer is empty; the device's own buffer (its output
    latency) may still be playing.
    """

    def __init__(
        self,
        device: AudioDeviceInfo,
        on_played: PlayedCallback | None = None,
        sd: ModuleType | None = None,
        stall_timeout_s: float = STALL_TIMEOUT_S,
        overlay: Overlay | None = None,
    ) -> None:
        super().__init__(f"{device.name} (#{device.index})", SPEAKER_RATE_HZ, on_played)
        self._device = device
        self._overlay = overlay
        self._sd = sd
        self._stall_timeout_s = stall_timeout_s
        self._stream: Any = None
        self._renderer: SpeakerRenderer | None = None
        # Written by the PortAudio thread (plain float and bool stores), read on the loop.
        self._t_callback = 0.0
        self._ended = False
        self.xruns = 0  # PortAudio output underflows: the device itself ran short

    @classmethod
    def find(
        cls, spec: str, on_played: PlayedCallback | None = None, overlay: Overlay | None = None
    ) -> DeviceSpeaker:
        return cls(find_device(spec, "out"), on_played, overlay=overlay)

    def start(self) -> None:
        sd = self._sd or import_sounddevice()
        wanted = 1 if self._overlay is None else 2
        rate, channels = pick_format(sd, self._device, SPEAKER_RATE_HZ, wanted)
        renderer = self._renderer = SpeakerRenderer(
            self._buffer, rate, self._notify_played, self._overlay
        )
        self._t_callback = time.monotonic()

        def finished() -> None:
            self._ended = True
            self._wake_drained()

        def callback(outdata: Any, frames: int, time_info: Any, status: Any) -> None:
            self._t_callback = time.monotonic()
            if status is not None and status.output_underflow:
                self.xruns += 1
            lag = _stream_lag_s(time_info.outputBufferDacTime, time_info.currentTime, 0.0)
            mono, stereo = renderer.render_stereo(frames, time.monotonic() + lag)
            if stereo is not None:
                outdata[:] = _to_channels(stereo, mono, channels)
            elif channels > 1:
                outdata[:] = np.repeat(np.frombuffer(mono, np.int16), channels).tobytes()
            else:
                outdata[:] = mono
            self._wake_drained()

        try:
            self._stream = sd.RawOutputStream(
                samplerate=rate,
                device=self._device.index,
                channels=channels,
                dtype="int16",
                latency=OUTPUT_LATENCY_S,
                callback=callback,
                finished_callback=finished,
            )
            self._stream.start()
        except sd.PortAudioError as e:
            raise UserError(f"cannot open speaker {self.name}: {e}") from None
        if self._closed:  # closed while opening (start runs off the loop): stop it now
            _release(self._stream)

    def play(self, pcm24k: bytes) -> None:
        self._check_alive()
        super().play(pcm24k)

    async def drained(self) -> None:
        """As BufferedSink.drained, but raises UserError instead of waiting on a lost device."""
        while True:
            self._check_alive()
            try:
                async with asyncio.timeout(0.5):
                    return await super().drained()
            except TimeoutError:
                continue

    def _check_alive(self) -> None:
        """Raises UserError once the device has gone: PortAudio ended the stream by itself, or
        its callback has not run for `stall_timeout_s`."""
        if self._closed or self._stream is None:
            return
        if self._ended:
            raise _gone("speaker", self.name, "stopped")
        silent_s = time.monotonic() - self._t_callback
        if silent_s > self._stall_timeout_s:
            raise _gone("speaker", self.name, f"stopped playing {silent_s:.0f} s ago")

    def clear(self) -> None:
        super().clear()
        if self._renderer is not None:
            self._renderer.request_reset()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._stream is not None:
            _release(self._stream)
        self._wake_drained()


def _to_channels(stereo: np.ndarray, mono: bytes, channels: int) -> bytes:
    """PortAudio thread: the overlay's stereo block for a device with `channels` channels:
    a mono device gets the downmix, a surround one L and R then the mono mix elsewhere."""
    if channels == 1:
        return (stereo.astype(np.int32).sum(axis=1) // 2).astype(np.int16).tobytes()
    if channels == 2:
        return stereo.tobytes()
    rest = np.repeat(np.frombuffer(mono, np.int16)[:, None], channels - 2, axis=1)
    return np.concatenate([stereo, rest], axis=1).tobytes()
