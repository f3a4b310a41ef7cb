"""A private PulseAudio server for tests, on a machine with no sound card.

    with pulse_server(loopback=True) as pa:     # pa.env points clients (PortAudio's ALSA
        rec = pa.start_record("answer.monitor")  # pulse plugin, pacat, parec) at it
        ...                                      # run the program with env={**pa.env}
        heard = rec.stop()                       # what the sink played, 24 kHz mono float

Null sinks, clocked by the system timer: "answer" (the default sink: the program's speaker;
its monitor is what a listener heard) and "mic" (its monitor is the default source: the
program's microphone). `loopback=True` adds module-loopback answer.monitor -> mic, an echo
path. Runs as root without --system: a private HOME / runtime dir, anonymous auth on a private
unix socket, no D-Bus, no autospawn, no idle exit. Debian packages: pulseaudio,
pulseaudio-utils, libasound2-plugins (scripts/setup installs them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def missing_tools() -> list[str]:
    """What this machine lacks to run the server and talk to it (empty: all there)."""
    tools = [t for t in ("pulseaudio", "pactl", "parec") if shutil.which(t) is None]
    lib = Path("/usr/lib")
    plugin = any(lib.glob("*/alsa-lib/libasound_module_pcm_pulse.so")) or any(
        lib.glob("alsa-lib/libasound_module_pcm_pulse.so")
    )
    return tools + ([] if plugin else ["libasound2-plugins"])


@dataclass
class Recording:
    """parec reading a source into memory on its own thread."""

    proc: subprocess.Popen[bytes]
    channels: int = 1
    data: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(65536):
            self.data += chunk

    def stop(self) -> np.ndarray:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        self._thread.join(timeout=5)
        frame = 2 * self.channels
        pcm = bytes(self.data[: len(self.data) // frame * frame])
        samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
        return samples if self.channels == 1 else samples.reshape(-1, self.channels)


@dataclass
class PulseServer:
    env: dict[str, str]  # what a client needs
    log_path: Path
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _run(self, *args: str) -> str:
        env = {**os.environ, **self.env}
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=10)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def source_outputs(self) -> int:
        return self._run("pactl", "list", "short", "source-outputs").count("\n")

    def start_record(
        self, source: str = "answer.monitor", rate_hz: int = 24000, channels: int = 1
    ) -> Recording:
        """Records `source` (PCM16, `channels`) from the moment this returns."""
        before = self.source_outputs()
        args = ["parec", "-d", source, f"--rate={rate_hz}", f"--channels={channels}"]
        args.append("--format=s16le")
        proc = subprocess.Popen(
            [*args, "--raw", "--latency-msec=20"],
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._children.append(proc)
        deadline = time.monotonic() + 5
        while self.source_outputs() <= before:  # the stream exists: nothing will be missed
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("parec did not start recording")
            time.sleep(0.01)
        return Recording(proc, channels)


def _script(sock: str, loopback: bool) -> str:
    lines = [
        "load-module module-null-sink sink_name=answer rate=48000 channels=2",
        "load-module module-null-sink sink_name=mic rate=16000 channels=1",
        "set-default-sink answer",
        "set-default-source mic.monitor",
    ]
    if loopback:
        lines.append("load-module module-loopback source=answer.monitor sink=mic latency_msec=60")
    # The socket last: once it accepts connections everything above is loaded.
    lines.append(f"load-module module-native-protocol-unix socket={sock} auth-anonymous=1")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def pulse_server(loopback: bool = False, timeout_s: float = 10.0) -> Iterator[PulseServer]:
    root = Path(tempfile.mkdtemp(prefix="pulse-test-"))
    run, home = root / "run", root / "home"
    for d in (run, home, root / "state"):
        d.mkdir(mode=0o700)
    sock = str(run / "native")
    (root / "test.pa").write_text(_script(sock, loopback))
    (root / "client.conf").write_text("autospawn = no\n")
    env = {
        "PULSE_SERVER": f"unix:{sock}",
        "PULSE_RUNTIME_PATH": str(run),
        "PULSE_STATE_PATH": str(root / "state"),
        "PULSE_CLIENTCONFIG": str(root / "client.conf"),
        "XDG_RUNTIME_DIR": str(run),
    }
    daemon_env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    daemon_env.update(env, HOME=str(home))
    log_path = root / "pulseaudio.log"
    args = ["pulseaudio", "-n", "-F", str(root / "test.pa"), "--daemonize=no"]
    args += ["--exit-idle-time=-1", "--use-pid-file=no", "--realtime=no", "--high-priority=no"]
    args += ["--no-cpu-limit", "--log-target=stderr", "--log-level=2"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, env=daemon_env, stdout=log, stderr=subprocess.STDOUT)
    server = PulseServer(env, log_path)
    try:
        _wait_for_socket(proc, sock, log_path, timeout_s)
        yield server
    finally:
        for child in [*server._children, proc]:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_socket(proc: subprocess.Popen[bytes], sock: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"pulseaudio exited ({proc.returncode}): {log.read_text()}")
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.connect(sock)
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"pulseaudio did not start: {log.read_text()}")
        time.sleep(0.005)  # polling a child process's socket, not synchronising threads
