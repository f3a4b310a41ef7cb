"""A virtual phone camera looking into a `shelf_world.Shelf`, served as a live MJPEG stream.

The camera's pose (where it points and how wide it sees: walking closer narrows the view) comes
from a callable of time, so a simulated hand moves it while it streams. Each frame is the view
rendered at 960x540 from the shelf's pyramid, then what a phone adds: motion blur at speed (a
20 ms exposure), sensor noise, the lighting of the moment (drift, flicker, a light going off)
and whatever passes in front of the lens (a hand, another shopper). A small block code of the
frame's number in the bottom-left corner survives resizing to 768 px and JPEG, so whoever gets
a picture (the stand-in's model) can look up what the camera saw (`FrameLog`).

Threads: the HTTP server's handler thread renders and sends, paced to the wall clock at 30 fps
(a late frame is skipped, as a camera drops frames); the log is read from any thread.
"""

from __future__ import annotations

import http.server
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from shelfsight.guide.box import PixelBox
from tests.support.mjpeg import mjpeg_part, start_multipart, start_stream
from tests.support.shelf_world import AISLE_BGR, Shelf

FRAME = (960, 540)
FPS = 30.0
JPEG_QUALITY = 80
EXPOSURE_S = 0.02  # indoor store light: a phone exposes ~1/50 s
NOISE_SD = 3.0  # sensor noise, grey levels
CODE_BLOCK = 8  # px of the 960 px frame: 6.4 px at 768, plenty for JPEG at quality 80
CODE_BITS = 12  # frame numbers modulo 4096 (136 s at 30 fps)


@dataclass(frozen=True)
class Pose:
    """Where the camera looks: the view's centre and width in shelf px (mm); 16:9."""

    x: float
    y: float
    w: float

    @property
    def h(self) -> float:
        return self.w * FRAME[1] / FRAME[0]

    def view_of(self, box: PixelBox) -> PixelBox:
        """`box` (shelf px) as a fraction of this view (0-1 across and down; may leave it)."""
        x0, y0 = self.x - self.w / 2, self.y - self.h / 2
        return PixelBox(
            (box.x - x0) / self.w, (box.y - y0) / self.h, box.w / self.w, box.h / self.h
        )

    def in_frame(self, box: PixelBox) -> PixelBox:
        """`box` (shelf px) in the FRAME this view renders (frame px; may leave it)."""
        v = self.view_of(box)
        return PixelBox(v.x * FRAME[0], v.y * FRAME[1], v.w * FRAME[0], v.h * FRAME[1])


@dataclass(frozen=True)
class Passer:
    """Something crossing in front of the lens, `t0_s` after the question, for `cross_s`:
    a hand (skin, close: most of the frame's height) or another shopper (dark, full height)."""

    kind: str  # "hand" or "shopper"
    t0_s: float
    cross_s: float
    leftwards: bool
    y: float  # its centre, fraction of the frame height
    size: float  # its width, fraction of the frame width
    colour: tuple[int, int, int]

    def box_at(self, t_s: float) -> tuple[float, float, float, float] | None:
        """(x0, y0, x1, y1) as fractions of the frame at `t_s` after the question, or None."""
        f = (t_s - self.t0_s) / self.cross_s
        if not 0.0 <= f <= 1.0:
            return None
        travel = 1.0 + self.size
        cx = -self.size / 2 + f * travel
        cx = 1.0 - cx if self.leftwards else cx
        half_h = 0.5 if self.kind == "shopper" else self.size * 0.9
        y0, y1 = (0.0, 1.0) if self.kind == "shopper" else (self.y - half_h, self.y + half_h)
        return cx - self.size / 2, y0, cx + self.size / 2, y1


@dataclass(frozen=True)
class Lighting:
    """Gain per channel over time: a slow drift, mains flicker beating with the frame rate,
    a warm/cool colour swing and a light that goes off for a while."""

    base: float = 1.0
    drift: float = 0.0  # +- fraction, over `period_s`
    period_s: float = 7.0
    flicker: float = 0.0  # +- fraction
    flicker_hz: float = 5.0
    cast: float = 0.0  # +- fraction, red against blue
    dark_from_s: float = 1e9  # seconds after the stream started
    dark_for_s: float = 0.0
    dark: float = 1.0  # gain while the light is off

    def gains(self, t_s: float) -> tuple[float, float, float]:
        g = self.base * (1 + self.drift * math.sin(2 * math.pi * t_s / self.period_s))
        g *= 1 + self.flicker * math.sin(2 * math.pi * self.flicker_hz * t_s)
        if self.dark_from_s <= t_s < self.dark_from_s + self.dark_for_s:
            g *= self.dark
        c = self.cast * math.sin(2 * math.pi * t_s / (self.period_s * 1.7))
        return g * (1 - c), g, g * (1 + c)  # B, G, R

    @property
    def steady(self) -> bool:
        return self == Lighting()


