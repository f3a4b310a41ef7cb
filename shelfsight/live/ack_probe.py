"""What the kernel knows about our upload: bytes owed an acknowledgement, and whether any came.

A link judged only on what the server says cannot tell a stalled tether from a quiet one. The
kernel can: TCP acknowledgements come back from the server's side within round trips,
whatever the application above them does. Two platforms say so, each in its own words:

- Linux: `TCP_INFO` (`struct tcp_info`, include/uapi/linux/tcp.h): `tcpi_bytes_acked` grows
  with every acknowledgement (Linux 4.1+); `tcpi_unacked` (segments in flight) and
  `tcpi_notsent_bytes` (4.6+) say whether anything is owed; `tcpi_rto` (microseconds, with
  `tcpi_backoff` doublings applied) is the retransmission timeout; `tcpi_delivery_rate`
  (4.9+, bytes/s) is the path's rate when `tcpi_delivery_rate_app_limited` is clear.
- macOS: `TCP_CONNECTION_INFO` (0x106, `struct tcp_connection_info`, xnu
  bsd/netinet/tcp.h): `tcpi_snd_sbbytes` (the send buffer, in flight included) says what is
  owed; it shrinks on an acknowledgement, and new data leaving (`tcpi_txbytes` minus
  `tcpi_txretransmitbytes`) needs an open window, so either counts as progress;
  `tcpi_srtt`/`tcpi_rttvar` (ms) give the timeout without backoff, and `tcpi_snd_cwnd` over
  `tcpi_srtt` the rate while the window is the limit.

Elsewhere (or if the call fails) there is no probe, and the watchdog falls back to the unsent
backlog above the kernel (see `shelfsight.live.watchdog`). Probes are injectable: tests play
macOS here by passing none. Loop thread only (one probe object per socket: Darwin's keeps the
previous reading).
"""

from __future__ import annotations

import collections
import dataclasses
import socket
import struct
import sys
import time
from dataclasses import dataclass
from typing import Protocol

MIN_RTO_S = 0.2  # Linux's TCP_RTO_MIN; a floor for timeouts computed from RTT figures
ACKED_WINDOW_S = 1.0  # acknowledged throughput over this long
QUEUE_RTT_US = 20_000  # a smoothed RTT over twice the minimum plus this: a queue stands
QUEUED_SEGMENTS = 8  # ... of ours, with at least this much in flight (a ping is not a queue)
WARMUP_BYTES = 16 * 1024  # rates before this much went out are the first window's, not the path's

_LINUX_INFO_BYTES = 232
_LINUX_BACKOFF = 4  # u8
_LINUX_RTO = 8  # u32, microseconds
_LINUX_MSS = 16  # u32, bytes (tcpi_snd_mss)
_LINUX_UNACKED = 24  # u32, segments
_LINUX_BYTES_ACKED = 120  # u64
_LINUX_RTT = 68  # u32, microseconds, smoothed
_LINUX_MIN_RTT = 148  # u32, microseconds (Linux 4.6+)
_LINUX_NOTSENT = 144  # u32, bytes
_LINUX_APP_LIMITED = 7  # u8: bit 0, tcpi_delivery_rate_app_limited (Linux 4.9+)
_LINUX_DELIVERY_RATE = 160  # u64, bytes/s (Linux 4.9+)

DARWIN_TCP_CONNECTION_INFO = 0x106
_DARWIN_INFO = struct.Struct("<4B13I7Q")  # 112 bytes, as in xnu (the u64s fall 8-aligned)


@dataclass(frozen=True)
class SendState:
    """One reading of the send path.

    `owed_bytes`: written to the kernel and not yet acknowledged (in flight or unsent);
    `progress`: a counter that grows whenever the peer acknowledged something;
    `rto_s`: the retransmission timeout without backoff, when known;
    `trusted`: progress means the peer acknowledged (a kernel probe), not only that the local
    kernel took bytes (the watchdog's fallback), which it still does on a dead path until its
    buffer is full;
    `rate_bps`: what the path delivered, in bytes/s, measured while the sender was not held
    back by the application (so it is the path's rate, not ours); None when not known;
    `acked_bytes`, `kernel_bytes`: bytes of the stream acknowledged, and handed to the kernel
    (an upper bound: in flight counted in whole segments), since the connection began; None
    when the kernel does not count them (see `shelfsight.live.delivery`).
    """

    owed_bytes: int
    progress: int
    rto_s: float | None = None
    trusted: bool = True
    rate_bps: float | None = None
    acked_bytes: int | None = None
    kernel_bytes: int | None = None


class AckProbe(Protocol):
    """Reads one socket's send state; None when the kernel will not say."""

    name: str

    def read(self, sock: socket.socket) -> SendState | None: ...


