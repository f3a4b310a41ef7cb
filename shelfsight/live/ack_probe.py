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

import socket
import struct
import sys
from dataclasses import dataclass
from typing import Protocol

MIN_RTO_S = 0.2  # Linux's TCP_RTO_MIN; a floor for timeouts computed from RTT figures
WARMUP_BYTES = 16 * 1024  # rates before this much went out are the first window's, not the path's

_LINUX_INFO_BYTES = 232
_LINUX_BACKOFF = 4  # u8
_LINUX_RTO = 8  # u32, microseconds
_LINUX_UNACKED = 24  # u32, segments
_LINUX_BYTES_ACKED = 120  # u64
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
    back by the application (so it is the path's rate, not ours); None when not known.
    """

    owed_bytes: int
    progress: int
    rto_s: float | None = None
    trusted: bool = True
    rate_bps: float | None = None


class AckProbe(Protocol):
    """Reads one socket's send state; None when the kernel will not say."""

    name: str

    def read(self, sock: socket.socket) -> SendState | None: ...


class LinuxTcpInfo:
    name = "TCP_INFO"

    def read(self, sock: socket.socket) -> SendState | None:
        try:
            raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _LINUX_INFO_BYTES)
        except (OSError, AttributeError):
            return None
        return parse_linux_tcp_info(raw)


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
    # `unacked` counts segments: any is owed; its size in bytes is not needed, only "any".
    return SendState(int(unacked + notsent), int(acked), max(MIN_RTO_S, rto_us / 1e6), True, rate)


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
