"""A phone tether made of network namespaces, so that the kernel's own TCP meets the faults.

    client ns                      router ns                          server ns
    c0 10.211.1.2 ──veth── rc 10.211.1.1 · 10.211.2.1 rs ──veth── s0 10.211.2.2

A loopback relay (tests/support/relay.py) ends TCP in userland on both of its sides, so neither
end meets real congestion control, retransmission timeouts or a queue that drops. Here both
ends run the kernel's TCP and the router only forwards, queues and drops packets, as the
phone's radio link does. Everything lives inside three namespaces of our own (the veth pairs
are made inside them too): the root namespace's routes, addresses and iptables rules are never
touched, so every tether can use the same private addresses and four xdist workers can each
build their own at once. Names are `sstx<pid>-<n>c|r|s`; `Tether.start` removes those of
processes that no longer run (a killed run's).

Faults, per direction (up = client -> server, down = server -> client), changeable any time:

* `shape(direction, rate_bps)`: `tc tbf` on the router's egress towards that direction's
  receiver. Burst 4 KB: the smallest bucket that lets two full-size packets through back to
  back, as a radio grant does (10 ms at these rates is under one packet). Queue 64 KB
  (`limit`): a cellular link queues rather than drops (deep modem and base-station buffers,
  "bufferbloat"): 2 s of queue at 256 kbit/s, 4 s at 128 kbit/s, which a loss-based sender
  (cubic) fills and BBR mostly does not. A 50-100 ms queue would be a well-managed link,
  which a phone tether seldom is; pass `queue_bytes` for one.
* `loss(direction, p)`: iptables `-m statistic --mode random --probability p -j DROP` in the
  router's FORWARD chain, for packets arriving from that direction's sender.
* `blackhole(direction)` / `restore(direction)`: drop every packet (a tether that stalls
  without closing anything), and back; `blackholed()` as a context manager.
* `congestion(cc)`: the endpoints' congestion control ("bbr", "cubic", "reno"). The
  per-namespace sysctl only takes algorithms in the machine-wide
  `tcp_allowed_congestion_control` list (cubic usually is not, when bbr is the default), and
  that list is the root namespace's; so it is the `congctl` of each endpoint's default route,
  which every new connection through it, accepted ones included, takes.

Every veth end has `gso_max_segs 1`: otherwise TCP hands 64 KB TSO super-packets across the
veth, and iptables' statistic match drops (and tbf queues) a whole window at once; a radio
link sees packets of one MTU.

Programs on each side, two ways:

* In this process: a network namespace is a property of a thread. `listen("server")` makes a
  listening socket inside the server namespace on a short-lived thread (the socket stays
  there); `inside("client")` moves the calling thread, e.g. the event loop's, into the client
  namespace until the block ends, so every socket made on it (the SDK's) is the client's.
  Threads started meanwhile stay in the namespace they were started in.
* Child processes: `command("client") + argv` (`ip netns exec NAME ...`), or `popen`.

Needs root and iproute2 (`ip`, `tc`) and iptables; `missing()` says which of them is not
there, and `start` raises `TetherUnavailable` with that (tests fail on it, they do not skip).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

PREFIX = "sstx"
NETNS_DIR = "/var/run/netns"
CLONE_NEWNET = 0x40000000
DIRECTIONS = ("up", "down")
CLIENT_IP, SERVER_IP = "10.211.1.2", "10.211.2.2"
ROUTER_CLIENT_IP, ROUTER_SERVER_IP = "10.211.1.1", "10.211.2.1"
BURST_BYTES = 4096
QUEUE_BYTES = 64 * 1024

_STALE = re.compile(rf"^{PREFIX}(\d+)-\d+[crs]$")
_EGRESS = {"up": "rs", "down": "rc"}  # the router's interface towards each direction's receiver
_INGRESS = {"up": "rc", "down": "rs"}  # ... and from its sender
_CHAIN = {"up": "TETHER-UP", "down": "TETHER-DOWN"}
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


class TetherUnavailable(RuntimeError):
    """The machine cannot build a tether; the message says what is missing."""


def _tool(name: str) -> str | None:
    return shutil.which(name, path=_SEARCH_PATH)


def missing() -> list[str]:
    """What this machine lacks for a tether, each in words a user can act on."""
    lacking = []
    if os.geteuid() != 0:
        lacking.append(
            "root (network namespaces, veth pairs, tc and iptables need CAP_SYS_ADMIN and "
            "CAP_NET_ADMIN): run the tests as root, as CI does"
        )
    for tool, package in (("ip", "iproute2"), ("tc", "iproute2"), ("iptables", "iptables")):
        if _tool(tool) is None:
            lacking.append(
                f"the `{tool}` command (Debian package {package}; scripts/setup installs it "
                "when run as root)"
            )
    return lacking


def require() -> None:
    """For tests: fails the calling test (never skips it) naming what the machine lacks."""
    import pytest

    lacking = missing()
    if lacking:
        pytest.fail("a network-namespace tether needs " + "; ".join(lacking), pytrace=False)


def _run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        [_tool(argv[0]) or argv[0], *argv[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Deletes the namespaces of tethers whose process is gone (a killed run); returns them."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    stale = [n for n in names if (m := _STALE.match(n)) and not _alive(int(m.group(1)))]
    for name in stale:
        _run("ip", "netns", "del", name, check=False)  # another worker may be faster
    return stale


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def enter(name: str) -> None:
    """Moves the calling thread (only it) into the named network namespace."""
    fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
    finally:
        os.close(fd)


def _dirs(direction: str) -> tuple[str, ...]:
    if direction == "both":
        return DIRECTIONS
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
    return (direction,)


class Tether:
    """client -- router -- server namespaces; `with Tether() as tether:` builds and removes
    them. Fault methods may be called from any thread, at any time."""

    def __init__(self, *, congestion: str = "bbr") -> None:
        base = f"{PREFIX}{os.getpid()}-{next(_counter)}"
        self.ns = {"client": f"{base}c", "router": f"{base}r", "server": f"{base}s"}
        self.addr = {"client": CLIENT_IP, "server": SERVER_IP}
        self.cc = congestion
        self._loss = {d: 0.0 for d in DIRECTIONS}
        self._blackholed = {d: False for d in DIRECTIONS}
        self._lock = threading.Lock()

    def __enter__(self) -> Tether:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- building and removing ---------------------------------------------------------------

    def start(self) -> None:
        lacking = missing()
        if lacking:
            needs = "; ".join(lacking)
            raise TetherUnavailable(f"cannot build a network-namespace tether: needs {needs}")
        remove_stale()
        try:
            self._build()
        except (RuntimeError, OSError) as error:
            self.close()
            raise TetherUnavailable(f"cannot build a network-namespace tether: {error}") from None

    def _build(self) -> None:
        c, r, s = self.ns["client"], self.ns["router"], self.ns["server"]
        for name in (c, r, s):
            _run("ip", "netns", "add", name)
        _run("ip", "-n", r, "link", "add", "rc", "type", "veth", "peer", "name", "c0", "netns", c)
        _run("ip", "-n", r, "link", "add", "rs", "type", "veth", "peer", "name", "s0", "netns", s)
        for ns, dev, address in (
            (c, "c0", f"{CLIENT_IP}/24"),
            (r, "rc", f"{ROUTER_CLIENT_IP}/24"),
            (r, "rs", f"{ROUTER_SERVER_IP}/24"),
            (s, "s0", f"{SERVER_IP}/24"),
        ):
            _run("ip", "-n", ns, "addr", "add", address, "dev", dev)
            _run("ip", "-n", ns, "link", "set", "dev", dev, "gso_max_segs", "1", "up")
        for ns in (c, r, s):
            _run("ip", "-n", ns, "link", "set", "dev", "lo", "up")
        self.run_in("router", lambda: _write_sysctl("net/ipv4/ip_forward", "1"))
        self.congestion(self.cc)
        for d in DIRECTIONS:
            chain = _CHAIN[d]
            self._in_router("iptables", "-w", "-N", chain)
            self._in_router("iptables", "-w", "-A", "FORWARD", "-i", _INGRESS[d], "-j", chain)
        # What the faults need, tried once so that a missing piece is named now.
        try:
            self.shape("up", 1_000_000)
            self.shape("up", None)
        except RuntimeError as error:
            raise RuntimeError(f"the kernel's tbf qdisc (sch_tbf) is needed: {error}") from None
        try:
            self.loss("up", 0.5)
            self.loss("up", 0.0)
        except RuntimeError as error:
            needed = "iptables' statistic match (xt_statistic) is needed"
            raise RuntimeError(f"{needed}: {error}") from None

    def close(self) -> None:
        """Deletes the namespaces (the veth pairs go with them)."""
        for name in self.ns.values():
            _run("ip", "netns", "del", name, check=False)

    # ---- faults --------------------------------------------------------------------------------

    def shape(
        self,
        direction: str,
        rate_bps: float | None,
        *,
        burst_bytes: int = BURST_BYTES,
        queue_bytes: int = QUEUE_BYTES,
    ) -> None:
        """Caps `direction` ("up", "down", "both") at `rate_bps` bits/s (layer 2: TCP's payload
        gets about 95 % of it); None removes the cap."""
        for d in _dirs(direction):
            dev, r = _EGRESS[d], self.ns["router"]
            if rate_bps is None:
                _run("tc", "-n", r, "qdisc", "del", "dev", dev, "root", check=False)
                continue
            _run(
                "tc", "-n", r, "qdisc", "replace", "dev", dev, "root", "tbf",
                "rate", f"{int(rate_bps)}bit", "burst", str(burst_bytes), "limit", str(queue_bytes),
            )  # fmt: skip

    def loss(self, direction: str, probability: float) -> None:
        """Drops each packet of `direction` with `probability` (0 removes the loss)."""
        if not 0.0 <= probability < 1.0:
            raise ValueError("probability must be in [0, 1)")
        with self._lock:
            for d in _dirs(direction):
                self._loss[d] = probability
            self._apply(direction)

    def blackhole(self, direction: str = "both") -> None:
        """Drops every packet of `direction`: nothing closes, nothing gets through."""
        self._set_blackhole(direction, True)

    def restore(self, direction: str = "both") -> None:
        """Lifts a blackhole (the loss set with `loss` stays)."""
        self._set_blackhole(direction, False)

    @contextlib.contextmanager
    def blackholed(self, direction: str = "both") -> Iterator[None]:
        self.blackhole(direction)
        try:
            yield
        finally:
            self.restore(direction)

    def _set_blackhole(self, direction: str, on: bool) -> None:
        with self._lock:
            for d in _dirs(direction):
                self._blackholed[d] = on
            self._apply(direction)

    def _apply(self, direction: str) -> None:
        """Rewrites the direction's chain in one iptables-restore transaction."""
        lines = ["*filter"]
        for d in _dirs(direction):
            chain = _CHAIN[d]
            lines.append(f"-F {chain}")
            if self._blackholed[d]:
                lines.append(f"-A {chain} -j DROP")
            elif self._loss[d] > 0:
                p = self._loss[d]
                lines.append(f"-A {chain} -m statistic --mode random --probability {p} -j DROP")
        lines.append("COMMIT")
        self._in_router("iptables-restore", "-w", "--noflush", stdin="\n".join(lines) + "\n")

    def dropped(self, direction: str) -> int:
        """Packets of `direction` dropped by the loss or blackhole rule since it was last set."""
        out = self._in_router("iptables", "-w", "-L", _CHAIN[direction], "-v", "-x", "-n")
        rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
        return sum(int(row[0]) for row in rows if row[2] == "DROP")

    def queue_stats(self, direction: str) -> dict[str, int]:
        """The tbf's counters for `direction`: packets sent, dropped (queue full), overlimits."""
        out = _run("tc", "-s", "-n", self.ns["router"], "qdisc", "show", "dev", _EGRESS[direction])
        m = re.search(r"Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)", out)
        if "tbf" not in out or m is None:
            return {}
        keys = ("bytes", "packets", "dropped", "overlimits")
        return {key: int(value) for key, value in zip(keys, m.groups(), strict=True)}

    def congestion(self, cc: str) -> None:
        """Both endpoints' congestion control for new connections ("bbr", "cubic", ...)."""
        available = _read("/proc/sys/net/ipv4/tcp_available_congestion_control").split()
        if cc not in available:
            raise ValueError(f"{cc!r} is not one of this kernel's {available}")
        for side, gateway in (("client", ROUTER_CLIENT_IP), ("server", ROUTER_SERVER_IP)):
            route = ("route", "replace", "default", "via", gateway, "congctl", cc)
            _run("ip", "-n", self.ns[side], *route)
        self.cc = cc

    def _in_router(self, *argv: str, stdin: str | None = None) -> str:
        return _run("ip", "netns", "exec", self.ns["router"], *argv, stdin=stdin)

    # ---- programs on each side ---------------------------------------------------------------

    def run_in(self, side: str, fn: Callable[[], T]) -> T:
        """`fn()` on a short-lived thread inside `side`'s namespace ("client", "router",
        "server"); what it makes there (sockets) stays there."""
        result: list[Any] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                enter(self.ns[side])
                result.append(fn())
            except BaseException as error:  # handed to the caller
                errors.append(error)

        thread = threading.Thread(target=target, name=f"netns-{side}", daemon=True)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return result[0]  # type: ignore[no-any-return]

    def listen(self, side: str = "server", port: int = 0, backlog: int = 128) -> socket.socket:
        """A TCP socket listening on `side`'s address, made inside its namespace."""
        host = self.addr[side]

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            return sock

        return self.run_in(side, make)

    def connect(self, side: str, address: tuple[str, int], timeout_s: float = 10) -> socket.socket:
        """A TCP connection made from inside `side`'s namespace."""
        return self.run_in(side, lambda: socket.create_connection(address, timeout_s))

    @contextlib.contextmanager
    def inside(self, side: str = "client") -> Iterator[None]:
        """The calling thread in `side`'s namespace for the block, then back where it was."""
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            enter(self.ns[side])
            try:
                yield
            finally:
                _setns(original)
        finally:
            os.close(original)

    def command(self, side: str) -> list[str]:
        """The argv prefix that runs a program in `side`'s namespace."""
        return [_tool("ip") or "ip", "netns", "exec", self.ns[side]]

    def popen(self, side: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen([*self.command(side), *argv], **kwargs)


def _read(path: str) -> str:
    with open(path, encoding="ascii") as file:
        return file.read()


def _write_sysctl(key: str, value: str) -> None:
    """Writes /proc/sys/KEY as seen from the calling thread's network namespace."""
    with open(f"/proc/sys/{key}", "w", encoding="ascii") as file:
        file.write(value)
