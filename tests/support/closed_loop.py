"""One closed-loop guide scene, end to end: a shopper finds an item by ear with `shelfsight run`.

    with Rig.start() as rig:                       # PulseAudio + the stand-in, for many scenes
        result = run_scene(make_scene("look-alike", 3), rig, Path(tmp))

A `Scene` is a shelf (shelf_world), where the camera starts, and what makes it hard (the item
out of the picture, a look-alike beside it, a hand or a shopper passing, a tiny far item, the
lighting). `run_scene` serves the virtual camera (shelf_camera) as a live MJPEG stream to
`shelfsight run --camera http://... --mic none --speaker default` in a child process whose
speaker is a private PulseAudio server's null sink; the stand-in's model (loop_model) answers
from the pictures it gets; the question is typed on the child's standard input; the shopper
(shopper) hears the sink's monitor (ear) and moves the camera, until the chime or 30 s. The
result says whether the camera was on the item at the chime, how long it took against the
oracle, and what the guide and the model did.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shelfsight.guide.box import PixelBox
from shelfsight.standin import ScriptedAnswer, StandIn, StandInConfig, StandInThread
from tests.conftest import TEST_KEY, standin_env
from tests.support.ear import Listener, Percept
from tests.support.guide_cli import events_of
from tests.support.loop_model import LoopModel, ModelTurn, covered
from tests.support.pulse import PulseServer, pulse_server
from tests.support.shelf_camera import Lighting, Passer, Pose, ShelfCamera
from tests.support.shelf_world import Shelf, build_shelf
from tests.support.shopper import Hand, Shopper, oracle_time

KINDS = ("in view", "out of view", "look-alike", "passer-by", "tiny far", "lighting")
TIMEOUT_S = 30.0  # from the question
ASK_AFTER_READY_S = 0.6  # the user asks once the "ready" sound has played
ON_WIDTH = 0.2  # the item at least this wide in the picture counts as "within reach" at the chime


@dataclass(frozen=True)
class Scene:
    kind: str
    seed: int
    row: str  # shelf_world.ROW_KINDS: what sort of pack the item is
    lookalike: bool
    pan: float  # where the item starts in the view: -1 left edge .. +1 right edge (beyond:
    tilt: float  # out of the picture), -1 top .. +1 bottom
    width: float  # the view's width at the start, px (mm): 1375 per metre from the shelf
    lighting: Lighting = Lighting()
    passer: Passer | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} #{self.seed}"


def make_scene(kind: str, seed: int) -> Scene:
    """Scene `seed` of `kind` (one of KINDS), the same every time."""
    rng = random.Random(f"{kind}/{seed}")
    row = rng.choice(("boxes", "bags", "bottles", "tins"))
    pan, tilt = rng.choice((-1, 1)) * rng.uniform(0.15, 0.7), rng.uniform(-0.55, 0.55)
    width = rng.uniform(1800, 3000)  # 1.3-2.2 m from the shelf
    extra: dict[str, Any] = {}
    if kind == "out of view":
        angle = rng.choice(range(8)) * 45 + rng.uniform(-15, 15)
        reach = rng.uniform(1.4, 2.4)
        pan, tilt = (
            1.6 * reach * math.cos(math.radians(angle)),
            reach * math.sin(math.radians(angle)),
        )
        width = rng.uniform(1500, 2600)
    elif kind == "look-alike":
        row = rng.choice(("boxes", "bags", "bottles"))
    elif kind == "passer-by":
        hand = seed % 2 == 0
        extra["passer"] = Passer(
            kind="hand" if hand else "shopper",
            t0_s=rng.uniform(0.8, 2.2),
            cross_s=rng.uniform(0.6, 1.0) if hand else rng.uniform(1.0, 1.8),
            leftwards=rng.random() < 0.5,
            y=rng.uniform(0.35, 0.65),
            size=rng.uniform(0.3, 0.45) if hand else rng.uniform(0.35, 0.55),
            colour=rng.choice(((120, 160, 215), (95, 135, 190), (60, 90, 140)))
            if hand
            else rng.choice(((60, 45, 40), (40, 40, 45), (35, 55, 80))),
        )
    elif kind == "tiny far":
        row, width = "jars", rng.uniform(3000, 3700)  # 2.2-2.7 m: the jar is ~8 px wide
        pan, tilt = rng.uniform(-0.6, 0.6), rng.uniform(-0.45, 0.45)
    elif kind == "lighting":
        extra["lighting"] = Lighting(
            base=rng.uniform(0.5, 1.0),
            drift=rng.uniform(0.2, 0.35),
            period_s=rng.uniform(4.0, 8.0),
            flicker=rng.uniform(0.03, 0.08),
            flicker_hz=rng.uniform(2.0, 9.0),
            cast=rng.uniform(0.05, 0.15),
            dark_from_s=rng.uniform(4.0, 8.0),
            dark_for_s=rng.uniform(0.8, 2.0),
            dark=0.45,
        )
    lookalike = kind in ("look-alike", "tiny far")
    return Scene(kind, seed, row, lookalike, pan, tilt, width, **extra)


@dataclass
class SceneResult:
    scene: Scene
    outcome: str  # "reached", "timeout", "on the look-alike", "off the item", or what failed
    t_reach_s: float | None  # question typed -> chime heard
    t_oracle_s: float
    item_px: float  # the item's width in the model's first picture (768 px wide)
    t_ideal_s: float | None = None  # the same shopper with a perfect guide (ideal_guide)
    marks: int = 0
    lost: int = 0  # the guide's "I've lost it" (told to the user)
    asks: int = 0  # turns the model answered after the question (re-asks, confirms, ...)
    lookalike_boxes: int = 0  # the model boxed the look-alike
    ticks_heard: int = 0
    covered_s: float = 0.0  # how long something passing in front hid the item, once asked
    wall_s: float = 0.0
    turns: list[ModelTurn] = field(default_factory=list)
    t_question: float = 0.0  # time.monotonic()
    hand: Hand | None = None  # the hand's path, for a timeline
    shelf: Shelf | None = None
    percepts: list[Percept] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.outcome == "reached"

    @property
    def false_on_lookalike(self) -> bool:
        return self.outcome == "on the look-alike"


class _Holder:
    """The stand-in's model hook: forwards to the current scene's model."""

    def __init__(self) -> None:
        self.model: LoopModel | None = None

    def __call__(self, text: str | None, picture: bytes | None) -> ScriptedAnswer | None:
        model = self.model
        return None if model is None else model(text, picture)


@dataclass
class Rig:
    """What outlives a scene: the sound server and the stand-in."""

    pulse: PulseServer
    standin: StandInThread
    holder: _Holder
    latency_s: float = 0.5

    @classmethod
    @contextlib.contextmanager
    def start(cls, latency_s: float = 0.5) -> Iterator[Rig]:
        holder = _Holder()
        config = StandInConfig(api_keys=frozenset({TEST_KEY}), model=holder)
        with pulse_server() as pa, StandIn.start_in_thread(config) as standin:
            yield cls(pa, standin, holder, latency_s)


def place(scene: Scene) -> tuple[Shelf, Pose, PixelBox]:
    """The scene's shelf, where the camera starts, and the target's facing nearest to that
    (the one the oracle goes to)."""
    shelf = build_shelf(scene.seed, scene.row, scene.lookalike)
    targets = shelf.facings(shelf.target)
    start = _start_pose(scene, targets[0].box)
    nearest = min(targets, key=lambda p: abs(p.box.cx - start.x) + abs(p.box.cy - start.y))
    return shelf, start, nearest.box


def _start_pose(scene: Scene, item: PixelBox) -> Pose:
    h = scene.width * 9 / 16
    return Pose(item.cx - scene.pan * scene.width / 2, item.cy - scene.tilt * h / 2, scene.width)


def _on(pose: Pose, box: PixelBox) -> bool:
    v = pose.view_of(box)
    return v.x <= 0.5 <= v.x + v.w and v.y <= 0.5 <= v.y + v.h and v.w >= ON_WIDTH


def run_scene(scene: Scene, rig: Rig, folder: Path) -> SceneResult:
    """One scene, in real time (start-up ~3 s, then up to TIMEOUT_S)."""
    t_wall = time.monotonic()
    shelf, start, nearest = place(scene)
    item = shelf.facings(shelf.target)[0].box
    result = SceneResult(scene, "", None, oracle_time(start, nearest), start.view_of(item).w * 768)
    hand = Hand(start, seed=scene.seed)
    camera = ShelfCamera(shelf, hand.pose_at, lighting=scene.lighting, passer=scene.passer)
    model = LoopModel(shelf, camera.log, seed=scene.seed, latency_s=rig.latency_s)
    rig.holder.model = model
    first_connection = len(rig.standin.server.connections)
    listener = Listener(rig.pulse.env)
    child = _Child(rig, camera.url, folder)
    try:
        child.wait_connected()
        time.sleep(ASK_AFTER_READY_S)
        child.type(f"guide me to the {shelf.name}")
        t_q = time.monotonic()
        camera.t_question = result.t_question = t_q
        shopper = Shopper(hand, listener.percepts, t_q, t_q + TIMEOUT_S, seed=scene.seed)
        shopper.run()
        result.ticks_heard = shopper.ticks_heard
        _judge(result, shelf, hand, shopper, t_q)
        child.type("stop")
    except Exception as exc:  # a scene that cannot run is reported, the bench goes on
        result.outcome = f"error: {exc}"
    finally:
        stats = child.finish()
        listener.close()
        camera.close()
        rig.holder.model = None
    result.marks, result.lost = stats.get("marks", 0), stats.get("lost", 0)
    connections = rig.standin.server.connections[first_connection:]
    result.asks = max(0, sum(len(c.turns()) for c in connections) - 1)
    result.turns = list(model.turns)
    result.lookalike_boxes = sum(t.marked == "lookalike" for t in model.turns)
    frames = [f for f in camera.log.all if f.t >= result.t_question]
    result.covered_s = sum(  # by the clock: a loaded machine renders fewer frames
        b.t - a.t for a, b in zip(frames, frames[1:], strict=False) if covered(a, nearest)
    )
    result.wall_s = time.monotonic() - t_wall
    result.hand, result.shelf = hand, shelf
    result.percepts = listener.percepts(result.t_question)
    return result


def _judge(result: SceneResult, shelf: Shelf, hand: Hand, shopper: Shopper, t_q: float) -> None:
    if shopper.t_chime is None:
        result.outcome = "timeout"
        return
    pose = hand.pose_at(shopper.t_chime)
    result.t_reach_s = shopper.t_chime - t_q
    if any(_on(pose, p.box) for p in shelf.facings(shelf.target)):
        result.outcome = "reached"
    elif any(_on(pose, p.box) for p in shelf.facings(shelf.lookalike)):
        result.outcome = "on the look-alike"
    else:
        result.outcome = "off the item"


class _Child:
    """`shelfsight run` on the virtual camera, speaking to the sink, recording; questions typed."""

    def __init__(self, rig: Rig, camera_url: str, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)  # a fresh recording each time
        folder.mkdir(parents=True)
        self.record = folder / "rec"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GEMINI_", "GOOGLE_", "SHELFSIGHT_")) and k != "SSL_CERT_FILE"
        }
        (folder / "empty.toml").write_text("")
        env.update(standin_env(rig.standin), **rig.pulse.env)
        env["SHELFSIGHT_CONFIG"] = str(folder / "empty.toml")
        args = ["--camera", camera_url, "--mic", "none", "--speaker", "default", "--plain"]
        self._log = (folder / "run.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shelfsight", "run", *args, "--record", str(self.record)],
            env=env,
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_connected(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(e["type"] == "connected" for e in events_of(self.record)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("shelfsight never connected")
            time.sleep(0.05)

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def finish(self) -> dict[str, Any]:
        """Standard input closed (the user is done); the guide's counts from the manifest."""
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        try:
            manifest = json.loads((self.record / "manifest.json").read_text())
        except (OSError, ValueError):
            return {}
        guide: dict[str, Any] = manifest.get("guide") or {}
        return guide
