"""A dead link noticed within seconds, a quiet one left alone.

A phone tether stalls without closing: bytes just stop. websockets' own keepalive cannot see
that while the mic streams (its ping waits in the same `drain()` as the audio), and it closes
a healthy connection whose pongs are late (the SDK leaves its 20 s timeout on; the service's
pongs have been reported 8-30 s late), so that timeout is turned off and this watchdog judges
instead, by the rules of `shelfsight.live.liveness`: only what is owed counts.

Every `TICK_S` it reads the send path: the kernel's acknowledgements through an `AckProbe`
(Linux `TCP_INFO`, macOS `TCP_CONNECTION_INFO`), or without one the unsent backlog above the
kernel (asyncio's write buffers and a send waiting on them), which drains only as the kernel
takes bytes, which it does only as acknowledgements come. Its own ping every `ping_every_s`
gives idle connections something owed (a pong from a server that answers pings, the ping's
acknowledgement), judged on the generous idle bound. A verdict aborts the transport (no close
handshake: nobody would answer it) and raises `DeadLink`, so the reconnect starts at once.

The socket also gets `TCP_NOTSENT_LOWAT` and the transports a small write buffer: the kernel
and asyncio then hold at most ~16 KB each of unsent bytes, and any further backlog waits in
the link's outbox, where it is measured, kept in order and bounded (a 4 MB kernel buffer would
otherwise hide two minutes of audio at 256 kbit/s, and a stall along with it).
Loop thread only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from shelfsight.live import sdk_socket
from shelfsight.live.ack_probe import AckProbe, SendState
from shelfsight.live.delivery import Delivery
from shelfsight.live.liveness import Liveness

log = logging.getLogger(__name__)

NOTSENT_LOWAT_BYTES = 16 * 1024
WRITE_BUFFER_BYTES = 16 * 1024  # the websocket transports' high-water mark (0.4 s of audio)
_TCP_NOTSENT_LOWAT = getattr(
    socket,
    "TCP_NOTSENT_LOWAT",
    {"linux": 25, "darwin": 0x201}.get(sys.platform),  # include/uapi/linux/tcp.h, xnu tcp.h
)
TICK_S = 0.1
PING_EVERY_S = 5.0
RATE_WINDOW_S = 30.0  # the path's rate: the median of the kernel's measurements this recent
RATE_SAMPLES = 2  # ... once it has made this many (a picture's burst gives a few)


class DeadLink(OSError):
    """The connection was cut on purpose: `silent_since` (monotonic s) is when nothing more
    got through, which is when the outage began for the user."""

    def __init__(self, reason: str, silent_since: float) -> None:
        super().__init__(reason)
        self.silent_since = silent_since


class Watchdog:
    """Watches one websocket (the SDK session's); `run()` raises DeadLink, or returns once
    `retiring()` says the connection is being closed on purpose. `sending()` says whether the
    link is inside a send (the fallback counts that as owed)."""

    def __init__(
        self,
        ws: Any,
        *,
        stall_s: float,
        retiring: Callable[[], bool],
        probe: AckProbe | None,
        sent_before: int = 0,
        sending: Callable[[], bool] = lambda: False,
        ping_every_s: float = PING_EVERY_S,
        on_tick: Callable[[], None] = lambda: None,
    ) -> None:
        self._ws = ws
        self._retiring = retiring
        self._sending = sending
        self._ping_every_s = ping_every_s
        self._on_tick = on_tick
        self._rates: collections.deque[tuple[float, float]] = collections.deque(maxlen=50)
        self._sock = sdk_socket.socket_of(ws)
        self._probe = probe if self._sock is not None else None
        self.liveness = Liveness(time.monotonic(), stall_s=stall_s)
        self._delivery = Delivery(sent_before)
        self._drained = 0  # fallback progress: times the backlog shrank, or a send returned
        self._unsent = 0
        # Without the TCP transport (asyncio internals moved) the backlog is not visible:
        # a send waiting on it is then what is owed, and its return the progress.
        self._backlog_visible = len(sdk_socket.transports_of(ws)) > 1
        self.keepalive_off = sdk_socket.stop_keepalive_timeout(ws)
        sdk_socket.limit_write_buffers(ws, WRITE_BUFFER_BYTES)
        if self._sock is not None and _TCP_NOTSENT_LOWAT is not None:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, NOTSENT_LOWAT_BYTES)

    @property
    def probe_name(self) -> str:
        return self._probe.name if self._probe is not None else "unsent backlog"

    @property
    def t_proof(self) -> float:
        """The last sign the server is there (monotonic s): for the slow-link judgement."""
        return self.liveness.t_proof

    @property
    def uplink_bps(self) -> float | None:
        """The path's upload rate as the kernel measured it lately (bytes/s), or None."""
        now = time.monotonic()
        recent = sorted(r for t, r in self._rates if now - t <= RATE_WINDOW_S)
        return recent[len(recent) // 2] if len(recent) >= RATE_SAMPLES else None

    @property
    def buffered_bytes(self) -> int:
        """Bytes written to the websocket's transports and not yet taken by the kernel."""
        return sdk_socket.unsent_bytes(self._ws)

    @property
    def kernel_owed_bytes(self) -> int:
        """Bytes the kernel took and the server has not acknowledged, when the kernel counts
        them (else 0): in flight, or queued on a slow path."""
        state = self._read()
        if state.kernel_bytes is None or state.acked_bytes is None:
            return 0
        return state.kernel_bytes - state.acked_bytes

    def delivered(self) -> int:
        """The outbox index up to which everything sent has surely reached the server."""
        self._observe_delivery(self._read())
        return self._delivery.delivered

    # -- told by the link ---------------------------------------------------------------------

    def sent(self, index: int) -> None:
        """Outbox item `index` was written: note where it ends in the stream."""
        state = self._read()
        end = None if state.kernel_bytes is None else state.kernel_bytes + self.buffered_bytes
        self._delivery.sent(index, end)

    def heard(self) -> None:
        self.liveness.heard(time.monotonic())

    def writing(self) -> None:
        self.liveness.writing(time.monotonic())

    def written(self) -> None:
        if not self._backlog_visible:
            self._drained += 1

    def reply_owed(self) -> None:
        self.liveness.reply_owed(time.monotonic())

    # -- the watch ----------------------------------------------------------------------------

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
            now = time.monotonic()
            state = self._read()
            self.liveness.observe(now, state)
            self._observe_delivery(state)
            if state.rate_bps is not None:
                self._rates.append((now, state.rate_bps))
                log.debug("path rate %.0f B/s (%d owed)", state.rate_bps, state.owed_bytes)
            self._on_tick()
            dead = self.liveness.verdict(now)
            if dead is not None and not self._retiring():
                sdk_socket.abort(self._ws)
                raise DeadLink(dead.reason, dead.silent_since)

    def _observe_delivery(self, state: SendState) -> None:
        drained = state.owed_bytes == 0 and self.buffered_bytes == 0 and not self._sending()
        self._delivery.observe(acked_bytes=state.acked_bytes, drained=drained)

    def _read(self) -> SendState:
        """The kernel's view if a probe gives one, else the backlog above the kernel."""
        if self._probe is not None and self._sock is not None:
            state = self._probe.read(self._sock)
            if state is not None:
                return state
        if not self._backlog_visible:
            return SendState(1 if self._sending() else 0, self._drained, trusted=False)
        unsent = self.buffered_bytes
        if unsent < self._unsent:
            self._drained += 1  # the kernel took bytes: it had room, so acknowledgements came
        self._unsent = unsent
        return SendState(unsent, self._drained, trusted=False)

    async def _ping_loop(self) -> None:
        """A ping every `ping_every_s`, never waiting for its pong (which may never come)."""
        try:
            while True:
                await asyncio.sleep(self._ping_every_s)
                self.liveness.ping_sent(time.monotonic())
                pong = await self._ws.ping()
                pong.add_done_callback(self._on_pong)
        except Exception:
            # The connection closed: the receiver reports why; the watch loop ends on its own.
            if not self._retiring():
                await asyncio.Event().wait()  # stay until the group is cancelled
            return

    def _on_pong(self, pong: asyncio.Future[float]) -> None:
        if not pong.cancelled() and pong.exception() is None:
            self.liveness.pong(time.monotonic())
