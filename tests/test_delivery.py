"""A resumption handle forgets only what surely reached the server: items still in the
kernel's buffer or a slow path's queue when it comes are sent again after a lost connection."""

from __future__ import annotations

import struct

from shelfsight.live.ack_probe import parse_linux_tcp_info
from shelfsight.live.delivery import Delivery
from shelfsight.live.outbox import Audio, Outbox


def test_with_byte_counts_an_item_is_delivered_once_its_end_is_acknowledged() -> None:
    delivery = Delivery(first_index=10)
    for index, end in ((11, 1_000), (12, 2_000), (13, 3_000)):
        delivery.sent(index, end)
    delivery.observe(acked_bytes=1_999, drained=False)
    assert delivery.delivered == 11
    delivery.observe(acked_bytes=3_000, drained=False)
    assert delivery.delivered == 13


def test_without_byte_counts_only_a_drained_path_delivers() -> None:
    delivery = Delivery(first_index=0)
    delivery.sent(1, None)
    delivery.sent(2, None)
    delivery.observe(acked_bytes=None, drained=False)
    assert delivery.delivered == 0
    delivery.observe(acked_bytes=None, drained=True)
    assert delivery.delivered == 2


def test_an_item_without_a_position_is_delivered_with_a_later_one() -> None:
    """The probe failed once: that item has no end, but the stream is in order."""
    delivery = Delivery(first_index=0)
    delivery.sent(1, None)
    delivery.sent(2, 500)
    delivery.observe(acked_bytes=500, drained=False)
    assert delivery.delivered == 2


def test_a_handle_forgets_only_the_delivered_items() -> None:
    outbox = Outbox(max_audio_s=10.0, replay_s=10.0)
    chunks = [Audio(bytes([i]) * 640, speech=True) for i in range(5)]
    for chunk in chunks:
        outbox.put(chunk)
        taken = outbox.take()
        assert isinstance(taken, Audio) and taken.pcm == chunk.pcm
        outbox.sent()
    assert outbox.sent_count == 5
    outbox.commit(upto=3)  # items 4 and 5 still on their way
    assert outbox.replayable_s == 2 * 640 / 32_000
    outbox.replay()
    again = []
    while (item := outbox.take()) is not None:
        assert isinstance(item, Audio)
        again.append(item.pcm)
        outbox.sent()
    assert again == [chunks[3].pcm, chunks[4].pcm]


def test_linux_tcp_info_gives_the_stream_positions() -> None:
    """What the kernel took is at least what was acknowledged, plus every segment in flight
    counted whole, plus what it has not sent yet."""
    raw = bytearray(232)  # struct tcp_info, include/uapi/linux/tcp.h
    struct.pack_into("<I", raw, 16, 1_448)  # tcpi_snd_mss
    struct.pack_into("<I", raw, 24, 3)  # tcpi_unacked, segments
    struct.pack_into("<Q", raw, 120, 50_000)  # tcpi_bytes_acked
    struct.pack_into("<I", raw, 144, 700)  # tcpi_notsent_bytes
    state = parse_linux_tcp_info(bytes(raw))
    assert state is not None
    assert state.acked_bytes == 50_000
    assert state.kernel_bytes == 50_000 + 3 * 1_448 + 700
