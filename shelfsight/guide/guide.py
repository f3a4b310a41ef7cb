"""The guide: from wherever the camera points to the item in reach, as cues and a few words.

Three ways the guide knows where the item is, each frame (`step`):
- **tracked**: the model marked it (`mark`, a box in the picture it saw) and the tracker
  follows it;
- **remembered**: the tracker lost it (a hand passed, the camera turned away), and its place
  is kept with the camera's own motion (`guide.motion`): the ticks keep leading there, with no
  question to the model while that place is out of the picture (the item is where we think);
  hidden inside the picture for `LOST_S`, or remembered for `MEMORY_S`, it is told and the
  model is asked where it is;
- **pointed at**: the model could not see it and gave a direction (`lead`, its
  `point_camera` function): the ticks come from that side, and the model is sent a fresh
  picture as the camera turns (`LOOK_*`), until it marks the item or points again.

The chime ("reach now") is never played on the tracker's word alone: a colour tracker can slide
onto a look-alike next door, and a small far mark makes a template too small to follow the
item as it grows. While the item is near the centre and not yet confirmed, the model is sent
the newest picture with the box being followed (`Ask("confirm")`, at most every
`CHECK_EVERY_S`, or `CHECK_NEAR_S` once it is near enough to confirm; one question at a
time) and marks the item in it. A box that overlaps the followed one confirms the item if it is
near (`CONFIRM_WIDTH`); the tracker keeps following (a restart from that picture, half a
second old, would lose the approach since), moved and resized to the model's box where the two
differ by more than the model's own error, its template cut again at the size the item has
now (`Fix`). A box elsewhere is a look-alike caught: the tracker starts again from it. Losing
the item, however briefly, takes the confirmation back.

One thread: a live run calls it from the guide's worker thread; `mark`, `lead` and `stop` are
handed to that thread. `now` is the caller's clock (seconds), so tests can step it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shelfsight.core.guidance import DIRECTIONS, Guidance
from shelfsight.core.phrases import Phrase
from shelfsight.guide.box import GRID, PixelBox, to_box_2d, to_pixels
from shelfsight.guide.guidance import guidance_for
from shelfsight.guide.motion import CameraMotion
from shelfsight.guide.tracker import Fix, TemplateTracker, Track

LOST_S = 1.0  # hidden inside the picture this long: told, and the model asked
MEMORY_S = 8.0  # a remembered place leads this long at most (its error grows), then asked
REFIND_ANYWHERE_S = 2.0  # lost this long: the tracker searches the whole picture, not near
FRESH_MARK_S = 1.0  # a mark about a picture older than the kept motion: search anywhere
PATH_FRAMES = 150  # the camera's motion is kept for this many frames (5 s at 30 fps)
ASK_EVERY_S = 5.0  # "where is it now?" at most this often
WORDS_EVERY_S = 3.0
LOOK_EVERY_S = 0.5  # pointed at: the model sees a new picture at most this often (its
# answer to the last one in hand: one question at a time)...
LOOK_TURN = 0.2  # ...once the camera has turned this much of the picture's width since the
# last look or the direction...
LOOK_IDLE_S = 3.0  # ...or this long has passed
ANSWER_WAIT_S = 3.0  # a question to the model not answered in this long may be asked again
CONFIRM_WIDTH = 0.1  # item width / picture width: a check from here on can confirm (77 px of
# the 768 px picture the model gets: a pack's name is legible, its look-alike told apart)
CHECK_EVERY_S = 2.0  # near the centre, unconfirmed: the model checks the box this often...
CHECK_NEAR_S = 0.75  # ...and this often once it is CONFIRM_WIDTH wide; each check in a row
CHECK_BACKOFF = 3  # the model answers without a box (speaking, say) doubles that, 3 times,
CHECK_GROWN = 1.5  # until the item is this much wider than at the last check
CONFIRM_IOU = 0.3  # the model's box overlaps the followed one this much: it is the item...
KEEP_IOU = 0.5  # ...and this much: the tracker is on it, and keeps following
REFRESH_SIZE = 1.6  # an agreed item this much larger than marked gets a fresh template...
FIX_OFFSET = 0.1  # ...as does one the model puts this far off (of its size) from the followed
FIX_SIZE = 1.15  # box, or this much larger or smaller: moved to the model's box
EDGE = 5  # of the 1000 grid: a box this near the picture's edge may be cut by it
LEAD_OFFSET = 1.6  # a pointed-at item sounds this many half-pictures from the centre

Why = Literal["lost", "look", "confirm"]
Box2d = tuple[float, float, float, float]  # [ymin, xmin, ymax, xmax] on the 0-1000 grid


@dataclass(frozen=True)
class Ask:
    """Ask the model about the newest picture: where the item is now ("lost"), whether it is
    in view yet ("look"), or whether the followed box is it ("confirm", `box_2d` the box in
    that picture on the 0-1000 grid)."""

    why: Why
    box_2d: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class Step:
    cue: Guidance | None  # None: nothing to play (not guiding, or nowhere to lead)
    track: Track | None
    say: Phrase | None = None
    ask: Ask | None = None


@dataclass
class GuideStats:
    marks: int = 0
    leads: int = 0  # directions the model gave for an item out of view
    dropouts: int = 0  # times the tracker lost the item, however briefly
    recovered: int = 0  # times the tracker found it again by itself after a dropout
    lost: int = 0  # dropouts told to the user (hidden too long, or remembered too long)
    asks: int = 0  # questions to the model, all kinds
    confirms: int = 0  # confirmations asked
    rejected: int = 0  # confirmations answered with another box (a look-alike caught)


class Guide:
    def __init__(self) -> None:
        self._tracker = TemplateTracker()
        self._motion = CameraMotion()
        self.name: str | None = None  # None: not guiding
        self.stats = GuideStats()
        self._mode: Literal["track", "lead"] = "track"
        self._lead: tuple[float, float] = (0.0, 0.0)
        self._confirmed = False
        self._confirm_seq: int | None = None  # the picture a pending confirmation is about
        self._confirm_box: tuple[int, int, int, int] | None = None
        self._t_checked = -1e9
        self._t_lost_asked = -1e9
        self._lost_since: float | None = None
        self._hidden_since: float | None = None  # lost, and its place is in the picture
        self._lost_told = False
        self._t_asked = -1e9  # last question of any kind
        self._t_answered = 0.0  # a mark, a lead or a turn ended; > _t_asked: none pending
        self._turned = 0.0  # camera turn (px) since the last look
        self._t_words = -1e9
        self._last_words: Phrase | None = None
        # (camera frame seq, where the scene has moved since guiding began, frame px): a mark
        # about an older picture is moved on by the motion since that picture.
        self._path: deque[tuple[int, float, float]] = deque(maxlen=PATH_FRAMES)
        self._t_marked: float | None = None  # the step clock when the last mark came
        self._marked_now = False
        # Cut the template again on the next frame the item is found, moved by this:
        self._refresh: Fix | None = None
        self._led_now = False  # a direction came: the next step's clock starts its wait
        self._on = False  # the last cue was on target (the chime holds while the item is ahead)
        self._unanswered_checks = 0  # checks in a row answered without a box (each waits 2x)
        self._checked_width = 1.0  # the followed item's width (of the picture) at the last check
        self._t_led = -1e9  # the step clock when the last direction came

    @property
    def active(self) -> bool:
        return self.name is not None

    @property
    def confirmed(self) -> bool:
        return self.name is not None and self._mode == "track" and self._confirmed

    def mark(
        self,
        box_2d: tuple[float, float, float, float],
        name: str,
        image: np.ndarray,
        seq: int | None = None,
    ) -> bool:
        """Follow the item at `box_2d` (checked, see guide.box) in `image`, camera frame `seq`.
        Returns True when this mark, the answer to a check, confirmed the followed item."""
        self._t_answered = max(self._t_answered, self._t_asked) + 1e-9
        answers_check = self._confirm_seq is not None and seq == self._confirm_seq
        if answers_check:
            self._unanswered_checks = 0
        checked = self._confirm_box if answers_check else None  # the box it was asked about
        overlap = _overlap(box_2d, checked) if checked is not None else 0.0
        same = overlap >= CONFIRM_IOU
        if answers_check and not same:
            self.stats.rejected += 1
        height, width = image.shape[:2]
        box = to_pixels(box_2d, width, height)
        following = self._mode == "track" and self._lost_since is None
        if following and checked is not None and overlap >= KEEP_IOU:  # agreed: keep following
            fix = _fix(box_2d, checked)
            if fix is None and self._tracker.size >= REFRESH_SIZE:
                fix = Fix()  # the same place and size, a sharper template
            self._refresh = fix
        else:
            self._tracker.start(image, box)
            since = self._moved_since(seq)
            if since is not None:
                self._tracker.shift(*since)
            self._marked_now = since is None  # where it is now is unknown: search anywhere
        self.name, self._mode = name, "track"
        if not answers_check:
            self.stats.marks += 1
        self._confirmed = same and box.w / width >= CONFIRM_WIDTH
        self._confirm_seq = None
        self._lost_since, self._hidden_since = None, None
        self._lost_told, self._last_words = False, None
        return self._confirmed

    def lead(self, direction: str, name: str) -> None:
        """The model cannot see the item: lead the camera `direction` (a key of DIRECTIONS)."""
        self._t_answered = max(self._t_answered, self._t_asked) + 1e-9
        self.name, self._mode, self._lead = name, "lead", DIRECTIONS[direction]
        self.stats.leads += 1
        self._confirmed, self._confirm_seq = False, None
        self._turned, self._last_words = 0.0, None
        self._led_now = True

    def answered(self) -> None:
        """The model ended a turn: whatever was asked is answered (a mark or a direction came
        with it, or the model did not call: it cannot tell), so the next question may go."""
        self._t_answered = max(self._t_answered, self._t_asked) + 1e-9

    def stop(self) -> None:
        self.name = None
        self._confirm_seq, self._refresh = None, None
        self._motion.reset()
        self._path.clear()

    def step(self, image: np.ndarray, t_capture: float, now: float, seq: int = 0) -> Step:
        if self.name is None:
            return Step(None, None)
        moved = self._motion.shift(image)
        _, x, y = self._path[-1] if self._path else (0, 0.0, 0.0)
        self._path.append((seq, x + moved[0], y + moved[1]))
        if self._marked_now:
            self._t_marked, self._marked_now = now, False
        if self._led_now:
            self._t_led, self._led_now = now, False
        height, width = image.shape[:2]
        if self._mode == "lead":
            return self._leading(moved, width, height, t_capture, now)
        anywhere = self._lost_since is not None and now - self._lost_since >= REFIND_ANYWHERE_S
        anywhere |= self._t_marked is not None and now - self._t_marked < FRESH_MARK_S
        track = self._tracker.update(image, moved, anywhere=anywhere)
        if track.lost:
            self._on = False
            return self._while_lost(track, width, height, t_capture, now)
        if self._refresh is not None:
            self._tracker.refresh(image, self._refresh)
            self._refresh = None
        if self._lost_since is not None:
            self.stats.recovered += 1
            self._lost_since, self._hidden_since, self._lost_told = None, None, False
        cue = guidance_for(
            track.box, width, height, t_capture, confirmed=self._confirmed, was_on=self._on
        )
        self._on = cue.on_target
        ask = None
        if self._wants_check(cue, now):
            grown = cue.width >= CHECK_GROWN * self._checked_width
            if grown:
                self._unanswered_checks = 0
            elif self._confirm_seq is not None:  # the last check got no box (the model spoke?)
                self._unanswered_checks += 1
            self._confirm_seq, self._t_checked, self._checked_width = seq, now, cue.width
            y0, x0, y1, x1 = to_box_2d(track.box, width, height)
            self._confirm_box = (y0, x0, y1, x1)
            self.stats.confirms += 1
            ask = self._ask("confirm", now, self._confirm_box)
        return Step(cue, track, say=self._words(cue.hint, now), ask=ask)

    # -- the three ways ---------------------------------------------------------------------

    def _leading(
        self, moved: tuple[float, float], width: int, height: int, t_capture: float, now: float
    ) -> Step:
        self._turned += abs(moved[0]) + abs(moved[1])
        px, py = self._lead
        cx = width / 2 * (1 + px * LEAD_OFFSET)
        cy = height / 2 * (1 + py * LEAD_OFFSET)
        side = 0.1 * width
        place = PixelBox(cx - side / 2, cy - side / 2, side, side)
        cue = guidance_for(place, width, height, t_capture, confirmed=False)
        ask = None
        waited = now - self._t_asked
        idle = now - max(self._t_asked, self._t_led) >= LOOK_IDLE_S
        turned_enough = self._turned >= LOOK_TURN * width or idle
        if self._may_ask(now) and waited >= LOOK_EVERY_S and turned_enough:
            self._turned = 0.0
            ask = self._ask("look", now)
        return Step(cue, None, say=self._words(cue.hint, now), ask=ask)

    def _while_lost(
        self, track: Track, width: int, height: int, t_capture: float, now: float
    ) -> Step:
        if self._lost_since is None:
            self._lost_since = now
            self.stats.dropouts += 1
            self._confirmed = False  # what is found again is checked again
        place = track.box  # kept in place with the camera's motion
        in_picture = 0 <= place.cx < width and 0 <= place.cy < height
        if not in_picture:
            self._hidden_since = None
        elif self._hidden_since is None:
            self._hidden_since = now
        hidden_long = self._hidden_since is not None and now - self._hidden_since >= LOST_S
        too_long = hidden_long or now - self._lost_since >= MEMORY_S
        if not too_long:  # lead to where it must be
            cue = guidance_for(place, width, height, t_capture, confirmed=False)
            return Step(cue, track, say=None if in_picture else self._words(cue.hint, now))
        ask = None
        if now - self._t_lost_asked >= ASK_EVERY_S and self._may_ask(now):
            self._t_lost_asked = now
            ask = self._ask("lost", now)
        if self._lost_told:  # told once; asked again (silently) while it stays lost
            return Step(None, track, ask=ask)
        self._lost_told = True
        self.stats.lost += 1
        return Step(None, track, say=Phrase("guide_lost", {"item": self.name}), ask=ask)

    # -- questions to the model -------------------------------------------------------------

    def _wants_check(self, cue: Guidance, now: float) -> bool:
        centred = abs(cue.pan) < 0.25 and abs(cue.tilt) < 0.25
        every = CHECK_NEAR_S if cue.width >= CONFIRM_WIDTH else CHECK_EVERY_S
        # A check still without its box (a box may come after its turn ended) counts too;
        # an item grown since the last check is worth asking about again (a speck the model
        # could not box from afar).
        unanswered = self._unanswered_checks + (self._confirm_seq is not None)
        if cue.width >= CHECK_GROWN * self._checked_width:
            unanswered = 0
        every *= 2 ** min(unanswered, CHECK_BACKOFF)  # a model that talks back
        due = now - self._t_checked >= every
        return centred and due and not self._confirmed and self._may_ask(now)

    def _moved_since(self, seq: int | None) -> tuple[float, float] | None:
        """How far the scene moved from camera frame `seq` to the newest one (frame px), if
        that frame is in the kept path."""
        if seq is None or not self._path:
            return None
        for s, x, y in self._path:
            if s == seq:
                _, x1, y1 = self._path[-1]
                return x1 - x, y1 - y
        return None

    def _may_ask(self, now: float) -> bool:
        """One question at a time: the last one was answered, or it is too old to wait for."""
        return self._t_answered > self._t_asked or now - self._t_asked >= ANSWER_WAIT_S

    def _ask(self, why: Why, now: float, box_2d: tuple[int, int, int, int] | None = None) -> Ask:
        self._t_asked = now
        self.stats.asks += 1
        return Ask(why, box_2d)

    def _words(self, hint: Phrase, now: float) -> Phrase | None:
        if hint == self._last_words or now - self._t_words < WORDS_EVERY_S:
            return None
        self._last_words, self._t_words = hint, now
        return hint


def _overlap(model: Box2d, followed: Box2d) -> float:
    """How much the model's box overlaps the followed box it was asked about (IoU, 0-1)."""
    return to_pixels(model, GRID, GRID).iou(to_pixels(followed, GRID, GRID))


