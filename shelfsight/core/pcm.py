"""Audio formats shared by every stage.

Mic side: 16 kHz mono PCM16 little-endian in 20 ms chunks. Speaker side: 24 kHz mono PCM16, as
the Gemini Live API returns it.
"""

from __future__ import annotations

MIC_RATE_HZ = 16000
SPEAKER_RATE_HZ = 24000
CHUNK_S = 0.02  # one mic chunk, one speaker clock tick
MIC_CHUNK_BYTES = int(MIC_RATE_HZ * CHUNK_S) * 2  # 640
SPEAKER_BLOCK_BYTES = int(SPEAKER_RATE_HZ * CHUNK_S) * 2  # 960
MIC_BYTES_PER_S = MIC_RATE_HZ * 2
SPEAKER_BYTES_PER_S = SPEAKER_RATE_HZ * 2
MIC_MIME = f"audio/pcm;rate={MIC_RATE_HZ}"
SILENCE_DBFS = -120.0  # what a level meter reports for digital silence
