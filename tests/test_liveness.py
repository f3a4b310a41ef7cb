"""When is a connection dead? The rules on a clock of the test's own, and the kernel probes of
both platforms on their real structs (Linux's read from a real socket here, macOS's built as
xnu lays it out), plus the one adapter for the SDK's internals on a real session."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

import pytest

from shelfsight.live import sdk_socket
from shelfsight.live.ack_probe import (
    _DARWIN_INFO,
    DarwinConnectionInfo,
    LinuxTcpInfo,
    SendState,
    parse_linux_tcp_info,
    platform_probe,
)
from shelfsight.live.liveness import IDLE_S, REPLY_S, Liveness
from shelfsight.live.setup import Endpoint, live_config, make_client
from shelfsight.settings import Settings
from shelfsight.standin import StandIn, StandInConfig

STALL_S = 2.5
IDLE = SendState(owed_bytes=0, progress=0)


def _owed(progress: int, rto_s: float | None = None, trusted: bool = True) -> SendState:
    return SendState(owed_bytes=900, progress=progress, rto_s=rto_s, trusted=trusted)


Actions = dict[float, Callable[[float], None]]


def _run(
    live: Liveness,
    states: dict[float, SendState],
    until: float,
    actions: Actions | None = None,
    start: float = 0.0,
) -> float | None:
    """Tick every 0.1 s from `start` to `until`: first the action due at that time (e.g.
    `live.writing`), then the send state set at that time (kept until the next); returns
    when the connection was judged dead, or None."""
    state = IDLE
    for tick in range(round(start * 10), round(until * 10) + 1):
        now = tick / 10
        if actions and now in actions:
            actions[now](now)
        state = states.get(now, state)
        live.observe(now, state)
        if live.verdict(now) is not None:
            return now
    return None


def test_a_connection_that_sends_nothing_and_hears_nothing_is_never_judged_dead() -> None:
    live = Liveness(0.0, stall_s=STALL_S)
    pings: Actions = {k * 5.0: live.ping_sent for k in range(120)}  # never answered
    assert _run(live, {}, until=600.0, actions=pings) is None


def test_data_not_acknowledged_for_the_stall_bound_is_a_dead_link() -> None:
    live = Liveness(0.0, stall_s=STALL_S)
    dead_at = _run(live, {10.0: _owed(progress=5)}, until=20.0, actions={10.0: live.writing})
    assert dead_at == pytest.approx(10.0 + STALL_S)
    verdict = live.verdict(20.0)
    assert verdict is not None and verdict.silent_since == 10.0
    assert verdict.reason.startswith("no reply from the server")


def test_each_acknowledgement_restarts_the_stall_clock() -> None:
    live = Liveness(0.0, stall_s=STALL_S)
    acks = {1.0 + 2.0 * k: _owed(progress=k) for k in range(10)}  # one every 2 s: slow, alive
    assert _run(live, acks, until=19.0, actions={1.0: live.writing}) is None
    stuck = {19.1: _owed(progress=9)}  # then none: dead
    assert _run(live, stuck, until=30.0, start=19.1) == pytest.approx(19.0 + STALL_S)


def test_a_long_retransmission_timeout_stretches_the_stall_bound() -> None:
    """A bufferbloated tether whose timeout is 3.3 s (seen at 256 kbit/s) is still
    retransmitting at 5 s: not dead yet (the plain bound would have cut it at 2.5 s)."""
    live = Liveness(0.0, stall_s=STALL_S)
    owed = {0.0: _owed(progress=1, rto_s=3.3)}
    dead_at = _run(live, owed, until=10.0, actions={0.0: live.writing})
    assert dead_at == pytest.approx(6.6)


def test_everything_acknowledged_means_nothing_is_owed() -> None:
    live = Liveness(0.0, stall_s=STALL_S)
    states = {0.0: _owed(1), 0.5: IDLE}
    assert _run(live, states, until=60.0, actions={0.0: live.writing}) is None


def test_a_question_owes_an_answer_within_the_reply_bound() -> None:
    live = Liveness(0.0, stall_s=STALL_S)
    live.reply_owed(5.0)
    assert _run(live, {}, until=5.0 + REPLY_S - 0.2) is None
    assert live.verdict(5.0 + REPLY_S) is not None
    answered = Liveness(0.0, stall_s=STALL_S)
    answered.reply_owed(5.0)
    answered.heard(7.0)  # the transcript of the question came back: the server is there
    assert _run(answered, {}, until=60.0) is None


def test_a_pong_that_is_late_never_ends_a_connection_before_the_idle_bound() -> None:
    live = Liveness(0.0, stall_s=STALL_S)
    # Pings acknowledged by the kernel at once; a pong 30 s late, as reported of the service.
    pings: Actions = {0.0: live.ping_sent, 30.0: live.pong, 35.0: live.ping_sent}
    dead_at = _run(live, {}, until=200.0, actions=pings)
    assert dead_at == pytest.approx(35.0 + IDLE_S)
    verdict = live.verdict(35.0 + IDLE_S)
    assert verdict is not None and "pings" in verdict.reason
    assert IDLE_S >= 30.0


def test_only_pings_unacknowledged_wait_the_idle_bound() -> None:
    """The kernel owes an acknowledgement for our ping alone: judged like a late pong."""
    live = Liveness(0.0, stall_s=STALL_S)
    owed = {10.0: _owed(progress=3)}
    dead_at = _run(live, owed, until=100.0, actions={10.0: live.ping_sent})
    assert dead_at == pytest.approx(10.0 + IDLE_S)


def test_a_connection_is_proven_by_an_acknowledgement_not_by_its_own_kernel_filling() -> None:
    trusted = Liveness(0.0, stall_s=STALL_S)
    _run(trusted, {0.0: _owed(1), 0.3: _owed(2)}, until=0.5)
    assert trusted.proven
    fallback = Liveness(0.0, stall_s=STALL_S)
    _run(fallback, {0.0: _owed(1, trusted=False), 0.3: _owed(2, trusted=False)}, until=0.5)
    assert not fallback.proven, "the local kernel took bytes: no sign of the server yet"
    fallback.observe(STALL_S + 1, _owed(3, trusted=False))
    assert fallback.proven, "still draining past the stall bound: the other side is there"
    streaming = Liveness(0.0, stall_s=STALL_S)  # no probe, a fast link: nothing ever waits
    writes: Actions = {k / 10: streaming.writing for k in range(0, 50, 2)}
    _run(streaming, {0.0: SendState(0, 0, trusted=False)}, until=STALL_S - 0.1, actions=writes)
    assert not streaming.proven
    untrusted = {STALL_S: SendState(0, 0, trusted=False)}
    _run(streaming, untrusted, until=4.9, actions=writes, start=STALL_S)
    assert streaming.proven, "what it wrote kept going out, long after a dead path would fill"
    heard = Liveness(0.0, stall_s=STALL_S)
    heard.heard(0.2)
    assert heard.proven


def test_linux_tcp_info_of_a_real_socket_counts_acknowledged_bytes() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        probe = LinuxTcpInfo()
        before = probe.read(client)
        assert before is not None
        client.sendall(b"x" * 50_000)
        peer.recv(100_000)
        deadline = time.monotonic() + 2
        after = probe.read(client)
        while after is not None and after.owed_bytes and time.monotonic() < deadline:
            after = probe.read(client)
        assert after is not None and after.progress >= before.progress + 50_000
        assert after.owed_bytes == 0 and after.rto_s is not None and after.rto_s >= 0.2
    finally:
        for sock in (client, peer, server):
            sock.close()


def test_linux_tcp_info_gives_the_path_rate_only_when_the_sender_was_not_holding_back() -> None:
    raw = bytearray(232)
    struct.pack_into("<Q", raw, 120, 200_000)  # acknowledged: past slow start
    struct.pack_into("<Q", raw, 160, 32_000)  # delivery rate, bytes/s
    state = parse_linux_tcp_info(bytes(raw))
    assert state is not None and state.rate_bps == 32_000
    raw[7] |= 1  # tcpi_delivery_rate_app_limited: we had nothing more to send
    state = parse_linux_tcp_info(bytes(raw))
    assert state is not None and state.rate_bps is None
    raw[7] &= ~1
    struct.pack_into("<Q", raw, 120, 10_000)  # still in slow start
    state = parse_linux_tcp_info(bytes(raw))
    assert state is not None and state.rate_bps is None


def _tcp_info(acked: int, rtt_ms: float, min_rtt_ms: float, in_flight: int) -> bytes:
    raw = bytearray(232)
    raw[7] |= 1  # application-limited: what a big window over a slow path shows
    struct.pack_into("<I", raw, 16, 1448)  # mss
    struct.pack_into("<I", raw, 24, in_flight)  # segments
    struct.pack_into("<I", raw, 68, int(rtt_ms * 1000))
    struct.pack_into("<Q", raw, 120, acked)
    struct.pack_into("<I", raw, 148, int(min_rtt_ms * 1000))
    return bytes(raw)


@pytest.mark.parametrize(
    ("per_tick", "rtt_ms", "in_flight", "measured"),
    [(3_200, 900.0, 60, True), (3_200, 45.0, 60, False), (30, 900.0, 2, False)],
    ids=["a queue of ours stands", "no queue", "a radio hiccup while idle"],
)
def test_a_tether_is_measured_by_what_it_acknowledges_while_our_bytes_queue_in_it(
    per_tick: int, rtt_ms: float, in_flight: int, measured: bool
) -> None:
    """256 kbit/s: 32 KB acknowledged a second, 60 segments of ours in flight, the RTT 45
    times its 20 ms minimum; the kernel's own rate sample is application-limited. An idle
    push-to-talk link whose RTT jumps (a radio's retries) is not a slow path."""
    probe = LinuxTcpInfo()
    state = None
    for tick in range(11):
        raw = _tcp_info(100_000 + per_tick * tick, rtt_ms, 20.0, in_flight)
        state = probe.parse(raw, 100.0 + tick / 10)
    assert state is not None
    if measured:
        assert state.rate_bps == pytest.approx(32_000)
    else:
        assert state.rate_bps is None


def test_linux_tcp_info_from_an_old_kernel_without_the_counter_says_nothing() -> None:
    assert parse_linux_tcp_info(bytes(104)) is None


def _darwin(sbbytes: int, txbytes: int, retransmitted: int, srtt_ms: int = 40) -> bytes:
    """A struct tcp_connection_info as xnu's bsd/netinet/tcp.h lays it out."""
    fields = [4, 6, 6, 0, 7, 0, 300, 1448, 65535, 14480, 131072, sbbytes, 131072]
    fields += [srtt_ms, srtt_ms, 10, 0, 100, txbytes, retransmitted, 50, 4000, 0, 0]
    return _DARWIN_INFO.pack(*fields)


def test_macos_connection_info_turns_a_shrinking_buffer_or_new_data_into_progress() -> None:
    assert _DARWIN_INFO.size == 112
    probe = DarwinConnectionInfo()
    first = probe.parse(_darwin(sbbytes=30_000, txbytes=100_000, retransmitted=0))
    assert first is not None and first.owed_bytes == 30_000 and first.progress == 0
    assert first.rto_s == 0.2  # 40 ms + 4 x 10 ms, floored at Linux's minimum
    stuck = probe.parse(_darwin(sbbytes=31_000, txbytes=101_448, retransmitted=1448))
    assert stuck is not None and stuck.progress == 0, "only a retransmission went out"
    shrank = probe.parse(_darwin(sbbytes=20_000, txbytes=101_448, retransmitted=1448))
    assert shrank is not None and shrank.progress == 1
    new_data = probe.parse(_darwin(sbbytes=20_000, txbytes=110_000, retransmitted=1448))
    assert new_data is not None and new_data.progress == 2
    assert probe.parse(b"\0" * 40) is None
    window_bound = probe.parse(_darwin(sbbytes=60_000, txbytes=200_000, retransmitted=0))
    assert window_bound is not None and window_bound.rate_bps == pytest.approx(14480 / 0.04)


def test_each_platform_gets_its_own_probe() -> None:
    assert isinstance(platform_probe("linux"), LinuxTcpInfo)
    assert isinstance(platform_probe("darwin"), DarwinConnectionInfo)
    assert platform_probe("win32") is None


@pytest.mark.anyio
async def test_the_sdk_internals_the_watchdog_relies_on_are_where_it_looks() -> None:
    """Fails loudly when a google-genai or websockets upgrade moves them (the watchdog would
    otherwise be blind without a word): the websocket under the session, the TCP transport
    under the TLS one, the socket, and our "no keepalive" reaching websockets."""
    async with StandIn(StandInConfig()) as server:
        client = make_client("k", Endpoint(server.base_url, server.client_ssl_context()))
        config = live_config(Settings(), "Answer briefly.", None)
        async with client.aio.live.connect(model=Settings().model, config=config) as session:
            assert sdk_socket.missing_internals(session) == []
            ws = sdk_socket.websocket_of(session)
            assert ws is not None and sdk_socket.stop_keepalive_timeout(ws)
            assert sdk_socket.deflate_negotiated(ws) is True
            sock = sdk_socket.socket_of(ws)
            assert sock is not None and LinuxTcpInfo().read(sock) is not None  # type: ignore[arg-type]