def _fix(model: Box2d, followed: Box2d) -> Fix | None:
    """How the model's box differs from the followed one (box_2d both), where it differs by
    more than the model's own error (FIX_*); None where they agree, or where either touches
    the picture's edge (a box cut by the edge says nothing of the item's size)."""
    if not all(EDGE < v < GRID - EDGE for v in (*model, *followed)):
        return None
    a, b = to_pixels(model, GRID, GRID), to_pixels(followed, GRID, GRID)
    fix = Fix((a.cx - b.cx) / b.w, (a.cy - b.cy) / b.h, a.w / b.w, a.h / b.h)
    off = max(abs(fix.dx), abs(fix.dy)) > FIX_OFFSET
    grown = max(abs(np.log(fix.w)), abs(np.log(fix.h))) > np.log(FIX_SIZE)
    if not (off or grown):
        return None
    shift, size = (-0.5, 0.5), (1 / 1.5, 1.5)  # a larger difference is not the same box
    return Fix(
        float(np.clip(fix.dx, *shift)),
        float(np.clip(fix.dy, *shift)),
        float(np.clip(fix.w, *size)),
        float(np.clip(fix.h, *size)),
    )


def truth_error_px(track: Track, truth: PixelBox) -> float:
    """Distance between tracked and true centres, in pixels (benchmarks, tests)."""
    return float(np.hypot(track.box.cx - truth.cx, track.box.cy - truth.cy))