class LinuxTcpInfo:
    """Linux; keeps the last second of readings to measure the acknowledged throughput.

    The kernel's own delivery rate rarely helps here: with BBR's or cubic's large window the
    sender is "application-limited" (all it has is already in flight, queued in the phone
    network), so no path-rate sample is taken. But then a queue stands at the bottleneck:
    the smoothed RTT is well over the path's minimum (`tcpi_rtt`, `tcpi_min_rtt`), and the
    bytes acknowledged a second are what the path carries.
    """

    name = "TCP_INFO"

    def __init__(self) -> None:
        self._acked: collections.deque[tuple[float, int]] = collections.deque()

    def read(self, sock: socket.socket) -> SendState | None:
        try:
            raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _LINUX_INFO_BYTES)
        except (OSError, AttributeError):
            return None
        return self.parse(raw, time.monotonic())

    def parse(self, raw: bytes, now: float) -> SendState | None:
        """`raw` read at `now` (monotonic s); the path's rate once a queue stands."""
        state = parse_linux_tcp_info(raw)
        if state is None or len(raw) < _LINUX_MIN_RTT + 4:
            return state
        self._acked.append((now, state.progress))
        while now - self._acked[0][0] > ACKED_WINDOW_S:
            self._acked.popleft()
        t0, acked0 = self._acked[0]
        if state.rate_bps is not None or now - t0 < ACKED_WINDOW_S / 2:
            return state
        rate = (state.progress - acked0) / (now - t0)
        rtt_us, min_rtt_us, unacked, mss = (
            struct.unpack_from("<I", raw, o)[0]
            for o in (_LINUX_RTT, _LINUX_MIN_RTT, _LINUX_UNACKED, _LINUX_MSS)
        )
        # Our own bytes queue at the bottleneck: the RTT well over the path's minimum, and
        # more of ours in flight than the path holds at that rate (not a radio's hiccup).
        in_flight = unacked * mss
        queued = min_rtt_us and rtt_us > 2 * min_rtt_us + QUEUE_RTT_US
        ours = unacked >= QUEUED_SEGMENTS and in_flight > 2 * rate * min_rtt_us / 1e6
        if queued and ours and rate > 0:
            state = dataclasses.replace(state, rate_bps=rate)
        return state


def parse_linux_tcp_info(raw: bytes) -> SendState | None:
    if len(raw) < _LINUX_BYTES_ACKED + 8:
        return None  # a kernel older than 4.1: no acknowledged-bytes counter
    unacked = struct.unpack_from("<I", raw, _LINUX_UNACKED)[0]
    notsent = struct.unpack_from("<I", raw, _LINUX_NOTSENT)[0] if len(raw) >= 148 else 0
    acked = struct.unpack_from("<Q", raw, _LINUX_BYTES_ACKED)[0]
    rto_us = struct.unpack_from("<I", raw, _LINUX_RTO)[0] >> min(raw[_LINUX_BACKOFF], 16)
    rate = None
    warm = acked >= WARMUP_BYTES
    if warm and len(raw) >= _LINUX_DELIVERY_RATE + 8 and not raw[_LINUX_APP_LIMITED] & 1:
        rate = float(struct.unpack_from("<Q", raw, _LINUX_DELIVERY_RATE)[0]) or None
    mss = struct.unpack_from("<I", raw, _LINUX_MSS)[0]
    # `unacked` counts segments: any is owed, so owed_bytes needs only "any"; the stream
    # position counts each as a whole segment (never under the truth).
    return SendState(
        int(unacked + notsent),
        int(acked),
        max(MIN_RTO_S, rto_us / 1e6),
        True,
        rate,
        acked_bytes=int(acked),
        kernel_bytes=int(acked + unacked * mss + notsent),
    )


class DarwinConnectionInfo:
    """macOS; keeps the previous reading to turn a shrinking buffer into a progress count."""

    name = "TCP_CONNECTION_INFO"

    def __init__(self) -> None:
        self._previous: tuple[int, int] | None = None  # (send buffer, new bytes sent)
        self._progress = 0

    def read(self, sock: socket.socket) -> SendState | None:
        try:
            raw = sock.getsockopt(socket.IPPROTO_TCP, DARWIN_TCP_CONNECTION_INFO, _DARWIN_INFO.size)
        except OSError:
            return None
        return self.parse(raw)

    def parse(self, raw: bytes) -> SendState | None:
        if len(raw) < _DARWIN_INFO.size:
            return None
        fields = _DARWIN_INFO.unpack_from(raw)
        cwnd, sbbytes, srtt_ms, rttvar_ms = fields[9], fields[11], fields[14], fields[15]
        txbytes, retransmitted = fields[18], fields[19]
        now = (sbbytes, txbytes - retransmitted)
        before = self._previous
        if before is not None and (now[0] < before[0] or now[1] > before[1]):
            self._progress += 1
        self._previous = now
        rto_s = (srtt_ms + 4 * rttvar_ms) / 1000 if srtt_ms else None
        # A window's worth a round trip, when the window is the limit (more waits than fits).
        warm = txbytes >= WARMUP_BYTES
        rate = cwnd / (srtt_ms / 1000) if warm and srtt_ms and sbbytes > cwnd else None
        rto = max(MIN_RTO_S, rto_s) if rto_s else None
        return SendState(int(sbbytes), self._progress, rto, True, rate)


def platform_probe(platform: str = sys.platform) -> AckProbe | None:
    """The probe this platform has, or None (the watchdog then watches the unsent backlog)."""
    if platform.startswith("linux") and hasattr(socket, "TCP_INFO"):
        return LinuxTcpInfo()
    if platform == "darwin":
        return DarwinConnectionInfo()
    return None
