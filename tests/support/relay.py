"""A fault-injecting TCP relay on 127.0.0.1 (TLS and websockets pass through untouched).

    client ──TCP──> [relay 127.0.0.1:port] ──TCP──> target (e.g. the Live stand-in)

Faults are per direction ("up" = client -> target, "down" = target -> client) and can be
changed at any time, from any thread:

* delay_ms + jitter_ms: each chunk is released at arrival + delay + U(0, jitter), but never
  before an earlier chunk (byte order is preserved; jitter only ever adds latency).
* rate_bps: a token bucket (bits/s) at the relay's ingress, like a slow access link.
* stall() / resume(): forward nothing, keep both sockets open, stop reading (so the sender's
  kernel buffers fill and its writes block), hold back closes from the other side too.
* blackhole_then_drop(after_s): stall, then after `after_s` abort both sockets (RST).
* drop(): abort every connection now.
* forget(): the path comes back without the connections that crossed it (their server side
  stays open: the server never hears that the client has gone).

Bounded buffering: each direction holds at most `max_buffer` bytes waiting for the bottleneck
(the source socket is not read while it is over; like a router queue of 64 KB) plus at most
`max_inflight` bytes "on the wire" (released by the delay stage). The relay's own sockets get
small kernel buffers (`sock_buf`, default 64 KiB; Linux doubles it), so a stalled or capped
relay pushes back on the sender within ~100-300 KB instead of the 32 MB loopback autotuning
would allow. Memory is therefore O(connections x (max_buffer + max_inflight + sock_buf)).

Runs on its own thread and loop (`RelayThread`, a context manager), so its timing does not
depend on the loop of the code under test; or in-loop with `Relay` (async context manager).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

DIRECTIONS = ("up", "down")


@dataclasses.dataclass
class Faults:
    """The live fault settings of one direction (mutated in place on the relay's loop)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_bps: float | None = None  # None: unlimited
    stalled: bool = False


@dataclasses.dataclass
class Counters:
    """Bytes per direction: read from the source socket, and written to the destination."""

    up_in: int = 0
    up_out: int = 0
    down_in: int = 0
    down_out: int = 0
    connections: int = 0
    drops: int = 0

    def get(self, direction: str, stage: str) -> int:
        return int(getattr(self, f"{direction}_{stage}"))


class _Side(asyncio.Protocol):
    """One socket of a relayed connection; feeds the pipe that reads from it."""

    def __init__(self, conn: _Conn, name: str) -> None:
        self.conn, self.name = conn, name
        self.transport: asyncio.Transport | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # Small userland write buffer: backpressure reaches the source quickly.
        self.transport.set_write_buffer_limits(high=16 * 1024)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.conn.pipe_from(self.name).feed(data)

    def eof_received(self) -> bool:
        self.conn.pipe_from(self.name).feed_eof()
        return True  # keep the transport open for the other direction (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        self.writable.set()
        self.conn.side_lost(self.name, exc)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


class _Pipe:
    """One direction of one connection: ingress queue -> token bucket -> delay line -> dst."""

    def __init__(self, relay: Relay, direction: str, src: _Side, dst: _Side) -> None:
        self.relay, self.direction = relay, direction
        self.faults = relay.faults[direction]
        self.src, self.dst = src, dst
        self.queue: collections.deque[bytes] = collections.deque()
        self.queued = 0
        self.line: collections.deque[tuple[float, bytes]] = collections.deque()
        self.inflight = 0
        self.eof = False
        self.shaper_done = False
        self.reading_paused = False
        self.shaper_wake = asyncio.Event()
        self.emitter_wake = asyncio.Event()
        self.tokens = 0.0
        self.t_tokens = time.monotonic()
        self.last_release = 0.0
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._shaper()), loop.create_task(self._emitter())]

    # -- ingress (protocol callbacks) --

    def feed(self, data: bytes) -> None:
        self.queue.append(data)
        self.queued += len(data)
        setattr(
            self.relay.counters,
            f"{self.direction}_in",
            self.relay.counters.get(self.direction, "in") + len(data),
        )
        self.update_reading()
        self.shaper_wake.set()

    def feed_eof(self) -> None:
        self.eof = True
        self.shaper_wake.set()

    def update_reading(self) -> None:
        """Read from the source only while not stalled and the queue is below its limit."""
        tr = self.src.transport
        if tr is None or tr.is_closing():
            return
        full = self.queued >= self.relay.max_buffer or self.inflight >= self.relay.max_inflight
        pause = self.faults.stalled or full
        if pause and not self.reading_paused:
            tr.pause_reading()
            self.reading_paused = True
        elif not pause and self.reading_paused and self.queued <= self.relay.max_buffer // 2:
            tr.resume_reading()
            self.reading_paused = False

    def poke(self) -> None:
        self.update_reading()
        self.shaper_wake.set()
        self.emitter_wake.set()

    # -- stage 1: the bottleneck (token bucket) --

    async def _wait(self, event: asyncio.Event, wait_s: float | None = None) -> None:
        event.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await event.wait()

    def _slice_bytes(self, rate_bps: float) -> int:
        # Serialize ~5 ms at a time (at least one 1500 B packet): smooth, few wakeups.
        return max(1500, int(rate_bps / 8 * 0.005))

    async def _shaper(self) -> None:
        relay = self.relay
        while True:
            f = self.faults
            if f.stalled or not self.queue or self.inflight >= relay.max_inflight:
                if self.eof and not self.queue:
                    self.shaper_done = True
                    self.emitter_wake.set()
                    return
                await self._wait(self.shaper_wake)
                continue
            chunk = self.queue[0]
            now = time.monotonic()
            if f.rate_bps:
                rate = f.rate_bps / 8  # bytes/s
                n = min(len(chunk), self._slice_bytes(f.rate_bps))
                burst = max(n, rate * 0.02)
                self.tokens = min(burst, self.tokens + (now - self.t_tokens) * rate)
                self.t_tokens = now
                if self.tokens < n:
                    await self._wait(self.shaper_wake, (n - self.tokens) / rate)
                    continue
                self.tokens -= n
            else:
                n = len(chunk)
                self.t_tokens, self.tokens = now, 0.0
            piece = chunk[:n]
            if n == len(chunk):
                self.queue.popleft()
            else:
                self.queue[0] = chunk[n:]
            self.queued -= n
            jitter = random.uniform(0.0, f.jitter_ms) if f.jitter_ms > 0 else 0.0
            release = max(now + (f.delay_ms + jitter) / 1000, self.last_release)
            self.last_release = release
            self.line.append((release, piece))
            self.inflight += n
            self.update_reading()
            self.emitter_wake.set()

    # -- stage 2: the delay line and the destination socket --

    async def _emitter(self) -> None:
        relay = self.relay
        while True:
            if self.faults.stalled or not self.line:
                if self.shaper_done and not self.line:
                    self._close_dst_write()
                    return
                await self._wait(self.emitter_wake)
                continue
            release, piece = self.line[0]
            wait = release - time.monotonic()
            if wait > 0:
                await self._wait(self.emitter_wake, wait)
                continue  # re-check stall and the head
            await self.dst.writable.wait()
            tr = self.dst.transport
            if tr is None or tr.is_closing():
                return
            if self.faults.stalled:
                continue
            self.line.popleft()
            self.inflight -= len(piece)
            tr.write(piece)
            setattr(
                relay.counters,
                f"{self.direction}_out",
                relay.counters.get(self.direction, "out") + len(piece),
            )
            self.update_reading()
            self.shaper_wake.set()

    def _close_dst_write(self) -> None:
        tr = self.dst.transport
        if tr is not None and not tr.is_closing():
            if tr.can_write_eof():
                tr.write_eof()
            else:
                tr.close()

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()


