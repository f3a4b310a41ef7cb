"""Blocking work (a device open, a speech render) without blocking the loop or the exit."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_daemon_thread(work: Callable[[], T], name: str) -> T:
    """Runs `work` on its own daemon thread and waits for its result, cancellably.

    Not the loop's default executor: asyncio.run() waits for that at exit, so a stream that
    accepts the connection and never answers, or a speech engine slow under load, would hold
    Ctrl-C and SIGTERM for its whole timeout. Cancelled, this returns at once; the thread
    finishes on its own and its result is dropped (a device's close() handles a late open).
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(result)  # type: ignore[arg-type]
        else:
            done.set_exception(error)

    def run() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = work()
        except BaseException as e:  # handed to the loop, raised there
            error = e
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done


async def off_loop(start: Callable[[], None], name: str) -> None:
    """Opens a device with `in_daemon_thread` (see there for why not the default executor)."""
    await in_daemon_thread(start, f"open {name}")
