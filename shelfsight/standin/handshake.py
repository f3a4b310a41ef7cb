"""The setup handshake: each connection's first message, refused the way the real service
refuses it (a close before `setupComplete`, with its code and wording), so a client's error
handling meets what it will meet live: 1007 for an invalid argument or key, 1008 for a model,
1011 for resuming a session whose earlier connection is still open, and (strict) a setup field
gemini-3.8-live does not take (`shelfsight.standin.strict`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection

from shelfsight.standin.config import StandInConfig
from shelfsight.standin.protocol import (
    BAD_KEY_REASON,
    BAD_MODEL_REASON,
    INTERNAL_REASON,
    INVALID_ARGUMENT_REASON,
    SessionOptions,
    api_version,
    model_is_served,
    truncate_reason,
)
from shelfsight.standin.records import ConnectionRecord, Ledger, SentEvent
from shelfsight.standin.strict import setup_violation


async def accept_setup(
    ws: ServerConnection, record: ConnectionRecord, ledger: Ledger, config: StandInConfig
) -> SessionOptions | None:
    """Reads the setup message and returns what it asks for, or refuses it the way the real
    service does (closing before `setupComplete`) and returns None."""
    try:
        message = json.loads(await ws.recv())
    except ValueError:
        message = None
    setup = message.get("setup") if isinstance(message, dict) else None
    if not isinstance(setup, dict):
        await close_connection(ws, record, 1007, INVALID_ARGUMENT_REASON)
        return None
    record._set_setup(setup)
    refusal = _refusal(setup, record, ledger, config)
    if refusal is not None:
        await close_connection(ws, record, *refusal)
        return None
    session_id = ledger.session_for(record)
    if config.one_socket_per_session and ledger.open_in_session(session_id, other_than=record):
        await close_connection(ws, record, 1011, INTERNAL_REASON)
        return None
    record._set_session(session_id)
    return SessionOptions.from_setup(setup, config.vad_silence_ms)


def _refusal(
    setup: Mapping[str, Any], record: ConnectionRecord, ledger: Ledger, config: StandInConfig
) -> tuple[int, str] | None:
    """The close code and reason for a setup the service would refuse: a bad key, an unknown
    model, or a resumption handle it never issued or has forgotten (an invalid argument)."""
    if not record.api_key_ok:
        return 1007, BAD_KEY_REASON
    model = str(setup.get("model", ""))
    if not model_is_served(config.models, model):
        return 1008, BAD_MODEL_REASON.format(model=model, version=api_version(record.path))
    if config.strict and (violation := setup_violation(setup)) is not None:
        record._add_violation(violation.rule)
        return violation.code, violation.reason
    handle, accepted = record.resumed_with, config.resumption_handles
    if handle is not None and config.faults_for(record.index).refuse_resumption:
        return 1007, INVALID_ARGUMENT_REASON
    if handle is not None and accepted is not None:
        if handle not in accepted and handle not in ledger.issued_handles:
            return 1007, INVALID_ARGUMENT_REASON
    return None


async def close_connection(
    ws: ServerConnection, record: ConnectionRecord, code: int, reason: str
) -> None:
    """Records the close first: `ws.close` returns only after the client has answered it."""
    record._add_sent(SentEvent(time.monotonic(), "close", text=f"{code} {reason}"))
    await ws.close(code, truncate_reason(reason))


def drop_connection(ws: ServerConnection, record: ConnectionRecord) -> None:
    """Cuts the TCP connection with no close frame, as a network drop does (client: 1006)."""
    record._add_sent(SentEvent(time.monotonic(), "drop"))
    ws.transport.abort()
