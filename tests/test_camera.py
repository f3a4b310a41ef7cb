"""Camera sources and the frame sampler, on real video files, real sockets and fake sysfs trees.

Every generated frame is a synthetic shelf scene with its frame number burned into a strip of
black/white blocks at the top, so a test can tell exactly which file frame it was handed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from shelfsight.errors import UserError
from shelfsight.media.camera import (
    AVFoundationDevice,
    Camera,
    CameraInfo,
    describe_cameras,
    list_cameras,
    list_v4l2_cameras,
    match_camera,
    open_camera,
    opencv_order,
    parse_system_profiler,
)
from shelfsight.media.frames import EncodedFrame, FrameSampler
from tests.support.mjpeg import MjpegServer

FPS = 30
BITS = 10  # frame numbers up to 1023
BOX_COLOURS = [(40, 40, 200), (40, 160, 40), (200, 120, 30), (30, 200, 220), (160, 60, 160)]


def shelf_scene(number: int, width: int, height: int) -> np.ndarray:
    """Wall, three shelves with coloured boxes, and `number` as bit blocks plus digits."""
    image = np.full((height, width, 3), (205, 215, 225), np.uint8)
    for shelf in range(1, 4):
        y = int(height * (0.25 + shelf * 0.25)) - 4
        cv2.rectangle(image, (0, y), (width, y + height // 40), (40, 70, 110), -1)
        for slot in range(6):
            x = int(width * (slot + 0.3) / 6)
            top = y - int(height * (0.08 + 0.02 * ((slot + shelf) % 3)))
            colour = BOX_COLOURS[(slot + shelf) % len(BOX_COLOURS)]
            cv2.rectangle(image, (x, top), (x + width // 10, y), colour, -1)
    cell = width / (BITS + 2)
    for bit in range(BITS):
        on = (number >> bit) & 1
        x0, x1 = round((bit + 1) * cell), round((bit + 2) * cell)
        cv2.rectangle(image, (x0, 0), (x1 - 1, round(cell) - 1), (255,) * 3 if on else (0,) * 3, -1)
    cv2.putText(image, str(number), (width // 20, int(height * 0.4)), 0, height / 200, (0, 0, 0), 3)
    return image


def read_number(image: np.ndarray) -> int:
    """Decode the bit blocks (works after resizing and JPEG: samples each block's centre)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cell = image.shape[1] / (BITS + 2)
    number = 0
    for bit in range(BITS):
        x0, x1 = int((bit + 1.25) * cell), int((bit + 1.75) * cell)
        y0, y1 = int(0.25 * cell), int(0.75 * cell)
        if gray[y0:y1, x0:x1].mean() > 127:
            number |= 1 << bit
    return number


def write_video(path: Path, n_frames: int, width: int = 640, height: int = 360) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    assert writer.isOpened()
    for number in range(n_frames):
        writer.write(shelf_scene(number, width, height))
    writer.release()
    return path


def run(coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coro_fn())


def started(spec: str) -> tuple[Camera, float]:
    """Open and start a camera; returns it with the monotonic time just before start()."""
    camera = open_camera(spec)
    assert camera is not None
    t_start = time.monotonic()
    camera.start()
    return camera, t_start


def test_a_video_file_plays_in_real_time_and_hands_out_the_current_frame(tmp_path: Path) -> None:
    camera, t_start = started(str(write_video(tmp_path / "shelf.avi", 90)))

    async def scenario() -> None:
        await asyncio.sleep(1.0)
        frame = await camera.frame()
        assert frame is not None
        t_handed_out = time.monotonic()
        assert frame.image.shape == (360, 640, 3) and frame.image.dtype == np.uint8
        assert read_number(frame.image) == frame.seq  # the frame counter is the file position
        assert 20 <= frame.seq <= 45  # about frame 30 after one second of wall time
        wall_clock_position = (frame.t_capture - t_start) * FPS
        assert abs(frame.seq - wall_clock_position) <= 8
        assert t_handed_out - frame.t_capture < 0.25  # fresh, not a buffered old frame

    try:
        run(scenario)
    finally:
        camera.close()


def test_a_video_file_loops_at_the_end(tmp_path: Path) -> None:
    camera, t_start = started(str(write_video(tmp_path / "short.avi", FPS)))  # one second

    async def scenario() -> None:
        await asyncio.sleep(1.5)
        frame = await camera.frame()
        assert frame is not None
        assert frame.seq >= FPS  # kept going past the last file frame
        assert read_number(frame.image) == frame.seq % FPS  # restarted at file frame 0
        assert abs(frame.seq - (frame.t_capture - t_start) * FPS) <= 8

    try:
        run(scenario)
    finally:
        camera.close()


def test_sampler_sends_about_one_fresh_jpeg_per_second_within_max_side(tmp_path: Path) -> None:
    camera, t_start = started(str(write_video(tmp_path / "hd.avi", FPS, 1280, 720)))
    received: list[EncodedFrame] = []

    async def scenario() -> None:
        sampler = FrameSampler(camera)  # defaults: 1 fps, long side 1024, quality 80
        async with contextlib.aclosing(sampler.frames()) as frames:
            async for encoded in frames:
                received.append(encoded)
                if len(received) == 3:
                    break

    try:
        run(scenario)
    finally:
        camera.close()
    gaps = [b.t_encoded - a.t_encoded for a, b in zip(received, received[1:], strict=False)]
    assert all(0.7 < gap < 1.3 for gap in gaps), gaps
    for encoded in received:
        image = cv2.imdecode(np.frombuffer(encoded.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (576, 1024, 3) and (encoded.width, encoded.height) == (1024, 576)
        assert read_number(image) == encoded.seq % FPS
        assert abs(encoded.seq - (encoded.t_capture - t_start) * FPS) <= 8
        assert 0 <= encoded.t_encoded - encoded.t_capture < 0.5


def test_sampler_never_upscales_a_small_camera(tmp_path: Path) -> None:
    camera, _ = started(str(write_video(tmp_path / "small.avi", 10, 320, 240)))

    async def first(sampler: FrameSampler) -> EncodedFrame:
        async with contextlib.aclosing(sampler.frames()) as frames:
            async for encoded in frames:
                return encoded
        raise AssertionError("no frame")

    async def scenario() -> None:
        small = await first(FrameSampler(camera, max_side=1024, jpeg_quality=90))
        assert (small.width, small.height) == (320, 240)
        image = cv2.imdecode(np.frombuffer(small.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (240, 320, 3)
        shrunk = await first(FrameSampler(camera, max_side=160))
        assert (shrunk.width, shrunk.height) == (160, 120)

    try:
        run(scenario)
    finally:
        camera.close()


def test_close_is_fast_idempotent_and_stops_frames(tmp_path: Path) -> None:
    camera, _ = started(str(write_video(tmp_path / "shelf.avi", 10)))

    async def scenario() -> None:
        assert await camera.frame() is not None
        t0 = time.monotonic()
        camera.close()
        camera.close()
        assert time.monotonic() - t0 < 0.5
        assert await camera.frame(timeout_s=0.5) is None

    run(scenario)


def test_missing_video_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        open_camera(str(tmp_path / "nope.mp4"))


def test_unreadable_video_file_is_a_user_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    camera = open_camera(str(broken))
    assert camera is not None
    with pytest.raises(UserError, match="Cannot read video file"):
        camera.start()


def test_camera_none_means_no_camera() -> None:
    assert open_camera("none") is None
    assert open_camera(" NONE ") is None


def test_unknown_camera_name_lists_the_cameras_that_are_there() -> None:
    with pytest.raises(UserError) as error:
        open_camera("Definitely Not A Camera 9000")
    message = str(error.value)
    assert "Definitely Not A Camera 9000" in message
    cameras = list_cameras()
    if cameras:
        assert all(camera.name in message for camera in cameras)
    else:
        assert "no cameras were found" in message.lower()


def test_unreachable_stream_fails_quickly_without_leaking_the_password() -> None:
    camera = open_camera("rtsp://shopper:hunter2@127.0.0.1:1/x")
    assert camera is not None and "hunter2" not in camera.name
    t0 = time.monotonic()
    with pytest.raises(UserError) as error:
        camera.start()
    assert time.monotonic() - t0 < 14
    assert "127.0.0.1:1" in str(error.value) and "hunter2" not in str(error.value)


def _seven(_: int) -> np.ndarray:
    return shelf_scene(7, 320, 240)


def test_closing_a_frozen_stream_does_not_hang() -> None:
    server = MjpegServer(fps=20, frames_per_connection=5, hang_up=False, picture=_seven)
    camera, _ = started(server.url)

    async def scenario() -> None:
        assert await camera.frame() is not None
        await asyncio.sleep(0.5)  # the grab thread is now blocked inside grab()
        t0 = time.monotonic()
        camera.close()
        assert time.monotonic() - t0 < 0.5

    try:
        run(scenario)
    finally:
        server.close()


def test_a_stream_that_drops_is_stalled_then_reopened() -> None:
    server = MjpegServer(fps=20, frames_per_connection=10, picture=_seven)
    camera, _ = started(server.url)

    async def scenario() -> None:
        first = await camera.frame()
        assert first is not None and read_number(first.image) == 7
        saw_stall = False
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            frame = await camera.frame(timeout_s=0.3)
            saw_stall = saw_stall or frame is None
            if saw_stall and frame is not None:
                assert frame.seq > first.seq
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"no stall and recovery (stall seen: {saw_stall})")
        assert server.connections >= 2

    try:
        run(scenario)
    finally:
        camera.close()
        server.close()


def test_v4l2_cameras_are_named_from_sysfs_and_metadata_nodes_skipped(tmp_path: Path) -> None:
    nodes = {
        "video0": ("HD Pro Webcam C920", "0"),
        "video1": ("HD Pro Webcam C920", "1"),  # the UVC metadata node of the same camera
        "video2": ("Camo: Jane's iPhone", "0"),
        "video10": ("OBS Virtual Camera", None),  # no index attribute
    }
    for node, (name, index) in nodes.items():
        (tmp_path / node).mkdir()
        (tmp_path / node / "name").write_text(name + "\n")
        if index is not None:
            (tmp_path / node / "index").write_text(index + "\n")
    (tmp_path / "v4l-subdev0").mkdir()

    cameras = list_v4l2_cameras(tmp_path)

    assert [(c.index, c.name) for c in cameras] == [
        (0, "HD Pro Webcam C920"),
        (2, "Camo: Jane's iPhone"),
        (10, "OBS Virtual Camera"),
    ]
    assert match_camera("c920", cameras).index == 0
    assert match_camera("iphone", cameras).index == 2
    assert list_v4l2_cameras(tmp_path / "missing") == []


MAC_DEVICES = [
    AVFoundationDevice("FaceTime HD Camera", "47B4B64B-7067-4B9C-AD2B", "BuiltInWideAngle"),
    AVFoundationDevice("Jane’s iPhone Desk View Camera", "0A77-DESK", "x"),
    AVFoundationDevice("Camera", "2222", "AVCaptureDeviceTypeExternal"),
    AVFoundationDevice("Studio", "0A77-MAIN", "AVCaptureDeviceTypeContinuityCamera"),
    AVFoundationDevice("USB Camera", "1111", "AVCaptureDeviceTypeExternal"),
]


def test_mac_cameras_are_numbered_like_opencv_and_matched_by_name() -> None:
    cameras = opencv_order(MAC_DEVICES)

    # OpenCV's AVFoundation backend sorts devices by uniqueID.
    assert [c.name for c in cameras] == [
        "Jane’s iPhone Desk View Camera",
        "Studio",
        "USB Camera",
        "Camera",
        "FaceTime HD Camera",
    ]
    assert [c.index for c in cameras] == [0, 1, 2, 3, 4]
    assert match_camera("iphone", cameras).name == "Studio"  # by device type, not Desk View
    by_name = AVFoundationDevice("Jane's iPhone Camera", "Z", "AVCaptureDeviceTypeExternal")
    assert match_camera("IPHONE", opencv_order([MAC_DEVICES[0], by_name])).index == 1
    assert match_camera("facetime", cameras).index == 4  # case-insensitive substring
    assert match_camera("camera", cameras).name == "Camera"  # an exact name beats a substring
    assert match_camera("2", cameras).name == "USB Camera"
    assert match_camera("7", cameras) == CameraInfo(name="camera 7", index=7)


def test_iphone_missing_explains_continuity_camera_and_lists_cameras() -> None:
    cameras = opencv_order([MAC_DEVICES[0], MAC_DEVICES[4]])
    with pytest.raises(UserError) as error:
        match_camera("iphone", cameras)
    message = str(error.value)
    assert "Apple ID" in message and "Bluetooth" in message and "macOS 13" in message
    assert "FaceTime HD Camera" in message and "USB Camera" in message
    with pytest.raises(UserError, match="No cameras were found"):
        match_camera("iphone", [])


def test_system_profiler_names_are_used_with_a_guessed_order() -> None:
    output = {
        "SPCameraDataType": [
            {"_name": "FaceTime HD Camera", "spcamera_unique-id": "0x8020000005ac8514"},
            {"_name": "Jane's iPhone Camera", "spcamera_unique-id": "0x1"},
            {"spcamera_model-id": "nameless"},
        ]
    }
    cameras = opencv_order(parse_system_profiler(output), index_is_guess=True)
    assert [(c.index, c.name, c.is_continuity) for c in cameras] == [
        (0, "Jane's iPhone Camera", True),
        (1, "FaceTime HD Camera", False),
    ]
    assert "guessed" in describe_cameras(cameras)


def test_a_slow_link_gets_light_pictures_under_half_the_bytes(shelf_video: Path) -> None:
    camera, _ = started(str(shelf_video))

    async def first(sampler: FrameSampler) -> EncodedFrame:
        async with contextlib.aclosing(sampler.frames()) as frames:
            async for encoded in frames:
                return encoded
        raise AssertionError("no frame")

    async def scenario() -> tuple[EncodedFrame, EncodedFrame]:
        sampler = FrameSampler(camera, max_side=768)
        full = await first(sampler)
        sampler.light = True
        return full, await first(sampler)

    try:
        full, light = asyncio.run(scenario())
    finally:
        camera.close()
    assert max(light.width, light.height) <= 384 < max(full.width, full.height)
    assert len(light.jpeg) * 2 <= len(full.jpeg), (len(light.jpeg), len(full.jpeg))
