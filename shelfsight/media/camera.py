"""Camera sources: a device, a stream URL or a video file behind one `Camera` class.

A grab thread owns the `cv2.VideoCapture`: it calls `grab()` continuously so OpenCV's buffers
never hold stale frames, and calls `retrieve()` (the costly colour conversion / MJPEG decode)
only for a frame somebody asked for. `Camera.frame()` registers a future and the thread resolves
it with the next grabbed frame, so a frame handed out is at most one source frame interval plus
one retrieve old, and an idle 1080p30 source costs only the grabs. A worker thread that needs
every frame (the guide's tracker) turns on `follow(True)` and takes them with `next_frame`: each
frame is then decoded once and kept as the newest (a slow reader skips frames, never queues
them). Video files are paced to the wall clock at their own frame rate and loop, so tests and
replays exercise the live path. A still picture (PNG, JPEG...) is a camera that always sees the
same thing: useful with `ask`.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from shelfsight.errors import UserError
from shelfsight.media.off_loop import start_daemon

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
STILL_FPS = 2.0  # how often a still picture is "grabbed" again (it is decoded once)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mjpeg", ".mjpg", ".ts")
STREAM_OPEN_DEADLINE_S = 12.0  # the brief allows 15 s; FFmpeg's own open timeout is shorter
_STREAM_PARAMS = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10_000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5_000]
_CONTINUITY_TYPE = "AVCaptureDeviceTypeContinuityCamera"  # the constant's string value
_DESK_VIEW_TYPE = "AVCaptureDeviceTypeDeskViewCamera"
_CLOSE_JOIN_S = 0.3
_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class Frame:
    """One source frame. `image` is BGR uint8 H x W x 3, read-only (it may be shared)."""

    image: np.ndarray
    t_capture: float  # time.monotonic() when the grab thread received it from the source
    seq: int  # source frame counter since start(); for a looping file, file frame = seq % length


@dataclass(frozen=True)
class CameraStatus:
    """The camera stopped delivering frames (`stalled`) or came back after `outage_s`."""

    name: str
    stalled: bool
    outage_s: float = 0.0  # when back: how long no frame came


@dataclass(frozen=True)
class CameraInfo:
    """A camera as `devices` shows it; `index` is what OpenCV opens on this platform."""

    name: str
    index: int
    is_continuity: bool = False
    resolution: tuple[int, int] | None = None  # (width, height) if cheaply known
    index_is_guess: bool = False  # True when names came from system_profiler, not AVFoundation


@dataclass(frozen=True)
class AVFoundationDevice:
    """What macOS reports about one video device (pure data, so the ordering is testable)."""

    name: str
    unique_id: str
    device_type: str = ""
    is_continuity: bool = False
    resolution: tuple[int, int] | None = None


class Camera:
    """One video source read by a grab thread that keeps only the newest frame.

    Threads: the grab thread owns the capture (opens on reopen, grabs, retrieves, releases);
    `frame()` runs on the event loop and is resolved via `loop.call_soon_threadsafe`.
    """

    def __init__(
        self,
        name: str,
        open_capture: Callable[[], cv2.VideoCapture],
        *,
        is_file: bool,
        stall_after_s: float = 3.0,
    ) -> None:
        self.name = name
        self._open_capture = open_capture  # raises UserError; may block (streams: < 15 s)
        self._is_file = is_file
        self._stall_after_s = stall_after_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Callers waiting for the next frame: at most one per awaiting task, emptied on every
        # delivered frame. There is no frame queue: frames nobody asked for are never decoded.
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Frame | None]]] = []
        self._thread: threading.Thread | None = None
        self._failed = False  # reads failed; the thread is reopening with backoff
        self._t_last_grab = 0.0
        self._next_seq = 0
        # Thread readers (`follow`, `next_frame`): the newest decoded frame, under `_lock`.
        self._followers = 0
        self._newest: Frame | None = None
        self._new_frame = threading.Condition(self._lock)

    def start(self) -> None:
        """Open the source (raises UserError) and start the grab thread. Call once; blocks
        (a stream: up to STREAM_OPEN_DEADLINE_S), so the program calls it off the loop, and a
        close() meanwhile releases the late capture."""
        if self._thread is not None:
            raise RuntimeError(f"camera {self.name} already started")
        if self._stop.is_set():  # closed before the open began: another device failed
            return
        cap = self._open_capture()
        if self._stop.is_set():  # closed while opening: the program is ending
            cap.release()
            return
        frame_interval_s = _file_frame_interval_s(cap) if self._is_file else 0.0
        self._t_last_grab = time.monotonic()
        self._thread = start_daemon(
            functools.partial(self._run, cap, frame_interval_s), f"camera {self.name}"
        )

    @property
    def stalled(self) -> bool:
        """True while reads fail or no frame arrived for `stall_after_s`."""
        no_frames = time.monotonic() - self._t_last_grab > self._stall_after_s
        return self._thread is None or self._stop.is_set() or self._failed or no_frames

    async def status_changes(self, poll_s: float = 0.5) -> AsyncIterator[CameraStatus]:
        """Yields each time frames stop or come back, until the camera is closed.

        Polls `stalled` on the event loop (no thread crossing): a dropped stream is noticed
        within `stall_after_s` + `poll_s`, while the grab thread reopens it with backoff.
        """
        lost_at: float | None = None
        while not self._stop.is_set():
            await asyncio.sleep(poll_s)
            stalled = self.stalled and not self._stop.is_set()
            if stalled and lost_at is None:
                lost_at = self._t_last_grab  # the outage began with the last frame
                yield CameraStatus(self.name, stalled=True)
            elif not stalled and lost_at is not None:
                outage_s, lost_at = time.monotonic() - lost_at, None
                yield CameraStatus(self.name, stalled=False, outage_s=outage_s)

    async def frame(self, timeout_s: float = 2.0) -> Frame | None:
        """The next frame the source delivers; None if the source is stalled or times out."""
        if self.stalled:
            return None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Frame | None] = loop.create_future()
        entry = (loop, waiter)
        with self._lock:
            self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter
        except TimeoutError:
            return None
        finally:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)

    def follow(self, on: bool) -> None:
        """Any thread: decode every frame (on) for `next_frame` readers, or stop (off). Calls
        nest: decoding stops when every `follow(True)` has had its `follow(False)`."""
        with self._lock:
            self._followers = max(0, self._followers + (1 if on else -1))
            if not self._followers:
                self._newest = None  # a frame from before a pause is stale when following again

    def next_frame(self, after_seq: int, timeout_s: float) -> Frame | None:
        """Worker threads (never the loop): the newest frame newer than `after_seq`, waiting
        up to `timeout_s` for one; None on timeout or once closed. Needs `follow(True)`."""
        deadline = time.monotonic() + timeout_s
        with self._new_frame:
            while not self._stop.is_set():
                frame = self._newest
                if frame is not None and frame.seq > after_seq:
                    return frame
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._new_frame.wait(left)
        return None

    def close(self) -> None:
        """Stop the thread and release the device; idempotent and fast.

        If the thread is stuck inside `grab()` on a dead stream, it is left to finish on its own
        (it releases the capture itself once `grab()` returns; the program's exit waits for it,
        see `shelfsight.media.off_loop`).
        """
        self._stop.set()
        with self._new_frame:
            self._new_frame.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=_CLOSE_JOIN_S)
        self._resolve_waiters(None)

    # -- grab thread -----------------------------------------------------------------------

    def _run(self, cap: cv2.VideoCapture | None, frame_interval_s: float) -> None:
        t0 = time.monotonic()
        failures = 0
        try:
            while not self._stop.is_set():
                if cap is None:
                    cap = self._reopen_with_backoff()
                    failures = 0
                    continue
                if frame_interval_s:
                    t0 = self._wait_for_frame_time(t0, frame_interval_s)
                if cap.grab():
                    failures = 0
                    self._deliver(cap)
                    continue
                failures += 1
                if self._is_file and failures == 1:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # end of file: loop
                elif failures >= (2 if self._is_file else 3):
                    self._failed = True
                    cap.release()
                    cap = None
        finally:
            if cap is not None:
                cap.release()
            self._resolve_waiters(None)

    def _wait_for_frame_time(self, t0: float, frame_interval_s: float) -> float:
        """Sleep until frame `_next_seq` is due on the wall clock; returns the (maybe reset) t0."""
        due = t0 + self._next_seq * frame_interval_s
        late_s = time.monotonic() - due
        if late_s > 1.0:  # stalled host (suspend, overload): resync instead of bursting
            return t0 + late_s
        if late_s < 0:
            self._stop.wait(-late_s)
        return t0

    def _deliver(self, cap: cv2.VideoCapture) -> None:
        """Count the grabbed frame; decode it only if a caller is waiting for one or a
        thread reader follows every frame."""
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        t_capture = time.monotonic()
        self._t_last_grab = t_capture
        self._failed = False
        with self._lock:
            if not self._waiters and not self._followers:
                return
        ok, image = cap.retrieve()
        if not ok or image is None:
            return  # waiters stay registered and get the next frame
        frame = Frame(image=_as_bgr(image), t_capture=t_capture, seq=seq)
        with self._new_frame:
            if self._followers:
                self._newest = frame
                self._new_frame.notify_all()
        self._resolve_waiters(frame)

    def _reopen_with_backoff(self) -> cv2.VideoCapture | None:
        """Retry the opener with growing pauses until it works or close() is called."""
        for attempt in itertools.count():
            if self._stop.wait(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]):
                return None
            try:
                return self._open_capture()
            except UserError:
                continue
        return None

    def _resolve_waiters(self, frame: Frame | None) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            try:
                loop.call_soon_threadsafe(_set_result, waiter, frame)
            except RuntimeError:  # that event loop is already closed: nobody is waiting
                pass


def _set_result(waiter: asyncio.Future[Frame | None], frame: Frame | None) -> None:
    if not waiter.done():
        waiter.set_result(frame)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    image.flags.writeable = False
    return image


def _file_frame_interval_s(cap: cv2.VideoCapture) -> float:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return 1.0 / fps if 1.0 <= fps <= 240.0 else 1.0 / 30.0


# -- opening -------------------------------------------------------------------------------


def open_camera(spec: str) -> Camera | None:
    """Resolve a `--camera` SPEC to an unstarted Camera (None for `none`).

    Raises UserError for a missing file or an unknown camera name; `start()` raises UserError
    when the resolved source cannot be opened.
    """
    spec = spec.strip()
    if spec.lower() == "none":
        return None
    if spec.lower().startswith(STREAM_SCHEMES):
        return Camera(redact_url(spec), lambda: _open_stream(spec), is_file=False)
    path = Path(spec).expanduser()
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if not path.is_file():
            raise UserError(f"Picture not found: {spec}. Check the path, or pass a camera name.")
        return Camera(path.name, lambda: _open_still(path), is_file=True)
    if path.is_file() or "/" in spec or "\\" in spec or spec.lower().endswith(VIDEO_SUFFIXES):
        if not path.is_file():
            raise UserError(f"Video file not found: {spec}. Check the path, or pass a camera name.")
        return Camera(path.name, lambda: _open_file(path), is_file=True)
    info = match_camera(spec, list_cameras())
    label = f"{info.name} (index {info.index})"
    return Camera(label, lambda: _open_device(info.index), is_file=False)


def _open_file(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened() or not cap.grab():
        cap.release()
        raise UserError(f"Cannot read video file {path}: convert it to MP4 (H.264) or MJPEG AVI.")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    return cap


class _StillCapture:
    """A still picture behind the part of cv2.VideoCapture's interface `Camera` uses: every
    grab succeeds and every retrieve returns the picture, so it is sent like a live frame."""

    def __init__(self, image: np.ndarray) -> None:
        self._image = image

    def isOpened(self) -> bool:  # noqa: N802  (cv2's names)
        return True

    def grab(self) -> bool:
        return True

    def retrieve(self) -> tuple[bool, np.ndarray]:
        return True, self._image

    def get(self, prop: int) -> float:
        return STILL_FPS if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        pass


def _open_still(path: Path) -> cv2.VideoCapture:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"Cannot read picture {path}: give a PNG or JPEG file.")
    return cast(cv2.VideoCapture, _StillCapture(image))


def _open_device(index: int) -> cv2.VideoCapture:
    backend = {"linux": cv2.CAP_V4L2, "darwin": cv2.CAP_AVFOUNDATION}.get(sys.platform, cv2.CAP_ANY)
    cap = cv2.VideoCapture(index, backend)
    if not cap.isOpened():
        cap.release()
        hint = ""
        if sys.platform == "darwin":
            hint = " (is camera access allowed for this terminal in System Settings > Privacy?)"
        raise UserError(f"Cannot open camera {index}{hint}. {describe_cameras(list_cameras())}")
    return cap


def _open_stream(url: str) -> cv2.VideoCapture:
    """Open on a helper thread so a hanging FFmpeg open cannot block us past the deadline."""
    done = threading.Event()
    lock = threading.Lock()
    box: dict[str, cv2.VideoCapture] = {}

    def worker() -> None:
        try:
            cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, _STREAM_PARAMS)
        except cv2.error:
            cap = cv2.VideoCapture()  # not opened: reported below like any failed open
        with lock:
            if done.is_set():  # caller gave up: we own the late capture
                cap.release()
                return
            box["cap"] = cap
            done.set()

    start_daemon(worker, "camera stream open")
    done.wait(STREAM_OPEN_DEADLINE_S)
    with lock:
        done.set()
        cap = box.get("cap")
    if cap is None or not cap.isOpened():
        if cap is not None:
            cap.release()
        raise UserError(
            f"Cannot open camera stream {redact_url(url)}: check the URL, that the phone app is "
            "streaming, and that this computer is on the same network."
        )
    return cap


def redact_url(url: str) -> str:
    """Drop user:password from a URL so it never reaches logs or the terminal."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


