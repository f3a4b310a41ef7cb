"""The best any guide could do for the closed loop's shopper: the README's sounds from the truth.

The oracle (shopper.oracle_time) knows where the item is and moves straight there: the limit
of the hand. The shopper is slower than that even with a perfect guide: it hears where the
item is only through ticks (a few a second, with its hearing's error), turns before it walks
(the README's rule: walk closer while the ticks come from in front), and stops only at a
chime it has heard. `ideal_time` runs the same shopper (same hand, hearing, reaction, rules)
on sounds made from the truth with no model, no tracker and no audio path: ticks from the
item's true place in the camera's view the moment the question is asked, at the rate and
pitch `guidance_for` gives, heard SOUND_LAG_S after the frame they are about (the lag the
shopper has learnt), and the chime once the item is centred and within reach, heard after
50 ms of it (the ear's CHIME_HOPS). The gap between shelfsight's time and this one is what
the guide costs (the model's answers and checks, the tracker); the gap between this and the
oracle is the shopper's way of following sound.

Real time (the shopper sleeps between steps), so scenes run side by side in threads.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from shelfsight.guide.box import PixelBox
from shelfsight.guide.guidance import guidance_for
from tests.support.closed_loop import TIMEOUT_S, Scene, place
from tests.support.ear import Percept
from tests.support.shelf_camera import FRAME
from tests.support.shopper import SOUND_LAG_S, Hand, Shopper, oracle_time

CHIME_HEARD_S = 0.05  # the ear takes a chime after 50 ms of both notes
STEP_S = 0.005


class IdealSounds:
    """What a perfect guide would play, as the shopper's ear would report it."""

    def __init__(self, hand: Hand, boxes: list[PixelBox]) -> None:
        self._hand, self._boxes = hand, boxes
        self._lock = threading.Lock()
        self._heard: list[Percept] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> IdealSounds:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)

    def percepts(self, since: float) -> list[Percept]:
        with self._lock:
            return [p for p in self._heard if p.t_heard >= since]

    def _run(self) -> None:
        next_tick, chime_from = time.monotonic(), None
        while not self._stop.is_set():
            now = time.monotonic()
            pose = self._hand.pose_at(now - SOUND_LAG_S)
            seen = [pose.in_frame(b) for b in self._boxes]
            box = min(seen, key=lambda b: abs(b.cx / FRAME[0] - 0.5) + abs(b.cy / FRAME[1] - 0.5))
            cue = guidance_for(box, *FRAME, t_capture=now, confirmed=True)
            if cue.on_target:
                chime_from = chime_from or now
                if now - chime_from >= CHIME_HEARD_S:
                    with self._lock:
                        self._heard.append(Percept(now, "chime"))
                    chime_from = now + 1e9  # once is enough: the shopper stops
            else:
                chime_from = None
                if now >= next_tick:
                    with self._lock:
                        self._heard.append(Percept(now, "tick", cue.pan, cue.tilt, cue.pitch_hz))
                    next_tick = now + 1.0 / cue.tick_hz
            time.sleep(STEP_S)


def ideal_time(scene: Scene) -> tuple[float | None, float]:
    """(seconds from the question to the chime with a perfect guide, or None if not in
    TIMEOUT_S; the oracle's seconds) for `scene`."""
    shelf, start, nearest = place(scene)
    boxes = [p.box for p in shelf.facings(shelf.target)]
    hand = Hand(start, seed=scene.seed)
    sounds = IdealSounds(hand, boxes).start()
    t_q = time.monotonic()
    shopper = Shopper(hand, sounds.percepts, t_q, t_q + TIMEOUT_S, seed=scene.seed)
    try:
        shopper.run()
    finally:
        sounds.close()
    took = None if shopper.t_chime is None else shopper.t_chime - t_q
    return took, oracle_time(start, nearest)


def ideal_times(scenes: list[Scene], threads: int = 20) -> list[tuple[float | None, float]]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(ideal_time, scenes))
