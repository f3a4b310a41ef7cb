"""A simulated shopper holding the phone: a hand with human limits, moved by what the ear hears.

The hand (`Hand`) moves the camera's pose (shelf_camera.Pose: where it points, how wide it sees)
with limited speed and acceleration, and shakes. Limits, and where they come from:

- Reaction time 0.3 s from a sound to the hand acting on it: a choice reaction to a tone
  (simple auditory reactions take ~0.15-0.2 s; choosing a direction adds ~0.1 s).
- Pointing: at most 0.6 view widths/s, accelerating at 3 view widths/s^2. Pointing a phone is
  turning the wrist, and a turn moves the view by the same fraction of its width at any
  distance: 0.6 view widths/s is ~40 deg/s with a phone's ~69 deg field of view, a careful
  aiming movement (quick turns of the hand or head reach 100-200 deg/s), up to speed in 0.2 s.
- Walking closer: at most 0.35 m/s (a careful step, arm stretched; walking pace is 1.2-1.4 m/s),
  accelerating at 1 m/s^2, and near the shelf slower in proportion to the distance left, as
  the end of every reach slows (Fitts; Lee's tau): the distance halves at most once a second.
  The view's width is 1.375 x the distance (69 deg) at 1 mm a pixel; no closer than 8 cm (a
  phone camera's near focus).
- Shake: physiological tremor, 0.3 % of the view at 8-9 Hz (~0.2 deg), and a slow sway of
  0.6-0.8 % at 0.3 Hz; the distance wavers 1 %.

The shopper (`Shopper`) knows only the README's rules, from what it hears (ear.Percept): turn
towards the ticks' side and pitch, walk closer while they come from in front (the middle half
of the picture, rule 4; until stop 28 the rule was "straight ahead", a quarter, which made the
shopper turn before it walked: 1.32x the oracle even with a perfect guide), hold still in
silence, stop at the chime. Hearing is imperfect: left/right is judged to ~1 dB
(0.07 of the pan), pitch against the remembered centre note to ~2 semitones (0.15 of the tilt),
and each shopper maps "how far to the side" onto hand movement with a gain between 0.8 and
1.25. Like people, it plans a move to where the sound said the item was, from where the hand
was when the sound was made (it knows its own hand's movement, and has learnt that the sound
lags the camera by ~0.15 s, as people adapt to a steady delay in a few minutes; measured here
from camera to ear: 0.15 s), and corrects with each tick.

The oracle (`oracle_time`) has the same hand and knows where the item is: the physical limit.
"""

from __future__ import annotations

import math
import random
import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from shelfsight.guide.box import PixelBox
from tests.support.ear import Percept
from tests.support.shelf_camera import Pose

REACTION_S = 0.3
PAN_SPEED = 0.6  # view widths / s
PAN_ACCEL = 3.0  # view widths / s^2
PX_PER_M = 1375.0  # view width (px = mm) per metre from the shelf
APPROACH_SPEED = 0.35 * PX_PER_M  # view width px / s
APPROACH_ACCEL = 1.0 * PX_PER_M
APPROACH_RATE = 0.69  # 1/s: the distance halves at most once a second
MIN_W = 0.08 * PX_PER_M
FINAL_GAIN = 6.0  # 1/s: the last centimetres are closed in proportion to what is left
STEP_S = 0.01
HOLD_S = 0.5  # held still after the chime (its reaction, then stopped), then done
HEARD_PAN_SD, HEARD_TILT_SD = 0.07, 0.15
SOUND_LAG_S = 0.15  # what the shopper has learnt: a tick is about the camera this long before
CENTRED = 0.5  # |pan| and |tilt| under this: "from in front", walk closer
TICKS_USED, TICK_MEMORY_S = 3, 1.0  # a tick train has stopped after two slow beats missed
REACH_WIDTH, CENTRE = 0.25, 0.12  # README: centred (within 12 % of the half picture) and wide