# -- finding cameras by name ---------------------------------------------------------------


def list_cameras() -> list[CameraInfo]:
    """Cameras OpenCV can open here, in OpenCV's index order (empty where unsupported)."""
    if sys.platform.startswith("linux"):
        return list_v4l2_cameras()
    if sys.platform == "darwin":
        return list_avfoundation_cameras()
    return []


def list_v4l2_cameras(sysfs_root: Path = Path("/sys/class/video4linux")) -> list[CameraInfo]:
    """videoN nodes with their names; secondary nodes (metadata, `index` != 0) are skipped."""
    cameras = []
    for node in sysfs_root.glob("video*"):
        number = node.name.removeprefix("video")
        if not number.isdigit() or not (node / "name").is_file():
            continue
        index_file = node / "index"
        if index_file.is_file() and index_file.read_text().strip() not in ("", "0"):
            continue
        name = (node / "name").read_text().strip()
        cameras.append(
            CameraInfo(name=name, index=int(number), is_continuity="iphone" in name.lower())
        )
    return sorted(cameras, key=lambda c: c.index)


def list_avfoundation_cameras() -> list[CameraInfo]:
    """Names via pyobjc in OpenCV's order; system_profiler (order guessed) without pyobjc."""
    try:
        devices = _pyobjc_devices()
    except ImportError:
        return opencv_order(_system_profiler_devices(), index_is_guess=True)
    return opencv_order(devices)


