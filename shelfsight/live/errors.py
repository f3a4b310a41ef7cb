"""Why a Live connection ended or could not start, and whether trying again can help.

1007 (invalid argument, bad key) and 1008 (policy, unknown model) are fatal: retrying cannot
fix them, so the user gets one line saying what to do. The exception is a 1007 refusing a
setup that presented a resumption handle: the handle is stale (expired, or from a session the
service forgot), and a fresh session will do. 1011, 1006, other closes, network and TLS errors
are transient.
"""

from __future__ import annotations

import errno
import random
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from google.genai import errors
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    WebSocketException,
)

from shelfsight.core.phrases import phrase
from shelfsight.errors import UserError
from shelfsight.live.watchdog import DeadLink

# What a dropped or refused connection raises through the SDK.
CONNECTION_ERRORS = (errors.APIError, OSError, TimeoutError, WebSocketException)


@dataclass(frozen=True)
class Retry:
    """A transient end: `reason` is for the user; `stale_handle` asks for a fresh session."""

    reason: str
    stale_handle: bool = False


def classify(exc: BaseException, *, model: str, resuming: bool) -> Retry:
    """Say why a connection ended, or raise UserError when retrying cannot help.

    `resuming`: the setup that failed presented a resumption handle.
    """
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403):
            raise UserError(
                f"The Gemini Live API refused the key (HTTP {status}): check GEMINI_API_KEY."
            ) from None
        if status == 404:
            raise UserError(
                "The Live API endpoint was not found (HTTP 404): check GOOGLE_GEMINI_BASE_URL."
            ) from None
    if isinstance(exc, errors.APIError):
        code, reason = exc.code, _short(exc.details)
    elif isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd else 1006
        reason = _short(exc.rcvd.reason if exc.rcvd else "abnormal closure")
    else:
        return Retry(_describe_network_error(exc))
    lowered = reason.lower()
    if code == 1007 and "api key" in lowered:
        raise UserError(
            "The Gemini API key was rejected: check GEMINI_API_KEY "
            "(keys are at https://aistudio.google.com/apikey)."
        )
    if code == 1008 and ("not found" in lowered or "not supported" in lowered):
        raise UserError(
            f"Model {model!r} is not available for the Live API ({reason}). "
            "Choose another with --model or SHELFSIGHT_MODEL."
        )
    if code == 1007 and resuming:
        return Retry(phrase("reason_no_resume", code=code, reason=reason), True)
    if code in (1007, 1008):
        raise UserError(f"The Gemini Live API refused the session ({code}): {reason}")
    if reason:
        return Retry(phrase("reason_closed_why", code=str(code), reason=reason))
    return Retry(phrase("reason_closed", code=str(code)))


def is_refusal(exc: BaseException, code: int) -> bool:
    """Whether the server closed the connection with `code` (e.g. 1007 invalid argument)."""
    if isinstance(exc, errors.APIError):
        return exc.code == code
    return isinstance(exc, ConnectionClosed) and exc.rcvd is not None and exc.rcvd.code == code


def most_telling(group: BaseExceptionGroup) -> BaseException:
    """Of the errors both directions saw, the watchdog's (the link went silent: the rest are
    its consequences), else the receiver's (it carries the close code); raises
    the group again when it holds anything but connection errors (a bug, not the network)."""
    leaves = list(_leaves(group))
    if not all(isinstance(leaf, CONNECTION_ERRORS) for leaf in leaves):
        raise group
    for kind in (DeadLink, errors.APIError, ConnectionClosed):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0]


def backoff_s(attempt: int) -> float:
    """Exponential backoff with jitter: 0.25 s, 0.5 s, 1 s ... capped at 3 s, each drawn from
    its upper half so that clients cut off together do not come back together. The low cap
    (with the 5 s open timeout) bounds the wait after a dead phone link comes back."""
    ceiling = min(3.0, 0.25 * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _leaves(group: BaseExceptionGroup) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _describe_network_error(exc: BaseException) -> str:
    """What went wrong, in words for a shopper (in the session's language), with the
    technical name in brackets."""
    if isinstance(exc, DeadLink):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return phrase("reason_untrusted", detail=exc.verify_message)
    if isinstance(exc, TimeoutError):
        return phrase("reason_timeout")
    if isinstance(exc, InvalidHandshake):
        return phrase("reason_handshake", detail=exc)
    if isinstance(exc, socket.gaierror):
        return phrase("reason_no_dns")
    if isinstance(exc, ConnectionRefusedError):
        return phrase("reason_refused")
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return phrase("reason_reset")
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return phrase("reason_unreachable")
    if isinstance(exc, OSError) and exc.strerror:
        return phrase("reason_network", detail=exc.strerror.lower())
    return phrase("reason_network", detail=f"{exc.__class__.__name__}: {exc}")


def _short(details: object, limit: int = 200) -> str:
    text = details if isinstance(details, str) else str(details or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"