def speed_toward(distance: float, vmax: float, amax: float) -> float:
    """The fastest signed speed that can still stop at `distance` (time-optimal, capped)."""
    d = abs(distance)
    return math.copysign(min(vmax, math.sqrt(2 * amax * d), FINAL_GAIN * d), distance)


class Hand:
    """The camera pose under hand limits. `move` from the shopper's thread; `pose_at` from
    any thread (the camera's). Keeps its path (smooth, without shake) for `path_at`."""

    def __init__(self, start: Pose, seed: int) -> None:
        self._lock = threading.Lock()
        self._x, self._y, self._w = start.x, start.y, start.w
        self._vx = self._vy = self._vw = 0.0
        self._start = start
        self._times: list[float] = []
        self._poses: list[Pose] = []
        rng = random.Random(seed)
        self._phase = [rng.uniform(0, 2 * math.pi) for _ in range(5)]
        self._sway = rng.uniform(0.006, 0.008)

    def move(self, t: float, dt: float, want: tuple[float, float, float]) -> None:
        """Steer towards velocities `want` (px/s: x, y, view width) for `dt` within limits."""
        with self._lock:
            w = self._w
            self._vx = _accel(self._vx, want[0], PAN_ACCEL * w * dt, PAN_SPEED * w)
            self._vy = _accel(self._vy, want[1], PAN_ACCEL * w * dt, PAN_SPEED * w)
            self._vw = _accel(
                self._vw, want[2], APPROACH_ACCEL * dt, min(APPROACH_SPEED, APPROACH_RATE * w)
            )
            self._x += self._vx * dt
            self._y += self._vy * dt
            self._w = max(MIN_W, self._w + self._vw * dt)
            self._times.append(t)
            self._poses.append(Pose(self._x, self._y, self._w))

    @property
    def pose(self) -> Pose:
        with self._lock:
            return Pose(self._x, self._y, self._w)

    def path_at(self, t: float) -> Pose:
        """Where the hand was at `t` (no shake): what its owner believes it pointed at."""
        with self._lock:
            k = bisect_right(self._times, t) - 1
            return self._poses[k] if k >= 0 else self._start

    def pose_at(self, t: float) -> Pose:
        """The camera's pose at `t` with the shake (the camera's thread asks for now)."""
        p = self.path_at(t) if self._times and t < self._times[-1] else self.pose
        ph = self._phase
        dx = 0.003 * math.sin(2 * math.pi * 9.0 * t + ph[0]) + self._sway * math.sin(
            2 * math.pi * 0.35 * t + ph[1]
        )
        dy = 0.003 * math.sin(2 * math.pi * 8.3 * t + ph[2]) + 0.006 * math.sin(
            2 * math.pi * 0.27 * t + ph[3]
        )
        dw = 0.01 * math.sin(2 * math.pi * 0.3 * t + ph[4])
        return Pose(p.x + dx * p.w, p.y + dy * p.h, p.w * (1 + dw))


def _accel(v: float, want: float, dv_max: float, v_max: float) -> float:
    want = max(-v_max, min(v_max, want))
    return v + max(-dv_max, min(dv_max, want - v))


def within_reach(pose: Pose, box: PixelBox) -> bool:
    """The README's "centred and near enough to reach", on the truth."""
    v = pose.view_of(box)
    pan, tilt = (v.cx - 0.5) * 2, (v.cy - 0.5) * 2
    return abs(pan) < CENTRE and abs(tilt) < CENTRE and v.w >= REACH_WIDTH


