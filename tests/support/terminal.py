"""`shelfsight` on a pseudo-terminal, as a user's shell runs it: keys written to it, its screen
read back. For tests/test_talk.py and `bench.talk`."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time


class Terminal:
    """The CLI on a pseudo-terminal (its own session, so its keys are not ours); `cols` gives
    the terminal a width (else it reports none, as some do)."""

    def __init__(self, args: list[str], env: dict[str, str], *, cols: int | None = None) -> None:
        self.master, slave = pty.openpty()
        if cols is not None:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shelfsight", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, **env},
            start_new_session=True,
        )
        os.close(slave)
        self.screen = b""

    def press(self, keys: str) -> float:
        """Type `keys`; returns when (time.monotonic(), the clock the stand-in stamps with)."""
        self.read()
        t = time.monotonic()
        os.write(self.master, keys.encode())
        return t

    def read(self, wait_s: float = 0.0) -> str:
        """Everything shown so far, after reading for up to `wait_s`."""
        deadline = time.monotonic() + wait_s
        while True:
            ready, _, _ = select.select(
                [self.master], [], [], max(0.0, deadline - time.monotonic())
            )
            if not ready:
                break
            try:
                self.screen += os.read(self.master, 65536)
            except OSError:
                break
        return self.screen.decode(errors="replace")

    def wait_for(self, text: str, timeout_s: float = 20.0) -> str:
        """The screen once `text` is on it (or the timeout passed)."""
        deadline = time.monotonic() + timeout_s
        while text not in (screen := self.read(0.1)) and time.monotonic() < deadline:
            pass
        return screen

    def close(self) -> int:
        """Wait for the exit (10 s at most); the exit code."""
        try:
            code = self.proc.wait(timeout=10)
            self.read(0.1)
            return code
        finally:
            self.proc.kill()
            os.close(self.master)
