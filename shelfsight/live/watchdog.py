"""Is anything coming back on this connection? A dead link is noticed and cut within seconds.

A phone tether stalls without closing: bytes just stop. websockets' own keepalive cannot see
that while the mic streams, because its ping waits in the same `drain()` as the audio and its
timeout only starts once the write buffer has room, which on a dead link is never. So liveness
is judged on what comes back, independently of the send path:

- any server message (the link calls `heard()`),
- a pong to our own ping, sent every `ping_every_s` from its own task (it may wait behind the
  buffered audio: that delays the pong, it does not stop the watch),
- on Linux, TCP acknowledgements of what we sent (`tcpi_bytes_acked` growing): on a slow but
  working link the pong waits behind queued audio while the ACKs keep coming.

After `dead_after_s` with none of these, the transport is aborted (no close handshake: there is
nobody to answer it) and `DeadLink` is raised, so the reconnect starts at once.

The socket also gets `TCP_NOTSENT_LOWAT` and the transport a small write buffer: the kernel and
asyncio then hold at most ~16 KB each of unsent bytes, and any further backlog waits in the
link's outbox, where it is measured, kept in order and bounded (a 4 MB kernel buffer would
otherwise hide two minutes of audio at 256 kbit/s).
Loop thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

NOTSENT_LOWAT_BYTES = 16 * 1024
WRITE_BUFFER_BYTES = 16 * 1024  # the websocket transport's high-water mark (0.4 s of audio)
_TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25 if sys.platform == "linux" else None)
_BYTES_ACKED_OFFSET = 120  # struct tcp_info (include/uapi/linux/tcp.h), Linux >= 4.1
TICK_S = 0.25


class DeadLink(OSError):
    """Nothing came back from the server for a while: the connection was cut on purpose."""


class Watchdog:
    """Watches one websocket (the SDK session's `_ws`); `run()` raises DeadLink, or returns
    once `retiring()` says the connection is being closed on purpose."""

    def __init__(
        self,
        ws: Any,
        *,
        dead_after_s: float,
        ping_every_s: float,
        retiring: Callable[[], bool],
    ) -> None:
        self._ws = ws
        self._dead_after_s = dead_after_s
        self._ping_every_s = ping_every_s
        self._retiring = retiring
        self._sock = _socket_of(ws)
        self._acked = _bytes_acked(self._sock)
        self.t_heard = time.monotonic()
        for transport in _transports(ws):  # TLS on TCP: websockets' 32 KiB, asyncio's 64 KiB
            with contextlib.suppress(AttributeError, ValueError):
                transport.set_write_buffer_limits(high=WRITE_BUFFER_BYTES)
        if self._sock is not None and _TCP_NOTSENT_LOWAT is not None:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, NOTSENT_LOWAT_BYTES)

    def heard(self) -> None:
        self.t_heard = time.monotonic()

    @property
    def buffered_bytes(self) -> int:
        """Bytes written to the websocket's transport and not yet taken by the kernel."""
        return sum(int(t.get_write_buffer_size()) for t in _transports(self._ws))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            pinger = tg.create_task(self._ping_loop())
            try:
                await self._watch()
            finally:
                pinger.cancel()

    async def _watch(self) -> None:
        while not self._retiring():
            await asyncio.sleep(TICK_S)
            acked = _bytes_acked(self._sock)
            if acked is not None and acked != self._acked:
                self._acked = acked
                self.heard()
            silent_s = time.monotonic() - self.t_heard
            if silent_s >= self._dead_after_s and not self._retiring():
                transport = getattr(self._ws, "transport", None)
                if transport is not None:
                    transport.abort()
                raise DeadLink(f"no reply from the server for {silent_s:.0f} s")

    async def _ping_loop(self) -> None:
        """One ping at a time; a pong means the link works both ways."""
        try:
            while True:
                await asyncio.sleep(self._ping_every_s)
                pong = await self._ws.ping()
                await pong
                self.heard()
        except Exception:
            # The connection closed: the receiver reports why; the watch loop ends on its own.
            if not self._retiring():
                await asyncio.Event().wait()  # stay until the group is cancelled
            return


def _transports(ws: Any) -> list[Any]:
    """The websocket's transport and, under TLS, the TCP transport below it (asyncio's
    `_SSLProtocolTransport` keeps it private; absent elsewhere, which is fine)."""
    transport = getattr(ws, "transport", None)
    if transport is None:
        return []
    inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
    return [transport] if inner is None else [transport, inner]


def _socket_of(ws: Any) -> socket.socket | None:
    transport = getattr(ws, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock if sock is not None and hasattr(sock, "getsockopt") else None


def _bytes_acked(sock: socket.socket | None) -> int | None:
    """Linux: bytes of ours the peer has acknowledged; None where that is not known."""
    if sock is None or not sys.platform.startswith("linux"):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    except OSError:
        return None
    if len(raw) < _BYTES_ACKED_OFFSET + 8:
        return None
    return int(struct.unpack_from("Q", raw, _BYTES_ACKED_OFFSET)[0])