def opencv_order(
    devices: Iterable[AVFoundationDevice], *, index_is_guess: bool = False
) -> list[CameraInfo]:
    """Number devices like OpenCV's AVFoundation backend (cap_avfoundation_mac.mm, >= 4.7).

    It takes `devicesWithMediaType:` Video then Muxed devices and sorts them by `uniqueID`
    with `-[NSString compare:]` (opencv/opencv#22946); for ASCII ids that is Python's str order.
    """
    ordered = sorted(devices, key=lambda d: d.unique_id)
    return [
        CameraInfo(
            name=d.name,
            index=i,
            is_continuity=_is_iphone_camera(d),
            resolution=d.resolution,
            index_is_guess=index_is_guess,
        )
        for i, d in enumerate(ordered)
    ]


def _is_iphone_camera(device: AVFoundationDevice) -> bool:
    """The iPhone's main Continuity Camera; its Desk View camera (a crop of it) does not count."""
    if device.device_type == _DESK_VIEW_TYPE or "desk view" in device.name.lower():
        return False
    return (
        device.is_continuity
        or device.device_type == _CONTINUITY_TYPE
        or "iphone" in device.name.lower()
    )


def _pyobjc_devices() -> list[AVFoundationDevice]:
    import AVFoundation  # macOS only (pyobjc-framework-AVFoundation); raises ImportError elsewhere

    capture_device = AVFoundation.AVCaptureDevice
    found = list(capture_device.devicesWithMediaType_(AVFoundation.AVMediaTypeVideo)) + list(
        capture_device.devicesWithMediaType_(AVFoundation.AVMediaTypeMuxed)
    )
    return [
        AVFoundationDevice(
            name=str(d.localizedName()),
            unique_id=str(d.uniqueID()),
            device_type=str(getattr(d, "deviceType", str)()),  # macOS 10.15+
            is_continuity=bool(getattr(d, "isContinuityCamera", bool)()),  # macOS 13+
            resolution=_active_resolution(d),
        )
        for d in found
    ]


