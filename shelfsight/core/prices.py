"""Default prices of gemini-3.8-live, dated: an estimate, not a bill.

USD per 1M tokens, paid tier, as Google's pricing page (PRICES_SOURCE) lists them for
gemini-3.8-live since its release on PRICES_AS_OF (the 3.8 Live, 3.8 Live Extended Thinking and
3.1 Flash Live rows share one price sheet): text in $0.75, audio in $3.00 ($0.005/min),
image and video in $1.00 ($0.002/min); text out (thinking included) $4.50, audio out $12.00
($0.018/min). Prices change: every one is a setting (`price_audio_in`, ...), and the README says
when these were read.

At the bottom stage so `settings` can read the defaults without importing the session.
"""

from __future__ import annotations

PRICES_AS_OF = "2026-09-15"
PRICES_SOURCE = "https://ai.google.dev/gemini-api/docs/pricing"

DEFAULT_PRICES: dict[str, float] = {
    "text_in": 0.75,
    "audio_in": 3.00,
    "video_in": 1.00,  # images and video frames
    "text_out": 4.50,
    "audio_out": 12.00,
}
