"""Running a command safely: bad input is one line and exit 2, never a traceback.

`guarded` turns a `UserError` into one line on stderr and exit code 2, Ctrl-C into exit 130
and SIGTERM into exit 0, and a bug into one line (the traceback with SHELFSIGHT_DEBUG=1).
Nothing it prints contains a secret registered in `SECRETS` (the API key). `exit_process`
ends the program only once no thread is left inside a native call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

import typer

from shelfsight.errors import UserError
from shelfsight.media.off_loop import wait_for_daemons

SECRETS: list[str] = []
EXIT_WAIT_S = 0.5  # for a device still opening (a file: milliseconds) before the process ends


def redact(text: str) -> str:
    """The key never reaches the terminal. A real key is long; a short one (a test's "x") is
    replaced only as a whole word, so "index" stays readable."""
    for secret in SECRETS:
        if len(secret) >= 8:
            text = text.replace(secret, "***")
        elif secret:
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    return text


def _fail(message: str, code: int) -> None:
    print(f"shelfsight: {redact(message)}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def guarded(main: Callable[[], Coroutine[Any, Any, None] | None]) -> None:
    """Run `main` (and the coroutine it returns, if any); map errors to one line and a code."""
    try:
        coroutine = main()
        if coroutine is not None:
            run_async(coroutine)
    except UserError as exc:
        _fail(str(exc), exc.exit_code)
    except _Terminated:
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        raise typer.Exit(130) from None
    except BaseExceptionGroup as group:
        user_errors = [e for e in _leaves(group) if isinstance(e, UserError)]
        if user_errors:
            _fail(str(user_errors[0]), user_errors[0].exit_code)
        _internal_error(group)
    except Exception as exc:
        _internal_error(exc)


class _Terminated(Exception):
    """SIGTERM ended the run: a clean stop, exit 0."""


def run_async(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on a fresh event loop; SIGTERM cancels it like Ctrl-C does, then exits 0."""
    terminated = False

    async def runner() -> None:
        nonlocal terminated
        task = asyncio.current_task()

        def on_sigterm() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_sigterm)
        await coroutine

    try:
        asyncio.run(runner())
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise
    if terminated:
        raise _Terminated


def _internal_error(exc: BaseException) -> None:
    """A bug, not bad input: one line by default, the traceback with SHELFSIGHT_DEBUG=1."""
    if os.environ.get("SHELFSIGHT_DEBUG") == "1":
        raise exc
    leaf = _leaves(exc)[0] if isinstance(exc, BaseExceptionGroup) else exc
    _fail(
        f"internal error: {type(leaf).__name__}: {leaf} "
        "(run again with SHELFSIGHT_DEBUG=1 for details, and please report it)",
        1,
    )


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def exit_process(code: int) -> NoReturn:
    """End the process with `code` once every device open, grab loop and speech render has
    finished (a device that was still opening when another failed releases itself first).

    A thread still inside a native call after EXIT_WAIT_S (a stream that never answers) would
    abort the process if the call returned while the interpreter shuts down, so then the
    process ends without that shutdown: our files and devices are closed by now, and what is
    still buffered (stdout, stderr, logs) is flushed here.
    """
    try:
        settled = wait_for_daemons(EXIT_WAIT_S)
    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
        settled = False
    if settled:
        sys.exit(code)
    with contextlib.suppress(Exception):
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
