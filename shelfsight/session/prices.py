"""Default prices of gemini-3.8-live, dated: an estimate, not a bill.

USD per 1M tokens, paid tier, from Google's pricing page
(https://ai.google.dev/gemini-api/docs/pricing, read on PRICES_AS_OF). Prices change: every
one is a setting (`price_audio_in`, ...), and the README says when these were read.
Kept apart from `cost` so `settings` can read the defaults without importing the SDK.
"""

from __future__ import annotations

PRICES_AS_OF = "2026-12-02"
PRICES_SOURCE = "https://ai.google.dev/gemini-api/docs/pricing"

DEFAULT_PRICES: dict[str, float] = {
    "text_in": 0.75,
    "audio_in": 3.00,
    "video_in": 3.00,  # images and video frames
    "text_out": 4.50,
    "audio_out": 12.00,
}
