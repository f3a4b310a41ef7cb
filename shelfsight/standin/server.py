"""The stand-in's TLS websocket server, on the caller's loop (`StandIn`) or its own thread
(`StandInThread`, for sync callers such as CLI tests)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from pathlib import Path
from typing import Any

import trustme
from google.genai import types
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from shelfsight.standin.config import StandInConfig
from shelfsight.standin.handshake import close_connection, drop_connection
from shelfsight.standin.protocol import INTERNAL_REASON, PATH_RE, model_is_served
from shelfsight.standin.records import ConnectionRecord, Ledger
from shelfsight.standin.session import serve_connection

_NOT_STARTED = "use StandIn as an async context manager"


class StandIn:
    """The stand-in server on the running loop: `async with StandIn(config) as server:`.

    Listens on 127.0.0.1 with an ephemeral port and a certificate from a throwaway CA whose PEM
    lives in a temp dir it owns (removed on exit). Point the SDK at it with `http_options()`,
    or with GOOGLE_GEMINI_BASE_URL=`base_url` and SSL_CERT_FILE=`ca_pem_path`.

    `host` listens on another IP address instead; `sock` serves on a socket already bound and
    listening (e.g. one made inside another network namespace: tests/support/tether.py), which
    the server then owns and closes. Either way the certificate is issued for that address.
    """

    def __init__(
        self,
        config: StandInConfig | None = None,
        *,
        host: str = "127.0.0.1",
        sock: socket.socket | None = None,
    ) -> None:
        self.config = config or StandInConfig()
        self._host = str(sock.getsockname()[0]) if sock is not None else host
        self._sock = sock
        self._changed: asyncio.Event | None = None  # set on every recorded change
        self._ledger = Ledger(on_change=self._notify)
        self._admitted: dict[ServerConnection, ConnectionRecord] = {}  # upgrade -> handler
        self._serving: dict[ServerConnection, ConnectionRecord] = {}  # handler start -> end
        self._ca: trustme.CA | None = None
        self._tmpdir: Path | None = None
        self._server: Server | None = None

    @classmethod
    def start_in_thread(
        cls,
        config: StandInConfig | None = None,
        *,
        host: str = "127.0.0.1",
        sock: socket.socket | None = None,
    ) -> StandInThread:
        """Runs a stand-in on its own thread and loop, for sync callers (CLI tests)."""
        return StandInThread(config or StandInConfig(), host=host, sock=sock)

    async def __aenter__(self) -> StandIn:
        self._changed = asyncio.Event()
        self._ca = trustme.CA()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(self._host).configure_cert(server_ctx)
        self._tmpdir = Path(tempfile.mkdtemp(prefix="shelfsight-standin-"))
        self._ca.cert_pem.write_to_path(str(self._tmpdir / "ca.pem"))
        self._server = await serve(
            self._handle,
            None if self._sock is not None else self._host,
            None if self._sock is not None else 0,
            sock=self._sock,
            ssl=server_ctx,
            process_request=self._admit,
            max_size=16 * 2**20,
            compression="deflate" if self.config.compression else None,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    @property
    def port(self) -> int:
        assert self._server is not None, _NOT_STARTED
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"https://{host}:{self.port}"

    @property
    def ca_pem_path(self) -> Path:
        assert self._tmpdir is not None, _NOT_STARTED
        return self._tmpdir / "ca.pem"

    def client_ssl_context(self) -> ssl.SSLContext:
        """A fresh client context trusting only the stand-in's CA."""
        assert self._ca is not None, _NOT_STARTED
        ctx = ssl.create_default_context()
        self._ca.configure_trust(ctx)
        return ctx

    def http_options(self) -> types.HttpOptions:
        """For `genai.Client(api_key=..., http_options=server.http_options())`."""
        return types.HttpOptions(
            base_url=self.base_url, async_client_args={"ssl": self.client_ssl_context()}
        )

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Every connection attempt so far, refused ones included, in arrival order."""
        return self._ledger.connections

    @property
    def turns_completed(self) -> int:
        return sum(c.turns_completed for c in self.connections)

    @property
    def issued_handles(self) -> list[str]:
        """Resumption handles sent so far, oldest first: "standin-CONNECTION-N"."""
        return self._ledger.issued_handles

    def knows_model(self, model: str) -> bool:
        """Whether a setup's model ("models/NAME" or "NAME") is served here."""
        return model_is_served(self.config.models, model)

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Waits until `predicate` (e.g. on `connections`) holds, re-checking it after every
        recorded change; raises TimeoutError after `timeout_s`."""
        assert self._changed is not None, _NOT_STARTED
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Records every upgrade request; refuses scripted-fault and unknown-path ones."""
        key = request.headers.get("x-goog-api-key", "")
        accepted = self.config.api_keys
        key_ok = bool(key) and (accepted is None or key in accepted)
        record = self._ledger.open_connection(request.path, key_ok)
        refuse_status = self.config.faults_for(record.index).refuse_http_status
        if refuse_status is not None:
            return connection.respond(refuse_status, "Service unavailable (scripted).\n")
        if not PATH_RE.match(request.path):
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        self._admitted[connection] = record
        return None

    async def close_all(self, code: int = 1011, reason: str = INTERNAL_REASON) -> int:
        """Closes every open connection now with `code` (a scripted outage); returns how many."""
        open_now = [(ws, r) for ws, r in self._serving.items() if ws.state is State.OPEN]
        await asyncio.gather(*(close_connection(ws, r, code, reason) for ws, r in open_now))
        return len(open_now)

    def drop_all(self) -> int:
        """Cuts every open connection's TCP link without a close frame; returns how many."""
        open_now = [(ws, r) for ws, r in self._serving.items() if ws.state is State.OPEN]
        for ws, record in open_now:
            drop_connection(ws, record)
        return len(open_now)

    async def _handle(self, ws: ServerConnection) -> None:
        record = self._admitted.pop(ws)
        self._serving[ws] = record
        answer_pings(ws, self.config)
        record._ws_open = lambda: ws.state is State.OPEN
        try:
            await serve_connection(ws, record, self._ledger, self.config)
        except ConnectionClosed:
            pass  # the client went away mid-send; the close code is recorded below
        finally:
            del self._serving[ws]
            if ws.close_code is None:
                await ws.close()
            record._set_close(ws.close_code, ws.close_reason)


