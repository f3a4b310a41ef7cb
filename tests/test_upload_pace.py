"""When the link counts as slow (shelfsight.live.slow): a backlog that keeps growing while the
link carries data is slowness; an outage's backlog, draining once the link is back, is not."""

from __future__ import annotations

import numpy as np

from shelfsight.live.slow import SLOW_MIME, UploadPace, WireAudio

CHUNK_S = 0.02


def _run(
    pace: UploadPace,
    t0: float,
    seconds: float,
    backlog0: float,
    rate: float,
    *,
    flowing: bool = True,
) -> tuple[float, float, list[bool]]:
    """Feed `update` every mic chunk for `seconds` with the backlog changing `rate` s/s;
    (time, backlog, the slow states reported)."""
    t, backlog, changes = t0, backlog0, []
    for _ in range(int(seconds / CHUNK_S)):
        t += CHUNK_S
        backlog = max(0.0, backlog + rate * CHUNK_S)
        if event := pace.update(backlog, t, flowing=flowing):
            changes.append(event.slow)
    return t, backlog, changes


def test_a_backlog_that_keeps_growing_while_the_link_carries_data_is_slow() -> None:
    _, _, changes = _run(UploadPace(), 0.0, 3.0, 0.0, +0.5)
    assert changes == [True]


def test_the_backlog_an_outage_leaves_is_not_slowness_while_it_drains() -> None:
    """The outage (nothing comes back) grows the backlog; once connected it drains, here at
    3x real time (a CPU-starved client), and the link is never called slow."""
    pace = UploadPace()
    t, backlog, during = _run(pace, 0.0, 5.0, 12.0, +1.0, flowing=False)
    _, left, after = _run(pace, t, 6.0, backlog, -3.0)
    assert (during, after, left) == ([], [], 0.0)
    assert not pace.slow


def test_a_link_still_slow_after_an_outage_is_found_slow_again() -> None:
    pace = UploadPace()
    t, backlog, _ = _run(pace, 0.0, 5.0, 2.0, +1.0, flowing=False)
    _, _, after = _run(pace, t, 3.0, backlog, +0.2)
    assert after == [True]


def test_slow_audio_switches_to_8khz_in_a_pause_and_keeps_every_sample() -> None:
    wire = WireAudio()
    quiet = bytes(640)
    pause = WireAudio.PAUSE_CHUNKS + 1  # the chunk after the pause is the first at 8 kHz
    outs = [wire.encode(quiet, speech=False, slow=True) for _ in range(pause)]
    assert {mime for _, mime in outs[:-1]} == {None} and outs[-1][1] == SLOW_MIME
    tone = (8000 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)).astype("<i2").tobytes()
    chunks = [tone[i : i + 640] for i in range(0, len(tone), 640)]
    sent = [wire.encode(c, speech=True, slow=True) for c in chunks]
    assert {mime for _, mime in sent} == {SLOW_MIME}, "no rate change inside speech"
    got = sum(len(data) for data, _ in [*outs[-1:], *sent]) // 2
    held = (len(tone) + 640) // 4 - got
    assert 0 <= held < 0.125 * 8000, f"half the samples but {held} held by the resampler"


def test_the_rate_may_change_at_a_new_connection_or_after_a_stream_end_not_inside_speech() -> None:
    """Speech only, the pauses are never sent, so no 0.8 s of quiet reaches the wire: a new
    connection (no turn yet) and an audioStreamEnd (the server ended the turn) allow the
    change instead. A new connection also drops what the resampler held back, which belongs
    to audio the replay sends again."""
    wire = WireAudio()
    speech = (4000 * np.sin(np.arange(320) * 0.3)).astype("<i2").tobytes()
    assert wire.encode(speech, speech=True, slow=True)[1] is None, "mid-turn: stays 16 kHz"
    wire.stream_ended()
    fresh = [wire.encode(speech, speech=True, slow=True) for _ in range(8)]
    assert {mime for _, mime in fresh} == {SLOW_MIME}
    wire.encode(speech, speech=True, slow=True)  # one more: the resampler holds some back
    wire.new_connection()
    again = [wire.encode(speech, speech=True, slow=True) for _ in range(8)]
    assert {mime for _, mime in again} == {SLOW_MIME}
    assert again == fresh, "a fresh resampler: nothing held from the old connection"
    assert wire.encode(speech, speech=True, slow=False)[1] == SLOW_MIME, "speech: no change"
    wire.new_connection()
    assert wire.encode(speech, speech=True, slow=False)[1] is None


def test_a_link_that_cannot_carry_full_rate_is_not_flipped_back_every_half_minute() -> None:
    """Slow at 8 kHz the backlog drains; at 16 kHz it grows again. Each relapse doubles the
    calm asked before the next try, so over 10 minutes it is tried a handful of times, not
    twenty; and a link that then holds at full rate earns the short calm back."""
    pace = UploadPace()
    t, backlog, changes = 0.0, 0.0, []
    while t < 600.0:
        rate = -0.5 if pace.slow else +0.5  # 8 kHz fits, 16 kHz does not
        t, backlog, more = _run(pace, t, 1.0, backlog, rate)
        changes += more
    tries = changes.count(False)
    assert changes[0] is True and 2 <= tries <= 4, changes
    assert pace.calm_s >= 240.0
    t, backlog, _ = _run(pace, t, pace.calm_s + 1, backlog, -0.5)  # the link got better
    assert not pace.slow
    t, _, held = _run(pace, t, 61.0, 0.0, 0.0)
    assert held == [] and pace.calm_s == 30.0


def test_a_path_the_kernel_measures_too_slow_is_slow_before_any_backlog() -> None:
    """A 256 kbit/s tether (32 KB/s) cannot carry 16 kHz audio (~43 KB/s as the API takes it):
    known from the first measurements, before a question waits behind a backlog."""
    pace = UploadPace()
    assert pace.update(0.0, 1.0, uplink_bps=120_000.0) is None, "a 1 Mbit/s path is fine"
    event = pace.update(0.0, 1.1, uplink_bps=32_000.0)
    assert event is not None and event.slow


def test_slow_mode_does_not_end_while_the_path_is_still_measured_slow() -> None:
    pace = UploadPace()
    pace.update(0.0, 0.0, uplink_bps=32_000.0)
    t = 0.0
    while t < 120.0:  # 8 kHz fits: no backlog, but the kernel still measures 32 KB/s
        t += 0.1
        assert pace.update(0.0, t, uplink_bps=32_000.0) is None
    assert pace.slow
    while pace.slow and t < 200.0:  # measurements stop (nothing to measure): calm ends it
        t += 0.1
        pace.update(0.0, t)
    assert not pace.slow and t <= 120.0 + pace.calm_s + 0.5
