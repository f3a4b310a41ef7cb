"""Opening a device without blocking the event loop, and without holding up the exit."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable


async def off_loop(start: Callable[[], None], name: str) -> None:
    """Runs a blocking device open on its own daemon thread and waits for it, cancellably.

    Not the loop's default executor: asyncio.run() waits for that at exit, so a stream that
    accepts the connection and never answers would hold Ctrl-C and SIGTERM for its whole
    timeout. Cancelled, this returns at once; the device's close() handles the late open.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def run() -> None:
        error: BaseException | None = None
        try:
            start()
        except BaseException as e:  # handed to the loop, raised there
            error = e
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, name=f"open {name}", daemon=True).start()
    await done