def answer_pings(ws: ServerConnection, config: StandInConfig) -> None:
    """Pongs as `config.pongs` says. websockets answers every ping inside its protocol
    object (RFC 6455 5.5.2); for "late" and "never" that one instance's frame handler is
    wrapped, so the stand-in can behave as a server whose pongs are slow or missing."""
    if config.pongs == "prompt":
        return
    protocol = ws.protocol
    answer = protocol.recv_frame
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def pong_later(data: bytes) -> None:
        await asyncio.sleep(config.pong_delay_s)
        with contextlib.suppress(ConnectionClosed):
            await ws.pong(data)

    def recv_frame(frame: Frame) -> None:
        if frame.opcode is not Opcode.PING:
            answer(frame)
        elif config.pongs == "late":
            task = loop.create_task(pong_later(bytes(frame.data)))
            pending.add(task)
            task.add_done_callback(pending.discard)

    protocol.recv_frame = recv_frame  # type: ignore[method-assign]


class StandInThread:
    """A `StandIn` running on its own daemon thread and event loop.

    Construct via `StandIn.start_in_thread`; usable as a context manager; `stop()` joins the
    thread. Recordings are read through `server` (thread-safe).
    """

    def __init__(
        self, config: StandInConfig, *, host: str = "127.0.0.1", sock: socket.socket | None = None
    ) -> None:
        self._config = config
        self._listen: dict[str, Any] = {"host": host, "sock": sock}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._server: StandIn | None = None
        self._thread = threading.Thread(target=self._run, name="standin", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError("the Live API stand-in failed to start") from self._error

    @property
    def server(self) -> StandIn:
        assert self._server is not None
        return self._server

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def ca_pem_path(self) -> Path:
        return self.server.ca_pem_path

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Polls `predicate` every 10 ms from the calling thread; TimeoutError after
        `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"stand-in condition not met within {timeout_s} s")
            time.sleep(0.01)

    def close_all(self, code: int = 1011, reason: str = INTERNAL_REASON) -> int:
        """`StandIn.close_all` from any thread; returns once the closes are done."""
        return self._call(self.server.close_all(code, reason))

    def drop_all(self) -> int:
        """`StandIn.drop_all` from any thread."""

        async def drop() -> int:
            return self.server.drop_all()

        return self._call(drop())

    def _call(self, coroutine: Coroutine[Any, Any, int], timeout_s: float = 15.0) -> int:
        assert self._loop is not None, "the stand-in thread is not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def stop(self) -> None:
        """Closes every connection (code 1001), removes the CA dir and joins the thread."""
        if self._loop is not None and self._stop_event is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join()
        if self._error is not None:
            raise RuntimeError("the Live API stand-in failed") from self._error

    def __enter__(self) -> StandInThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            async with StandIn(self._config, **self._listen) as server:
                self._server = server
                self._ready.set()
                await self._stop_event.wait()
        except Exception as error:  # reported to the starting thread, not printed here
            self._error = error
        finally:
            self._ready.set()


def client_env(base_url: str, ca_pem_path: Path | str, api_key: str) -> dict[str, str]:
    """The environment that points the real SDK in another process at a stand-in: its URL,
    the CA to trust, and a (fake) key, as a user's shell would set them for Google's."""
    return {
        "GEMINI_API_KEY": api_key,
        "GOOGLE_GEMINI_BASE_URL": base_url,
        "SSL_CERT_FILE": str(ca_pem_path),
    }
