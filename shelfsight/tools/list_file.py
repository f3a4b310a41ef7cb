"""The shopping list of a running session and its file, kept in step.

`ListFile` holds the current list (loop thread) and hands every new version to one writer
thread, which replaces the file atomically (see `shopping_list.write_atomically`). The hand-over
slot holds one version: a newer version replaces one not yet written (only the newest matters),
so the loop never waits on the disk and the queue can never grow. `close` writes what is still
pending before it returns, so Ctrl-C leaves the file with every change made; a crash or kill
leaves the last version written, whole.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from shelfsight.errors import UserError
from shelfsight.tools.shopping_list import ShoppingList, format_markdown, load, write_atomically

log = logging.getLogger(__name__)
CLOSE_TIMEOUT_S = 5.0


class ListFile:
    """The list and its file. `current`/`update` on the loop thread; writes on a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current: ShoppingList = load(path)
        self.write_failures = 0
        try:  # once now, synchronously: a read-only file is reported before the session starts
            write_atomically(path, format_markdown(self.current))
        except OSError as exc:
            raise UserError(f"Cannot write shopping list {path}: {exc.strerror or exc}") from None
        self._pending: str | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._write_loop, name="list-writer", daemon=True)
        self._thread.start()

    def update(self, shopping: ShoppingList) -> None:
        """The list changed: keep it and have it written (newest version wins)."""
        self.current = shopping
        with self._cond:
            self._pending = format_markdown(shopping)
            self._cond.notify()

    def close(self) -> None:
        """Write what is pending, stop the writer; idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=CLOSE_TIMEOUT_S)

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                text, self._pending = self._pending, None
                if text is None:
                    return  # closed and nothing left
            try:
                write_atomically(self.path, text)
            except OSError as exc:
                self.write_failures += 1
                log.warning("could not save the shopping list %s: %s", self.path, exc)