@dataclass(frozen=True)
class FrameInfo:
    seq: int
    t: float  # time.monotonic() it was rendered for
    pose: Pose
    passer: tuple[float, float, float, float] | None  # its box, fractions of the frame


class FrameLog:
    """What each frame showed, by its code (frame number modulo 2**CODE_BITS); any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: dict[int, FrameInfo] = {}
        self.all: list[FrameInfo] = []  # every frame, in order (appended on one thread)

    def add(self, info: FrameInfo) -> None:
        with self._lock:
            self._frames[info.seq % (1 << CODE_BITS)] = info
        self.all.append(info)

    def get(self, code: int) -> FrameInfo | None:
        with self._lock:
            return self._frames.get(code)


class ShelfCamera:
    """The live MJPEG stream of `shelf` seen from `pose_at(time.monotonic())` at `url`.
    `t_question` (set by whoever asks) is when passers' times count from."""

    def __init__(
        self,
        shelf: Shelf,
        pose_at: Callable[[float], Pose],
        *,
        lighting: Lighting = Lighting(),
        passer: Passer | None = None,
        seed: int = 0,
    ) -> None:
        self.shelf, self.pose_at = shelf, pose_at
        self.lighting, self.passer = lighting, passer
        self.log = FrameLog()
        self.t_question: float | None = None
        self.frames_sent = self.frames_skipped = 0
        self._t0 = time.monotonic()
        self._noise = _noise_fields(random.Random(seed))
        self._closed = threading.Event()
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                start_stream(self)
                camera._stream(self.wfile.write)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd, self.url = start_multipart(Handler)

    def close(self) -> None:
        self._closed.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _stream(self, write: Callable[[bytes], object]) -> None:
        """Handler thread: a frame every 1/FPS on the wall clock until the client leaves."""
        seq, last = 0, None
        t_next = time.monotonic()
        while not self._closed.is_set():
            time.sleep(max(0.0, t_next - time.monotonic()))
            now = time.monotonic()
            if now - t_next > 1 / FPS:  # late (a loaded machine): drop, as a camera does
                self.frames_skipped += int((now - t_next) * FPS)
                t_next = now
            seq += 1
            pose = self.pose_at(now)
            image, info = self.render(seq, now, pose, last)
            last = info
            jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1]
            try:
                write(mjpeg_part(jpeg.tobytes()))
            except OSError:
                return
            self.frames_sent += 1
            t_next += 1 / FPS

    def render(
        self, seq: int, t: float, pose: Pose, last: FrameInfo | None
    ) -> tuple[np.ndarray, FrameInfo]:
        """Frame `seq` at time `t` from `pose` (`last`: the frame before, for motion blur)."""
        image = render_view(self.shelf.pyramid, pose)
        if last is not None and t > last.t:
            dt = t - last.t
            blur_x = abs(pose.x - last.pose.x) / dt * EXPOSURE_S * FRAME[0] / pose.w
            blur_y = abs(pose.y - last.pose.y) / dt * EXPOSURE_S * FRAME[0] / pose.w
            kx, ky = max(1, round(blur_x)), max(1, round(blur_y))
            if kx > 1 or ky > 1:  # a box along the motion: a line blur for a pan or a tilt
                image = cv2.blur(image, (kx, ky))
        box = None
        if self.passer is not None and self.t_question is not None:
            box = self.passer.box_at(t - self.t_question)
            if box is not None:
                _draw_passer(image, self.passer, box)
        if not self.lighting.steady:
            gains = self.lighting.gains(t - self._t0)
            image = cv2.transform(image, np.diag(gains).astype(np.float32))
        plus, minus = self._noise[seq % len(self._noise)]
        image = cv2.subtract(cv2.add(image, plus), minus)
        write_code(image, seq)
        info = FrameInfo(seq, t, pose, box)
        self.log.add(info)
        return image, info


