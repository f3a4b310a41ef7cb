"""PCM16 formats and levels shared by every audio stage.

Mic side: 16 kHz mono PCM16 little-endian in 20 ms chunks. Speaker side: 24 kHz mono PCM16, as
the Gemini Live API returns it. Pure functions; any thread.
"""

from __future__ import annotations

import numpy as np

from shelfsight.core.pcm import (  # noqa: F401 (the formats, for media's own modules)
    CHUNK_S,
    MIC_CHUNK_BYTES,
    MIC_RATE_HZ,
    SILENCE_DBFS,
    SPEAKER_BLOCK_BYTES,
    SPEAKER_RATE_HZ,
)


def mono_float(samples: np.ndarray | bytes | memoryview, channels: int) -> np.ndarray:
    """Interleaved int16 (or bytes of it) or float samples -> float32 mono in [-1, 1)."""
    x = samples if isinstance(samples, np.ndarray) else np.frombuffer(samples, dtype=np.int16)
    scale = 1 / 32768 if x.dtype == np.int16 else 1.0
    x = x.reshape(-1, channels).astype(np.float32)
    return (x[:, 0] if channels == 1 else x.mean(axis=1)) * np.float32(scale)


def float_to_pcm16(x: np.ndarray) -> bytes:
    return np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes()


def to_mono_pcm16(samples: np.ndarray | bytes | memoryview, channels: int) -> bytes:
    """Interleaved int16 (array or bytes) or float samples -> mono PCM16, channels averaged."""
    if not isinstance(samples, np.ndarray):
        if channels == 1:
            return bytes(samples)
    elif channels == 1 and samples.dtype == np.int16:
        return samples.astype("<i2").tobytes()
    return float_to_pcm16(mono_float(samples, channels))


def rms_dbfs(pcm16: bytes) -> float:
    """RMS level of PCM16 relative to full scale (a full-scale sine reads -3 dB)."""
    x = np.frombuffer(pcm16, dtype=np.int16).astype(np.float64)
    if x.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(x * x))) / 32768
    return max(SILENCE_DBFS, 20 * np.log10(rms)) if rms > 0 else SILENCE_DBFS