def oracle_time(start: Pose, box: PixelBox, limit_s: float = 60.0) -> float:
    """Seconds from the question to within reach of `box` for a shopper who knows where it
    is: the same reaction and hand, straight there."""
    hand = Hand(start, seed=0)
    goal_w = box.w / (REACH_WIDTH * 1.04)
    t = 0.0
    while not within_reach(hand.pose, box) and t < limit_s:
        p = hand.pose
        want = (
            speed_toward(box.cx - p.x, PAN_SPEED * p.w, PAN_ACCEL * p.w),
            speed_toward(box.cy - p.y, PAN_SPEED * p.w, PAN_ACCEL * p.w),
            speed_toward(goal_w - p.w, APPROACH_SPEED, APPROACH_ACCEL),
        )
        hand.move(t, STEP_S, want)
        t += STEP_S
    return REACTION_S + t


@dataclass
class Heard:
    """What the shopper made of one tick: with its hearing's error and its own hand gain."""

    t_heard: float
    pan: float
    tilt: float
    item_x: float  # where that puts the item on the shelf (px), from where the hand was
    item_y: float


class Shopper:
    """Follows the sounds with `hand`, from `t_question`, until the chime (then holds still)
    or `deadline`. `percepts(since)` is the ear's. Runs `run()` on its own thread."""

    def __init__(
        self,
        hand: Hand,
        percepts: Callable[[float], list[Percept]],
        t_question: float,
        deadline: float,
        seed: int,
    ) -> None:
        self.hand, self._percepts = hand, percepts
        self.t_question, self.deadline = t_question, deadline
        self._rng = random.Random(seed)
        self._gain = (self._rng.uniform(0.8, 1.25), self._rng.uniform(0.8, 1.25))
        self._heard: dict[float, Heard] = {}
        self.t_chime: float | None = None  # when the chime was heard
        self.ticks_heard = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        t_next = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= self.deadline or (self.t_chime is not None and now > self.t_chime + HOLD_S):
                return
            self.hand.move(now, STEP_S, self._want(now))
            t_next += STEP_S
            time.sleep(max(0.0, t_next - time.monotonic()))
            if time.monotonic() - t_next > 0.1:  # a loaded machine: the hand does not jump
                t_next = time.monotonic()

    def _want(self, now: float) -> tuple[float, float, float]:
        """Velocities wanted now, from what was heard a reaction time ago."""
        known = [p for p in self._percepts(self.t_question) if p.t_heard <= now - REACTION_S]
        chime = next((p for p in known if p.kind == "chime"), None)
        if chime is not None:
            self.t_chime = chime.t_heard
            return (0.0, 0.0, 0.0)
        recent = [
            self._hear(p)
            for p in known
            if p.kind == "tick" and p.t_heard >= now - REACTION_S - TICK_MEMORY_S
        ][-TICKS_USED:]
        self.ticks_heard = sum(p.kind == "tick" for p in known)
        if not recent:
            return (0.0, 0.0, 0.0)  # silence: hold still
        x = sum(h.item_x for h in recent) / len(recent)
        y = sum(h.item_y for h in recent) / len(recent)
        p = self.hand.pose
        last = recent[-1]
        centred = abs(last.pan) < CENTRED and abs(last.tilt) < CENTRED
        return (
            speed_toward(x - p.x, PAN_SPEED * p.w, PAN_ACCEL * p.w),
            speed_toward(y - p.y, PAN_SPEED * p.w, PAN_ACCEL * p.w),
            -speed_toward(p.w - MIN_W, APPROACH_SPEED, APPROACH_ACCEL) if centred else 0.0,
        )

    def _hear(self, p: Percept) -> Heard:
        if p.t_heard not in self._heard:
            pan = p.pan + self._rng.gauss(0.0, HEARD_PAN_SD)
            tilt = p.tilt + self._rng.gauss(0.0, HEARD_TILT_SD)
            was = self.hand.path_at(p.t_heard - SOUND_LAG_S)
            x = was.x + pan * self._gain[0] * was.w / 2
            y = was.y + tilt * self._gain[1] * was.h / 2
            self._heard[p.t_heard] = Heard(p.t_heard, pan, tilt, x, y)
        return self._heard[p.t_heard]
