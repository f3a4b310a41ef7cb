"""A slow or lossy phone tether, with the kernel's real TCP (tests/support/tether.py).

These prove the harness itself: what it is told to do happens to real TCP connections (a rate
cap per direction, random loss, a blackhole, the congestion control), and the product runs
through it both ways, in this process (the SDK on an event loop moved into the client
namespace) and as a child process (the real CLI under `ip netns exec`). How the product fares
on a weak tether is measured, not asserted: `python -m bench.tether`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tests.support.tether as tether_module
from shelfsight.live.link import Connected, Reconnecting
from shelfsight.media.wav import load_mic_pcm, write_wav
from shelfsight.settings import DEFAULT_MODEL
from shelfsight.standin import StandIn, StandInConfig, client_env
from tests.conftest import ASSETS, TEST_KEY
from tests.support.link_run import LinkRun, noise
from tests.support.tether import NETNS_DIR, PREFIX, Tether, TetherUnavailable

TCPI_TOTAL_RETRANS = 100  # u32 in struct tcp_info (include/uapi/linux/tcp.h)
SENDER = {"up": "client", "down": "server"}
RECEIVER = {"up": "server", "down": "client"}


@pytest.fixture
def tether() -> Iterator[Tether]:
    """A fresh tether (bbr, no faults); the test fails, saying what is missing, where none
    can be built."""
    made = Tether()
    try:
        made.start()
    except TetherUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield made
    finally:
        made.close()


def _config(**kwargs: Any) -> StandInConfig:
    return StandInConfig(
        api_keys=frozenset({TEST_KEY}), models=frozenset({DEFAULT_MODEL}), **kwargs
    )


class Transfer:
    """`n_bytes` from `direction`'s sender to its receiver over one TCP connection through
    the router: the receiver's goodput (first byte to last) and the sender's TCP_INFO."""

    def __init__(self, tether: Tether, direction: str, n_bytes: int) -> None:
        listener = tether.listen(RECEIVER[direction])
        address = (tether.addr[RECEIVER[direction]], listener.getsockname()[1])
        self.goodput_bps = 0.0
        self.cc: dict[str, str] = {}
        receiver = threading.Thread(target=self._receive, args=(listener,), daemon=True)
        receiver.start()
        with tether.connect(SENDER[direction], address) as sender:
            self.cc["sender"] = _congestion_of(sender)
            sender.sendall(os.urandom(n_bytes))
            sender.shutdown(socket.SHUT_WR)
            receiver.join(60)
            info = sender.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
            self.retransmitted = struct.unpack_from("<I", info, TCPI_TOTAL_RETRANS)[0]
        listener.close()

    def _receive(self, listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            self.cc["receiver"] = _congestion_of(conn)
            conn.recv(65536)  # the clock starts at the first byte: slow start is not the cap
            t_first, n = time.monotonic(), 0
            while data := conn.recv(65536):
                n += len(data)
            self.goodput_bps = n * 8 / max(1e-6, time.monotonic() - t_first)


def _congestion_of(sock: socket.socket) -> str:
    name = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
    return name.rstrip(b"\0").decode()


def test_each_direction_is_capped_at_its_own_rate(tether: Tether) -> None:
    """tbf on the router, 2 Mbit/s up and 1 Mbit/s down: a bulk TCP transfer each way gets
    about that (TCP's payload is ~95 % of the layer-2 rate the tbf counts)."""
    tether.shape("up", 2_000_000)
    tether.shape("down", 1_000_000)
    up = Transfer(tether, "up", 400_000)
    down = Transfer(tether, "down", 200_000)
    assert 0.6 <= up.goodput_bps / 2_000_000 <= 1.0, up.goodput_bps
    assert 0.6 <= down.goodput_bps / 1_000_000 <= 1.0, down.goodput_bps
    assert tether.queue_stats("up")["bytes"] >= 400_000
    assert tether.queue_stats("down")["bytes"] >= 200_000


def test_random_loss_on_the_router_makes_the_senders_tcp_retransmit(tether: Tether) -> None:
    """10 % loss up only: the client's kernel retransmits what the router dropped."""
    tether.loss("up", 0.10)
    transfer = Transfer(tether, "up", 300_000)
    assert tether.dropped("up") > 0, "the router dropped packets coming up"
    assert tether.dropped("down") == 0, "and none going down"
    assert transfer.retransmitted > 0, "the client's TCP_INFO counts retransmissions"


def test_the_endpoints_use_the_congestion_control_asked_for(tether: Tether) -> None:
    """Both ends, the accepting one too; the machine's own default is not changed."""
    default = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    assert Transfer(tether, "up", 10_000).cc == {"sender": "bbr", "receiver": "bbr"}
    tether.congestion("cubic")
    assert Transfer(tether, "down", 10_000).cc == {"sender": "cubic", "receiver": "cubic"}
    assert Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip() == default


@pytest.mark.anyio
async def test_a_blackholed_tether_is_noticed_within_5_s_and_the_link_reconnects_after_it(
    tether: Tether,
) -> None:
    """In this process: the stand-in serves on a socket made in the server namespace, the
    test's event loop runs in the client namespace, so the real SDK's connection crosses the
    router. The mic streams; the router drops everything; the link must call the connection
    dead within 5 s (the product's promise), and connect again once packets flow."""
    namespace_before = os.readlink("/proc/thread-self/ns/net")
    with tether.inside("client"):
        assert os.readlink("/proc/thread-self/ns/net") != namespace_before
        async with StandIn(_config(), sock=tether.listen("server")) as server:
            run = LinkRun(server)
            assert "10.211.2.2" in server.base_url
            tasks = [asyncio.create_task(run.link.run()), asyncio.create_task(run.collect())]
            try:
                await run.until(lambda: bool(run.of(Connected)))
                tasks.append(asyncio.create_task(run.stream(noise(60.0, seed=11))))
                await asyncio.sleep(1.5)
                tether.blackhole()
                t_dead = time.monotonic()
                await run.until(lambda: bool(run.of(Reconnecting)), 5.0)
                found_s = time.monotonic() - t_dead
                assert len(run.of(Connected)) == 1, "no new connection through a blackhole"
                tether.restore()
                await run.until(lambda: len(run.of(Connected)) >= 2, 30.0)
                await server.wait_until(lambda: bool(server.connections[-1].received("audio")))
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    assert os.readlink("/proc/thread-self/ns/net") == namespace_before, "back where it was"
    assert found_s <= 5.0, found_s
    assert run.link.dead_links >= 1, run.of(Reconnecting)
    assert tether.queue_stats("up") == {}, "no shaping was asked for"


def _mic(tmp_path: Path) -> Path:
    """1 s of faint noise, the bundled question, 1 s of faint noise."""
    question = np.frombuffer(load_mic_pcm(ASSETS / "question.wav"), "<i2").astype(np.int32)
    signal = np.concatenate([np.zeros(16_000, np.int32), question, np.zeros(16_000, np.int32)])
    signal += np.random.default_rng(3).normal(0, 30, len(signal)).astype(np.int32)
    return write_wav(tmp_path / "mic.wav", np.clip(signal, -32768, 32767).astype("<i2").tobytes())


def test_a_spoken_question_is_answered_through_a_256_kbit_tether(
    tether: Tether, tmp_path: Path
) -> None:
    """As a child process: the real CLI under `ip netns exec` in the client namespace, both
    directions capped at 256 kbit/s, the stand-in in the server namespace. How long the
    answer took and the holes in its playback (24 kHz audio as base64 needs 512 kbit/s to
    play as it comes) are the benchmark's business; here it must come, all of it."""
    tether.shape("both", 256_000)
    out_wav = tmp_path / "out.wav"
    with StandIn.start_in_thread(_config(), sock=tether.listen("server")) as server:
        argv = [sys.executable, "-m", "shelfsight", "run", "--camera", "none", "--plain"]
        argv += ["--mic", str(_mic(tmp_path)), "--speaker", str(out_wav), "--cues", "off"]
        proc = tether.popen(
            "client",
            argv,
            env={**os.environ, **client_env(server.base_url, server.ca_pem_path, TEST_KEY)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            out, _ = proc.communicate(timeout=90)
        finally:
            proc.kill()
        answered = server.server.turns_completed
    assert proc.returncode == 0, out
    assert answered == 1, out
    with wave.open(str(out_wav), "rb") as played:
        pcm = played.readframes(played.getnframes())
    assert _sounding(pcm) == _sounding(StandInConfig().answers[0].answer_pcm24k), "all of it"
    up, down = tether.queue_stats("up"), tether.queue_stats("down")
    assert up["bytes"] > 100_000 and down["bytes"] > 50_000, "it all went through the router"
    assert up["overlimits"] > 0 and down["overlimits"] > 0, "held back by the caps both ways"


def _sounding(pcm: bytes) -> bytes:
    """The non-zero samples in order: a playback hole only inserts silence, so an answer
    played whole, holes or not, keeps exactly its own."""
    samples = np.frombuffer(pcm, "<i2")
    return samples[samples != 0].tobytes()


def test_without_root_or_tools_the_tether_says_exactly_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tether_module.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(tether_module, "_tool", lambda name: None if name == "iptables" else name)
    with pytest.raises(TetherUnavailable) as raised:
        Tether().start()
    message = str(raised.value)
    assert "root" in message and "`iptables`" in message and "package iptables" in message
    assert "`ip`" not in message and "`tc`" not in message, "only what is missing"


def test_a_killed_runs_namespaces_are_removed_by_the_next_tether() -> None:
    tether_module.require()
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now names no process, as a killed run's does
    stale = f"{PREFIX}{gone.pid}-0c"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        with Tether() as made:
            assert stale not in os.listdir(NETNS_DIR)
            assert set(made.ns.values()) <= set(os.listdir(NETNS_DIR))
        assert not set(made.ns.values()) & set(os.listdir(NETNS_DIR)), "its own are gone too"
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)
