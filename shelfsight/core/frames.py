"""A picture ready to send: the link, the guide and the recorder share it (no OpenCV here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncodedFrame:
    """One JPEG ready to send; times are time.monotonic() seconds."""

    jpeg: bytes
    width: int
    height: int
    t_capture: float  # when the source delivered the frame
    t_encoded: float  # when the JPEG was ready
    seq: int  # the source frame counter (Frame.seq)
    # A tiny grey picture (THUMB_SIZE, uint8, rows first) to tell a changed scene cheaply
    # (shelfsight.session.pictures); empty where unknown (a replayed frame).
    thumb: bytes = b""


THUMB_SIZE = (32, 24)  # width, height