class _Conn:
    """One relayed connection: the client side, the target side and two pipes."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.client = _Side(self, "client")
        self.target = _Side(self, "target")
        self.up = _Pipe(relay, "up", self.client, self.target)
        self.down = _Pipe(relay, "down", self.target, self.client)
        self.deferred_abort = False
        self.closed = False

    def pipe_from(self, side: str) -> _Pipe:
        return self.up if side == "client" else self.down

    def side_lost(self, name: str, exc: Exception | None) -> None:
        if self.closed:
            return
        if exc is not None:
            # An abrupt end (RST) on one side: cut the other too, unless the path is stalled,
            # when the other side cannot learn of it (that is what a blackhole is).
            if self.relay.faults["up"].stalled or self.relay.faults["down"].stalled:
                self.deferred_abort = True
            else:
                self.abort()
        else:
            self.pipe_from(name).feed_eof()
        if self.client.lost.is_set() and self.target.lost.is_set():
            self.finish()

    def abort(self) -> None:
        for side in (self.client, self.target):
            tr = side.transport
            if tr is not None and not tr.is_closing():
                tr.abort()
        self.finish()

    def finish(self) -> None:
        if not self.closed:
            self.closed = True
            self.up.cancel()
            self.down.cancel()
            self.relay._conns.discard(self)

    def poke(self) -> None:
        if self.deferred_abort and not (
            self.relay.faults["up"].stalled or self.relay.faults["down"].stalled
        ):
            self.abort()
            return
        self.up.poke()
        self.down.poke()


def _small_buffers(sock: socket.socket, size: int | None) -> None:
    if size:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


class Relay:
    """The relay on the running loop: `async with Relay(port) as relay:`; control methods are
    for that loop (use `RelayThread` to control it from another thread)."""

    def __init__(
        self,
        target_port: int,
        target_host: str = "127.0.0.1",
        *,
        max_buffer: int = 64 * 1024,
        max_inflight: int = 1024 * 1024,
        sock_buf: int | None = 64 * 1024,
    ) -> None:
        self.target = (target_host, target_port)
        self.max_buffer, self.max_inflight, self.sock_buf = max_buffer, max_inflight, sock_buf
        self.faults = {d: Faults() for d in DIRECTIONS}
        self.counters = Counters()
        self._conns: set[_Conn] = set()
        self._orphans: list[_Conn] = []  # forgotten: their server side is left open
        self._server: asyncio.Server | None = None
        self._drop_timer: asyncio.TimerHandle | None = None
        self.port = 0

    async def __aenter__(self) -> Relay:
        loop = asyncio.get_running_loop()
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _small_buffers(lsock, self.sock_buf)  # inherited by accepted sockets (set before SYN)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(64)
        lsock.setblocking(False)
        self._server = await loop.create_server(self._accept, sock=lsock)
        self.port = lsock.getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._drop_timer is not None:
            self._drop_timer.cancel()
        if self._server is not None:
            self._server.close()
        for conn in [*self._conns, *self._orphans]:
            conn.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    def _accept(self) -> asyncio.Protocol:
        conn = _Conn(self)
        self._conns.add(conn)
        self.counters.connections += 1
        asyncio.get_running_loop().create_task(self._connect_target(conn))
        return _AcceptProxy(conn)  # the client side; reading paused until the target is up

    async def _connect_target(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        _small_buffers(sock, self.sock_buf)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(5):
                await loop.sock_connect(sock, self.target)
            await loop.create_connection(lambda: conn.target, sock=sock)
        except (OSError, TimeoutError):
            sock.close()
            conn.abort()
            return
        conn.up.start()
        conn.down.start()
        if conn.client.transport is not None and not conn.client.transport.is_closing():
            conn.client.transport.resume_reading()
        conn.poke()

    # -- control (relay loop) --

    def set(self, direction: str = "both", **faults: Any) -> None:
        for d in _dirs(direction):
            for key, value in faults.items():
                if not hasattr(self.faults[d], key):
                    raise TypeError(f"unknown fault {key!r}")
                setattr(self.faults[d], key, value)
        self._poke()

    def clear(self) -> None:
        for d in DIRECTIONS:  # in place: every pipe holds a reference to its Faults
            for field in dataclasses.fields(Faults):
                setattr(self.faults[d], field.name, getattr(Faults(), field.name))
        self._poke()

    def stall(self, direction: str = "both") -> None:
        self.set(direction, stalled=True)

    def resume(self, direction: str = "both") -> None:
        self.set(direction, stalled=False)

    def drop(self) -> int:
        n = len(self._conns)
        for conn in list(self._conns):
            conn.abort()
        self.counters.drops += n
        return n

    def forget(self) -> int:
        """The path comes back having forgotten the connections that crossed it (a NAT's
        table reset, a tether's new address): each client side is cut, each server side is
        left open with nobody behind it, as a server sees a client whose close was lost."""
        forgotten = list(self._conns)
        for conn in forgotten:
            conn.up.cancel()
            conn.down.cancel()
            conn.closed = True  # nothing more is relayed or closed for it
            tr = conn.client.transport
            if tr is not None and not tr.is_closing():
                tr.abort()
            self._conns.discard(conn)
        self._orphans += forgotten
        self.resume()
        return len(forgotten)

    def blackhole_then_drop(self, after_s: float) -> None:
        self.stall()

        def fire() -> None:
            self._drop_timer = None
            self.drop()
            self.resume()

        loop = asyncio.get_running_loop()
        self._drop_timer = loop.call_later(after_s, fire)

    def buffered(self) -> dict[str, int]:
        """Bytes the relay holds per direction (queue + delay line), for tests."""
        out = {d: 0 for d in DIRECTIONS}
        for conn in self._conns:
            out["up"] += conn.up.queued + conn.up.inflight
            out["down"] += conn.down.queued + conn.down.inflight
        return out

    def _poke(self) -> None:
        for conn in list(self._conns):
            conn.poke()


class _AcceptProxy(asyncio.Protocol):
    """The accepted client socket's protocol: pauses reading until the target connects."""

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.pause_reading()  # type: ignore[attr-defined]
        self.conn.client.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.conn.client.data_received(data)

    def eof_received(self) -> bool:
        return self.conn.client.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.client.connection_lost(exc)

    def pause_writing(self) -> None:
        self.conn.client.pause_writing()

    def resume_writing(self) -> None:
        self.conn.client.resume_writing()


def _dirs(direction: str) -> tuple[str, ...]:
    if direction == "both":
        return DIRECTIONS
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
    return (direction,)


class RelayThread:
    """A `Relay` on its own daemon thread and loop; every method is callable from any thread.

    with RelayThread(standin_port) as relay:
        url = f"https://127.0.0.1:{relay.port}"
        relay.set("up", rate_bps=256_000)
        relay.stall(); ...; relay.resume()
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", **kwargs: Any) -> None:
        self._relay = Relay(target_port, target_host, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError("relay failed to start") from self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with self._relay:
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    def _call(self, fn: Callable[[], Any], timeout_s: float = 5.0) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    @property
    def port(self) -> int:
        return self._relay.port

    @property
    def counters(self) -> Counters:
        return self._relay.counters  # ints written on the relay thread; reads are atomic

    @property
    def faults(self) -> dict[str, Faults]:
        return self._relay.faults

    def set(self, direction: str = "both", **faults: Any) -> None:
        self._call(lambda: self._relay.set(direction, **faults))

    def clear(self) -> None:
        self._call(self._relay.clear)

    def stall(self, direction: str = "both") -> None:
        self._call(lambda: self._relay.stall(direction))

    def resume(self, direction: str = "both") -> None:
        self._call(lambda: self._relay.resume(direction))

    def drop(self) -> int:
        return int(self._call(self._relay.drop))

    def blackhole_then_drop(self, after_s: float) -> None:
        self._call(lambda: self._relay.blackhole_then_drop(after_s))

    def forget(self) -> int:
        return int(self._call(self._relay.forget))

    def buffered(self) -> dict[str, int]:
        return dict(self._call(self._relay.buffered))

    @contextlib.contextmanager
    def stalled(self, direction: str = "both") -> Iterator[None]:
        self.stall(direction)
        try:
            yield
        finally:
            self.resume(direction)

    def stop(self) -> None:
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def __enter__(self) -> RelayThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