def _active_resolution(device: object) -> tuple[int, int] | None:
    try:
        import CoreMedia

        dims = CoreMedia.CMVideoFormatDescriptionGetDimensions(
            device.activeFormat().formatDescription()  # type: ignore[attr-defined]
        )
        return (int(dims.width), int(dims.height))
    except Exception:  # best-effort metadata for `devices`; absence is fine
        return None


def _system_profiler_devices() -> list[AVFoundationDevice]:
    try:
        result = subprocess.run(
            ["system_profiler", "SPCameraDataType", "-json"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return parse_system_profiler(json.loads(result.stdout))
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        return []


def parse_system_profiler(data: dict) -> list[AVFoundationDevice]:
    """Cameras from `system_profiler SPCameraDataType -json` output."""
    return [
        AVFoundationDevice(
            name=str(item["_name"]), unique_id=str(item.get("spcamera_unique-id", ""))
        )
        for item in data.get("SPCameraDataType", [])
        if "_name" in item
    ]


def match_camera(query: str, cameras: Sequence[CameraInfo]) -> CameraInfo:
    """`iphone`, an index, or a case-insensitive name (exact match first, then substring)."""
    wanted = query.strip().lower()
    if wanted == "iphone":
        for camera in cameras:
            if camera.is_continuity:
                return camera
        raise UserError(_no_iphone_message(cameras))
    if wanted.isdigit():
        index = int(wanted)
        listed = [c for c in cameras if c.index == index]
        return listed[0] if listed else CameraInfo(name=f"camera {index}", index=index)
    for exact in (True, False):
        for camera in cameras:
            name = camera.name.lower()
            if name == wanted or (not exact and wanted in name):
                return camera
    raise UserError(
        f"No camera matches '{query}'. {describe_cameras(cameras)} Pass a name, an index, "
        "`iphone`, a stream URL or a video file."
    )


def describe_cameras(cameras: Sequence[CameraInfo]) -> str:
    """One sentence listing the cameras, for error messages."""
    if not cameras:
        return "No cameras were found on this computer."
    listed = ", ".join(f"{c.index}: {c.name}" for c in cameras)
    if any(c.index_is_guess for c in cameras):
        listed += " (indices guessed: install pyobjc-framework-AVFoundation for exact ones)"
    return f"Cameras found: {listed}."


def _no_iphone_message(cameras: Sequence[CameraInfo]) -> str:
    return (
        "No iPhone camera found. Continuity Camera needs macOS 13+ and iOS 16+, the same Apple ID "
        "on Mac and iPhone, Wi-Fi and Bluetooth on for both, and the iPhone near the Mac, locked "
        "and still, in landscape (iPhone: Settings > General > AirPlay & Continuity). "
        f"{describe_cameras(cameras)} Or pass a phone camera app's rtsp:// or http:// URL."
    )


def resolve_camera_spec(spec: str) -> str:
    """`auto` means an iPhone (Continuity Camera) if present, else the first camera."""
    if spec.strip().lower() != "auto":
        return spec
    cameras = list_cameras()
    if not cameras:
        raise UserError(
            "No camera found. Connect one, or pass --camera with a stream URL or a video file "
            "(or --camera none to talk without pictures)."
        )
    return str(next((c for c in cameras if c.is_continuity), cameras[0]).index)
