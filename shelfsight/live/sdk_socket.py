"""The one place that reaches below the google-genai session: its websocket and socket.

The link's watchdog needs what no public API of the SDK gives: the websocket under an
`AsyncSession` (its private `_ws`), the TCP transport under asyncio's TLS transport (the
private `_ssl_protocol._transport`, whose write buffer is where a stalled upload shows), and
websockets' keepalive timeout. `shelfsight.live.setup.make_client` asks for no keepalive
(`ping_interval=None` through the SDK's `async_client_args`); should an SDK release stop
passing that on, websockets' default would close a healthy connection whose pong is 20 s late
(the real service's have been reported 8-30 s late), so its timeout is turned off here too.

Everything here degrades: a moved attribute gives None or an empty list, never an exception,
and `missing_internals()` names what moved, for `shelfsight doctor` and for the test that
fails when a google-genai or websockets upgrade moves them. Loop thread only.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any


def websocket_of(session: Any) -> Any | None:
    """The websockets client connection under an SDK `AsyncSession`, or None."""
    ws = getattr(session, "_ws", None)
    return ws if ws is not None and hasattr(ws, "ping") else None


def transports_of(ws: Any) -> list[Any]:
    """The websocket's transport and, under TLS, the TCP transport below it (empty if the
    websocket has no transport)."""
    transport = getattr(ws, "transport", None)
    if transport is None:
        return []
    inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
    return [transport] if inner is None else [transport, inner]


def socket_of(ws: Any) -> socket.socket | None:
    """The connection's TCP socket (asyncio's `TransportSocket`), for getsockopt/setsockopt."""
    transport = getattr(ws, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock if sock is not None and hasattr(sock, "getsockopt") else None


def unsent_bytes(ws: Any) -> int:
    """Bytes written to the connection's transports and not yet taken by the kernel."""
    total = 0
    for transport in transports_of(ws):
        with contextlib.suppress(AttributeError, RuntimeError):
            total += int(transport.get_write_buffer_size())
    return total


def limit_write_buffers(ws: Any, high_bytes: int) -> None:
    """A small high-water mark on every transport: a backlog then waits where it is measured."""
    for transport in transports_of(ws):
        with contextlib.suppress(AttributeError, ValueError):
            transport.set_write_buffer_limits(high=high_bytes)


def stop_keepalive_timeout(ws: Any) -> bool:
    """Keep websockets' keepalive pings but never let a late pong close the connection;
    False if the attribute is not there (the keepalive may then close a healthy link)."""
    if not hasattr(ws, "ping_timeout"):
        return False
    ws.ping_timeout = None
    return True


def abort(ws: Any) -> None:
    """Drop the connection at once, without a close handshake (nobody would answer it)."""
    transport = getattr(ws, "transport", None)
    if transport is not None:
        transport.abort()


def deflate_negotiated(ws: Any) -> bool | None:
    """Whether the handshake agreed on permessage-deflate (None if the response is unknown)."""
    response = getattr(ws, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    return "permessage-deflate" in str(headers.get("Sec-WebSocket-Extensions", "")).lower()


def missing_internals(session: Any) -> list[str]:
    """What the link relies on and did not find on this open `session` (empty: all there)."""
    ws = websocket_of(session)
    if ws is None:
        return ["AsyncSession._ws (the SDK's websocket)"]
    missing = []
    if getattr(ws, "keepalive_task", None) is not None:
        missing.append("ping_interval=None reaching websockets (its keepalive is running)")
    if not hasattr(ws, "ping_timeout"):
        missing.append("websocket.ping_timeout (websockets' keepalive timeout)")
    if socket_of(ws) is None:
        missing.append("websocket.transport socket")
    if len(transports_of(ws)) < 2:
        missing.append("TLS transport's _ssl_protocol._transport (the TCP write buffer)")
    return missing
