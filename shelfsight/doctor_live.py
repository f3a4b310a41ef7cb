"""`shelfsight doctor --live`: what the Live API endpoint really does, found in under a minute.

No Google document says when pongs come, whether 8 kHz audio is taken, whether the websocket
compresses, or what talking over an answer does on each model; the link has to assume. This
probe asks the endpoint a run would use (GOOGLE_GEMINI_BASE_URL, else Google's) with the run's
setup, prints one line per finding and, with --json, saves them for a bug report. Findings, in
order: the setup, the link watchdog's internals and ACK probe, permessage-deflate, the first
answer to a picture and a question, usage metadata, talking over an answer, 8 kHz audio (on a
connection of its own: it may be closed for it), and ping/pong latency (measured alongside the
rest). Each has its own bound (`Bounds`); one that fails does not stop the others. The key is
never printed or saved. One event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from google.genai import errors
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from shelfsight import __version__
from shelfsight.doctor import KEY_FIX, network_fix, network_problem, refusal
from shelfsight.doctor_findings import (
    Bounds,
    Finding,
    Inbox,
    answer_findings,
    close_of,
    ms,
    ping_finding,
)
from shelfsight.doctor_speech import RATE_NAME, rate_finding, talk_over_finding
from shelfsight.errors import UserError
from shelfsight.live.ack_probe import platform_probe
from shelfsight.live.sdk_socket import (
    deflate_negotiated,
    missing_internals,
    socket_of,
    websocket_of,
)
from shelfsight.live.setup import Endpoint, live_config, make_client
from shelfsight.session.prompt import load_system_prompt, with_language
from shelfsight.settings import Settings

GOOGLE_URL = "https://generativelanguage.googleapis.com"  # the SDK's default
Report = Callable[[Finding], None]
Connect = Callable[[], contextlib.AbstractAsyncContextManager[Any]]  # a Live session's connect
# Every finding, in the order reported (the pings' come last: they wait longest).
NAMES = (
    "setup", "internals", "deflate", "first answer", "usage", "talked over", RATE_NAME, "pings",
)  # fmt: skip


def run_live_doctor(
    settings: Settings,
    key: str,
    *,
    endpoint: Endpoint | None = None,
    bounds: Bounds | None = None,
    out: TextIO | None = None,
    json_path: Path | None = None,
) -> int:
    """Probe, print a line per finding to `out` (stdout), save them to `json_path`; 0 if no
    finding failed, else 1."""
    stream = out or sys.stdout
    findings: list[Finding] = []
    where = endpoint or Endpoint()

    def report(finding: Finding) -> None:
        findings.append(finding)
        print(finding.line().replace(key, "***"), file=stream, flush=True)

    asyncio.run(probe(settings, key, where, bounds or Bounds(), report))
    if json_path is not None:
        document = as_json(findings, settings, where, bounds or Bounds())
        text = json.dumps(document, indent=2, default=str).replace(key, "***")
        try:
            json_path.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--json {json_path}: cannot write it ({exc.strerror}).") from None
    return 1 if any(f.status == "FAIL" for f in findings) else 0


def check_writable(path: Path) -> None:
    """Fail before the probe, not after a minute of it, when --json cannot be written (a file
    made to find out is removed again: it is written once the findings are in)."""
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise UserError(f"--json {path}: cannot write it ({exc.strerror}).") from None


async def probe(
    settings: Settings, key: str, endpoint: Endpoint, bounds: Bounds, report: Report
) -> None:
    """Every finding, each reported as soon as it is known (the pings' last)."""
    prompt = with_language(load_system_prompt(settings.prompt_file), settings.language)
    config = live_config(settings, prompt, None)
    connect = partial(make_client(key, endpoint).aio.live.connect, model=settings.model)
    connect = partial(connect, config=config)
    async with contextlib.AsyncExitStack() as stack:
        t0 = time.monotonic()
        try:
            session = await _open(stack, connect, bounds.connect_s)
        except Exception as exc:  # every way a connect fails is one FAIL line
            report(_setup_failed(exc, settings.model, bounds))
            for name in NAMES[1:]:
                report(Finding(name, "skip", "not tried: no session"))
            return
        report(_setup_accepted(settings, endpoint, time.monotonic() - t0))
        ws = websocket_of(session)
        report(internals_finding(session, ws))
        report(deflate_finding(ws))
        await _measure(session, ws, connect, bounds, settings.mode == "ptt", report)


async def _open(stack: contextlib.AsyncExitStack, connect: Connect, timeout_s: float) -> Any:
    """A Live session kept open until `stack` closes; TimeoutError after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        return await stack.enter_async_context(connect())


async def _measure(
    session: Any, ws: Any, connect: Connect, bounds: Bounds, manual: bool, report: Report
) -> None:
    """The findings on an open session: the pings from now on, the first answer alone (it is
    a latency), then the talk-over alongside 8 kHz audio on a connection of its own."""
    inbox = Inbox(session)
    reader = asyncio.create_task(inbox.run())
    pings_limit = (bounds.pings - 1) * bounds.ping_every_s + bounds.pong_wait_s + 1
    pings = asyncio.create_task(guarded(("pings",), pings_limit, ping_finding(ws, bounds)))
    rate: asyncio.Task[list[Finding]] | None = None
    try:
        answer = answer_findings(session, inbox, bounds)
        answered = await guarded(("first answer", "usage"), bounds.answer_s + 1, answer)
        for finding in answered:
            report(finding)
        rate_limit = bounds.connect_s + bounds.rate_audio_s + bounds.rate_wait_s + 1
        rate_check = _rate(connect, bounds, manual)
        rate = asyncio.create_task(guarded((RATE_NAME,), rate_limit, rate_check))
        if answered[0].status == "ok":
            limit = bounds.talk_over_s + 2.5 + bounds.after_talk_s + 1  # speech: ~2 s
            talked = talk_over_finding(session, inbox, bounds, manual)
            findings = await guarded(("talked over",), limit, talked)
        else:
            findings = [Finding("talked over", "skip", "not tried: no first answer")]
        for finding in findings + await rate + await pings:
            report(finding)
    finally:
        tasks = [task for task in (pings, rate, reader) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _rate(connect: Connect, bounds: Bounds, manual: bool) -> Finding:
    async with contextlib.AsyncExitStack() as stack:
        session = await _open(stack, connect, bounds.connect_s)
        return await rate_finding(session, bounds, manual)


async def guarded(
    names: tuple[str, ...], limit_s: float, findings: Awaitable[Finding | list[Finding]]
) -> list[Finding]:
    """The findings, or a FAIL line for each of `names` saying what stopped them (a close,
    a network error, or no result within `limit_s`, its outer bound)."""
    try:
        async with asyncio.timeout(limit_s):
            result = await findings
        return result if isinstance(result, list) else [result]
    except TimeoutError:
        detail = f"no result within {limit_s:g} s"
    except (errors.APIError, ConnectionClosed) as exc:
        code, reason = close_of(exc) or (0, "")
        detail = f"the connection was closed with {code} ({reason[:80]})"
    except (OSError, WebSocketException) as exc:
        detail = network_problem(exc)
    return [Finding(name, "FAIL", detail) for name in names]


# ---- setup, internals, deflate --------------------------------------------------------------


def shown_endpoint(endpoint: Endpoint) -> str:
    """The endpoint in use, without any user:password or query it may carry."""
    url = endpoint.base_url or os.environ.get("GOOGLE_GEMINI_BASE_URL") or GOOGLE_URL
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def _setup_accepted(settings: Settings, endpoint: Endpoint, took_s: float) -> Finding:
    run = f"{settings.mode}, voice {settings.voice}, {settings.media_resolution} media resolution"
    detail = f"{settings.model} at {shown_endpoint(endpoint)} ({run}) in {ms(took_s)}"
    return Finding("setup", "ok", f"accepted: {detail}", values={"connect_s": round(took_s, 3)})


def _setup_failed(exc: BaseException, model: str, bounds: Bounds) -> Finding:
    if isinstance(exc, TimeoutError):
        fix = "check the internet connection (and GOOGLE_GEMINI_BASE_URL if set)"
        return Finding("setup", "FAIL", f"no answer within {bounds.connect_s:g} s", fix)
    if isinstance(exc, errors.APIError | InvalidStatus):
        result, key_bad = refusal(exc, model)
        if key_bad:
            return Finding("setup", "FAIL", "the Live API rejected the key", KEY_FIX)
        return Finding("setup", result.status, result.detail, result.fix)
    if isinstance(exc, OSError | WebSocketException | UserError):
        return Finding("setup", "FAIL", network_problem(exc), network_fix(exc))
    raise exc


def internals_finding(session: Any, ws: Any) -> Finding:
    """What the link's watchdog reaches below the SDK, and the platform's TCP ACK counter."""
    missing = missing_internals(session)
    probe = ack_probe(ws)
    detail = ("all present" if not missing else "missing: " + "; ".join(missing)) + (
        f"; ACK probe: {probe}"
    )
    values = {"missing": missing, "ack_probe": probe}
    if missing or probe.startswith("none"):
        meaning = "the watchdog sees less of the link (liveness from messages only)"
        return Finding("internals", "note", detail, meaning, values)
    return Finding("internals", "ok", detail, values=values)


def ack_probe(ws: Any) -> str:
    """Which TCP acknowledgement probe the link would use here, read once on the connection
    (the link's own `shelfsight.live.ack_probe`, so this says what a run gets)."""
    probe = platform_probe()
    if probe is None:
        return f"none on {sys.platform}"
    sock = socket_of(ws) if ws is not None else None
    if sock is None:
        return f"{probe.name} (not tried: no socket)"
    if probe.read(sock) is None:
        return f"none ({probe.name} gave no reading)"
    return f"{probe.name} available"


def deflate_finding(ws: Any) -> Finding:
    negotiated = deflate_negotiated(ws) if ws is not None else None
    values = {"negotiated": negotiated}
    if negotiated:
        return Finding("deflate", "ok", "permessage-deflate negotiated", values=values)
    if negotiated is None:
        return Finding("deflate", "note", "unknown: the handshake response is not reachable")
    meaning = "frames go uncompressed: on a slow link audio backs up sooner"
    return Finding("deflate", "note", "permessage-deflate not negotiated", meaning, values)


# ---- --json ---------------------------------------------------------------------------------


def as_json(
    findings: list[Finding], settings: Settings, endpoint: Endpoint, bounds: Bounds
) -> dict[str, Any]:
    """What a bug report needs: versions, platform, endpoint, setup, bounds, findings."""
    return {
        "shelfsight": __version__,
        "google_genai": version("google-genai"),
        "websockets": version("websockets"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "endpoint": shown_endpoint(endpoint),
        "model": settings.model,
        "setup": {
            "mode": settings.mode,
            "voice": settings.voice,
            "language": settings.language,
            "media_resolution": settings.media_resolution,
        },
        "bounds_s": asdict(bounds),
        "findings": [finding.as_json() for finding in findings],
    }
