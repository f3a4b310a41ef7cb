"""Blocking work (a device open, a speech render) without blocking the loop or the exit.

Every thread started here (`start_daemon`) is counted until it ends, and the program waits for
them before the interpreter shuts down (`wait_for_daemons`, called by `guard.exit_process`):
a daemon thread that comes back from a native call (OpenCV opening a file or stream, PortAudio,
ONNX Runtime) while the interpreter is finalizing is stopped with pthread_exit, whose unwinding
through C++ aborts the whole process ("terminate called without an active exception", 134).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_daemons: set[threading.Thread] = set()  # started by start_daemon; the finished are pruned
_daemons_lock = threading.Lock()


def start_daemon(target: Callable[[], None], name: str) -> threading.Thread:
    """Start `target` on a daemon thread that the program's exit waits for. For threads that
    may be inside native code: a device open, a grab loop, a speech render."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    with _daemons_lock:
        _daemons.difference_update([t for t in _daemons if not t.is_alive()])
        _daemons.add(thread)
    try:
        thread.start()
    except BaseException:
        with _daemons_lock:
            _daemons.discard(thread)
        raise
    return thread


def wait_for_daemons(timeout_s: float) -> bool:
    """Wait up to `timeout_s` (seconds) for every thread from `start_daemon` to end (any
    thread but those; at exit, the main thread). True once none is left running."""
    deadline = time.monotonic() + timeout_s
    while True:
        with _daemons_lock:
            alive = [t for t in _daemons if t.is_alive() and t is not threading.current_thread()]
        left_s = deadline - time.monotonic()
        if not alive or left_s <= 0:
            return not alive
        alive[0].join(left_s)


async def in_daemon_thread(work: Callable[[], T], name: str) -> T:
    """Runs `work` on its own daemon thread and waits for its result, cancellably.

    Not the loop's default executor: asyncio.run() waits for that at exit, so a stream that
    accepts the connection and never answers, or a speech engine slow under load, would hold
    Ctrl-C and SIGTERM for its whole timeout. Cancelled, this returns at once; the thread
    finishes on its own and its result is dropped (a device's close() handles a late open),
    and the program's exit waits for it (see the module docstring).
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

    start_daemon(run, name)
    return await done


async def off_loop(start: Callable[[], None], name: str) -> None:
    """Opens a device with `in_daemon_thread` (see there for why not the default executor)."""
    await in_daemon_thread(start, f"open {name}")