def render_view(pyramid: list[np.ndarray], pose: Pose) -> np.ndarray:
    """The view of `pose` at FRAME size, from the pyramid level just larger than it."""
    level = min(len(pyramid) - 1, max(0, int(math.log2(max(1.0, pose.w / FRAME[0])))))
    f = 2**level
    s = pose.w / FRAME[0] / f  # source px per frame px
    x0, y0 = (pose.x - pose.w / 2) / f, (pose.y - pose.h / 2) / f
    m = np.array([[s, 0, x0 + 0.5 * s - 0.5], [0, s, y0 + 0.5 * s - 0.5]], np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(
        pyramid[level], m, FRAME, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=AISLE_BGR
    )


def _noise_fields(rng: random.Random) -> list[tuple[np.ndarray, np.ndarray]]:
    """A few fields of Gaussian noise, split into what to add and what to subtract (uint8
    arithmetic saturates, as a sensor does, and costs ~1 ms a frame)."""
    gen = np.random.default_rng(rng.randrange(1 << 30))
    fields = []
    for _ in range(6):
        noise = gen.normal(0.0, NOISE_SD, (FRAME[1], FRAME[0], 3))
        fields.append(
            (np.clip(noise, 0, 255).astype(np.uint8), np.clip(-noise, 0, 255).astype(np.uint8))
        )
    return fields


def _draw_passer(image: np.ndarray, passer: Passer, box: tuple[float, float, float, float]) -> None:
    """A soft-edged shape (close to the lens: out of focus), drawn at quarter size."""
    w, h = FRAME
    q = 4
    mask = np.zeros((h // q, w // q), np.uint8)
    x0, y0, x1, y1 = (box[0] * w / q, box[1] * h / q, box[2] * w / q, box[3] * h / q)
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    if passer.kind == "hand":  # a palm and four fingers pointing up
        cv2.ellipse(
            mask,
            (round(cx), round(cy + ry * 0.35)),
            (round(rx * 0.8), round(ry * 0.6)),
            0,
            0,
            360,
            255,
            -1,
        )
        for k in range(4):
            fx = cx - rx * 0.6 + k * rx * 0.4
            cv2.ellipse(
                mask,
                (round(fx), round(cy - ry * 0.3)),
                (round(rx * 0.16), round(ry * 0.55)),
                0,
                0,
                360,
                255,
                -1,
            )
    else:  # shoulders and a head
        cv2.ellipse(
            mask, (round(cx), round(y1)), (round(rx), round(ry * 0.75)), 0, 180, 360, 255, -1
        )
        cv2.circle(mask, (round(cx), round(cy - ry * 0.45)), round(rx * 0.38), 255, -1)
    soft = cv2.GaussianBlur(mask, (0, 0), 2.0)
    alpha = cv2.resize(soft, FRAME, interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    ys, xs = np.nonzero(alpha > 0.004)
    if not len(xs):
        return
    sl = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    a = alpha[sl][..., None]
    shade = np.linspace(1.1, 0.8, a.shape[0], dtype=np.float32)[:, None, None]
    colour = np.array(passer.colour, np.float32)[None, None, :] * shade
    image[sl] = (image[sl] * (1 - a) + colour * a).clip(0, 255).astype(np.uint8)


# -- the frame's number as blocks: start bit, CODE_BITS bits, parity, stop bit ------------------


def write_code(image: np.ndarray, seq: int) -> None:
    bits = _bits(seq % (1 << CODE_BITS))
    b = CODE_BLOCK
    y1 = image.shape[0] - b
    cv2.rectangle(image, (0, y1 - 2 * b), ((len(bits) + 2) * b, image.shape[0]), (0, 0, 0), -1)
    for k, bit in enumerate(bits):
        if bit:
            x = (k + 1) * b
            cv2.rectangle(image, (x, y1 - b), (x + b - 1, y1 - 1), (255, 255, 255), -1)


def read_code(image: np.ndarray) -> int | None:
    """The frame number code in a picture of any width (the frame resized), or None."""
    height, width = image.shape[:2]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    s = width / FRAME[0]
    y = round(height - 1.5 * CODE_BLOCK * s)
    bits = []
    for k in range(CODE_BITS + 3):
        x = round((k + 1.5) * CODE_BLOCK * s)
        r = max(1, round(CODE_BLOCK * s / 4))
        bits.append(int(gray[y - r : y + r + 1, x - r : x + r + 1].mean() > 128))
    if bits != _bits(_value(bits)):
        return None
    return _value(bits)


def _bits(value: int) -> list[int]:
    data = [(value >> i) & 1 for i in range(CODE_BITS)]
    return [1, *data, sum(data) % 2, 1]


def _value(bits: list[int]) -> int:
    return sum(bit << i for i, bit in enumerate(bits[1 : 1 + CODE_BITS]))
