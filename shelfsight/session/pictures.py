"""Which camera pictures go to the model: the ones it needs, not one every tick.

On gemini-3.8-live every picture sent stays in the context and is billed again by every later
answer, so a picture of the same shelf every second is paid for many times over. The sampler
still makes a picture every 1/fps s (cheap, local); `PictureGate` lets one through when:

- a question begins (speech after a pause, the talk key, a typed question): the newest picture
  goes with it, so the model answers about what the camera shows now;
- an answer plays, every `answer_every_s` (the user turns the phone as the answer says);
- the scene has changed a lot since the last picture sent (`scene_change`, a cheap difference
  of tiny grey thumbnails), at most every `change_gap_s`, so a question about the new aisle is
  not asked about the old one.

Nothing else: while the user is silent and the picture is the same, none. While guiding, the
guide follows the item in every camera frame itself and asks the model again with its own
picture when it loses it (shelfsight.guide), so it needs none on a timer. Mode "question" (the
cheapest that still answers, and what a spent budget drops to) keeps only the first rule;
"timer" (no gate) sends every sampled picture. Loop thread only; times are monotonic s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shelfsight.core.frames import EncodedFrame

# Mean absolute difference (0-1) of two thumbnails that is "a lot". Measured on the synthetic
# shelf (tests/support/scene.py) at 1280x720: a hand-held sway of 2 % of the width 0.04, a
# 15 % exposure change 0.06, sensor noise 0.003; the view moved by a tenth of its width 0.13,
# by a quarter 0.20, another shelf 0.19.
SCENE_CHANGE = 0.10
ANSWER_EVERY_S = 2.0
CHANGE_GAP_S = 2.0


@dataclass(frozen=True)
class PicturePolicy:
    mode: str = "needed"  # needed | question (see the module doc)
    answer_every_s: float = ANSWER_EVERY_S
    scene_change: float = SCENE_CHANGE
    change_gap_s: float = CHANGE_GAP_S


def scene_difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two thumbnails, 0 (same) to 1; 1 when either is unknown."""
    if not a or len(a) != len(b):
        return 1.0
    x = np.frombuffer(a, np.uint8).astype(np.int16)
    y = np.frombuffer(b, np.uint8).astype(np.int16)
    return float(np.mean(np.abs(x - y))) / 255.0


class PictureGate:
    """Decides, picture by picture, which sampled ones the link sends."""

    def __init__(self, policy: PicturePolicy = PicturePolicy()) -> None:
        self.policy = policy
        self._latest: EncodedFrame | None = None  # the newest sampled picture
        self._latest_sent = False  # ... and the model has it already
        self._sent_thumb = b""  # the last picture the model got (any way it went)
        self._t_sent = -1e9
        self._wanted = False  # a question began before any picture was sampled

    def question_began(self) -> EncodedFrame | None:
        """A question begins: the newest picture, to send now; None when the model has it
        already, or when none was sampled yet (then the first one goes)."""
        if self._latest is None:
            self._wanted = True
            return None
        return None if self._latest_sent else self._latest

    def offer(self, frame: EncodedFrame, now: float, *, answering: bool) -> bool:
        """A newly sampled picture: True if it should go to the model now."""
        self._latest, self._latest_sent = frame, False
        if self._wanted:
            self._wanted = False
            return True
        if self.policy.mode == "question":
            return False
        since_s = now - self._t_sent
        if answering and since_s >= self.policy.answer_every_s:
            return True
        changed = scene_difference(frame.thumb, self._sent_thumb) >= self.policy.scene_change
        return changed and since_s >= self.policy.change_gap_s

    def sent(self, frame: EncodedFrame, now: float) -> None:
        """A picture reached the link's wire (by this gate, a typed question, a re-ask)."""
        self._t_sent = now
        if frame.thumb:
            self._sent_thumb = frame.thumb
        if self._latest is frame:
            self._latest_sent = True
