"""Answers arriving slower than real time play through the real JitterBuffer without stuttering.

Driven on a simulated clock (`bench.slow_playout`: 40 ms chunks arriving at a ratio of real
time with 0-20 ms of jitter, popped by a 20 ms audio clock), so they take milliseconds and never
depend on the machine's load.
"""

from __future__ import annotations

import random
from pathlib import Path

from bench.slow_playout import BLOCK_BYTES, RATE_HZ, Session, SimClock, arrival_offsets, run
from shelfsight.media.playout import (
    MAX_HOLD_S,
    MAX_WAIT_S,
    MEASURE_S,
    SLOW_NOTICE_S,
    JitterBuffer,
)
from shelfsight.media.speaker import WavSpeaker


def answers(session: Session, ratio: float, lengths: list[float], seed: int = 3) -> list:
    rng = random.Random(seed)
    return [session.answer(arrival_offsets(s, ratio, 0.02, rng)) for s in lengths]


LENGTHS = [4.0, 6.5, 3.0, 5.0, 7.5, 4.5, 5.5, 2.5]  # seconds of speech, median 4.75


def test_answers_arriving_at_0_7x_real_time_play_with_at_most_one_gap() -> None:
    heard = answers(Session(), 0.7, LENGTHS)
    assert max(h.gaps for h in heard) <= 1, [h.gaps for h in heard]
    assert sum(h.gaps for h in heard) <= len(heard) // 2 + 1
    assert heard[0].start_s < 0.2, "the first answer on a link not yet known slow starts at once"
    assert all(1.0 < h.start_s < 3.5 for h in heard[1:]), [h.start_s for h in heard]
    assert all(h.end_s - h.last_chunk_s < MAX_HOLD_S for h in heard), "not held far too long"
    old = answers(Session(slow_hold=False), 0.7, LENGTHS)
    assert min(h.gaps for h in old) >= 5, "the margin alone stutters (what this fixes)"


def test_answers_arriving_at_0_36x_real_time_play_whole_starting_later() -> None:
    heard = answers(Session(), 0.36, LENGTHS)
    assert max(h.gaps for h in heard) <= 1, [h.gaps for h in heard]
    short = [h for h, s in zip(heard[1:], LENGTHS[1:], strict=True) if s <= 4.5]
    assert short and all(h.gaps == 0 for h in short), "a typical answer plays whole"
    assert all(5.0 < h.start_s <= MAX_WAIT_S + 0.1 for h in heard[1:])


def test_a_long_answer_refills_once_or_twice_instead_of_stuttering() -> None:
    session = Session()
    answers(session, 0.7, [3.0, 3.5, 3.0])  # the usual answer here: about 3 s
    (long,) = answers(session, 0.7, [12.0])
    assert long.gaps <= 2
    (old,) = answers(Session(slow_hold=False), 0.7, [12.0])
    assert old.gaps >= 20


def test_on_a_fast_link_an_answer_starts_after_the_same_60_ms_margin_as_before() -> None:
    for ratio, jitter_s in ((1.0, 0.02), (1.0, 0.06), (3.0, 0.02)):
        new, old = Session(), Session(slow_hold=False)
        rng_new, rng_old = random.Random(5), random.Random(5)
        for seconds in LENGTHS:
            a = new.answer(arrival_offsets(seconds, ratio, jitter_s, rng_new))
            b = old.answer(arrival_offsets(seconds, ratio, jitter_s, rng_old))
            assert a.start_s == b.start_s <= 0.08, (ratio, jitter_s, a, b)
            assert a.gaps == b.gaps and a.end_s == b.end_s
            assert not a.noticed, "a fast link is never called slow"
        assert new.buffer.max_slow_wait_s == 0.0
    for seed in (8, 15, 16):  # sessions where 0-60 ms of jitter makes a hole early in an answer
        heard, before = run(1.0, 0.06, 20, seed, True), run(1.0, 0.06, 20, seed, False)
        for a, b in zip(heard, before, strict=True):
            assert a.gaps == b.gaps and abs(a.end_s - b.end_s) < 1e-6, (seed, a, b)
            assert a.start_s == b.start_s and not a.noticed


def test_the_wait_is_reported_so_the_user_can_be_told_once() -> None:
    session = Session()
    (first,) = answers(session, 0.7, [5.0])
    assert first.noticed, "a slow link's wait passes SLOW_NOTICE_S and says so"
    assert session.buffer.max_slow_wait_s >= SLOW_NOTICE_S
    assert session.buffer.slow_wait_s == 0.0 and session.buffer.hold_s == 0.0, "idle again"


def test_talking_over_a_held_answer_silences_it_at_once_and_the_next_is_measured_afresh() -> None:
    session = Session()
    answers(session, 0.7, [4.0, 4.0])  # the link is known to be slow
    rng = random.Random(9)
    held = session.answer(arrival_offsets(5.0, 0.7, 0.02, rng), clear_after_s=1.5)
    assert held.start_s < 0 and held.noticed, "1.5 s in, it was still held back, and said so"
    buffer = session.buffer
    assert buffer.pending_bytes == 0 and buffer.pop(BLOCK_BYTES) == b"", "emptied at once"
    assert buffer.slow_wait_s == 0.0 and buffer.hold_s == 0.0 and buffer.arrival_ratio is None
    after = session.answer(arrival_offsets(4.0, 1.0, 0.0, rng))  # the link is fast again
    assert after.gaps == 0 and after.start_s <= MEASURE_S + 0.04, after
    ratio = buffer.arrival_ratio
    assert ratio is not None and ratio >= 0.95, "its own ratio, not the slow one it followed"


def test_a_very_slow_link_waits_at_most_3_s_of_audio_and_10_s_of_wall_time() -> None:
    for ratio, seconds in ((0.36, 12.0), (0.15, 6.0)):
        session = Session()
        buffer = session.buffer
        answers(session, ratio, [5.0])
        held: list[float] = []

        def watch(n: int, buffer: JitterBuffer = buffer, held: list = held) -> bytes:
            out = JitterBuffer.pop(buffer, n)
            held.append(buffer.hold_s)
            return out

        buffer.pop = watch  # type: ignore[method-assign]
        (long,) = answers(session, ratio, [seconds])
        assert max(held) == MAX_HOLD_S, "the hold reached its bound, and stayed within it"
        assert long.start_s <= MAX_WAIT_S + 0.05, (ratio, long)
        assert buffer.max_slow_wait_s <= MAX_WAIT_S + 0.05
    assert long.start_s >= MAX_WAIT_S - 0.1, "at 0.15x the 10 s bound is what ends the wait"


def test_a_late_chunk_on_a_fast_link_is_a_short_hole_as_before_not_a_slow_link_wait() -> None:
    """The jitter margin's own remedy is untouched: a chunk late early in a fast answer (the
    first two together, the third 60 ms late; or the sixth 100 ms late) and again later is
    heard as the same short hole (and grows the margin) as without the slow-link hold; nothing
    is called slow."""
    for late in ({0: 0.04, 2: 0.06, 50: 0.1}, {5: 0.1, 50: 0.1}):
        offsets = [i * 0.04 + late.get(i, 0.0) for i in range(100)]
        offsets = [max(offsets[: i + 1]) for i in range(len(offsets))]  # in order, as over TCP
        new, old = Session(), Session(slow_hold=False)
        a, b = new.answer(offsets), old.answer(offsets)
        assert a.gaps == b.gaps >= 1 and abs(a.end_s - b.end_s) <= 0.01, (late, a, b)
        assert new.buffer.margin_s == old.buffer.margin_s > 0.06, "the margin grew"
        assert not a.noticed and new.buffer.max_slow_wait_s == 0.0


def test_the_speaker_sink_tells_the_session_about_the_wait(tmp_path: Path) -> None:
    """What the conversation polls: the sink's slow_wait_s / slow_hold_s / max_slow_wait_s."""
    speaker = WavSpeaker(tmp_path / "answer.wav")  # never started: its buffer is driven here
    clock = SimClock()
    speaker._buffer = JitterBuffer(RATE_HZ, clock=clock)
    assert speaker.slow_wait_s == speaker.slow_hold_s == speaker.max_slow_wait_s == 0.0
    chunk = bytes(2 * RATE_HZ * 40 // 1000)
    pushes = [i * 0.111 for i in range(30)]  # 40 ms chunks at 0.36x real time
    for tick in range(150):  # 3 s of a 20 ms audio clock
        clock.now = tick * 0.02 + 0.005
        while pushes and pushes[0] <= clock.now:
            speaker.play(chunk)
            pushes.pop(0)
        speaker._buffer.pop(BLOCK_BYTES)
    assert speaker.slow_hold_s > 1.0 and speaker.slow_wait_s >= SLOW_NOTICE_S
    speaker.clear()
    assert speaker.slow_wait_s == 0.0 and speaker.pending_s == 0.0


def test_with_the_upload_slow_the_first_answer_waits_to_play_whole_even_when_bunched() -> None:
    """A 256 kbit/s tether both ways (seen in bench.tether): the answer's first two chunks came
    within 11 ms, the rest at 0.64x real time. Unknown, the downlink is taken for fast and the
    answer starts at once, runs dry, then waits; told that the upload is slow, it waits first
    and plays through."""
    bunched = [0.0, 0.011] + [0.011 + k * 0.04 / 0.64 for k in range(1, 75)]  # 3 s of answer
    unknown = Session().answer(bunched)
    assert unknown.gaps >= 1 and unknown.start_s < 0.2, unknown
    told = Session()
    told.buffer.expect_slow()
    heard = told.answer(bunched)
    assert heard.gaps == 0 and heard.start_s > 0.5, heard
    fast = Session()
    fast.buffer.expect_slow()  # a slow upload, a fast downlink: measured so within 0.3 s
    quick = fast.answer([k * 0.04 / 2.0 for k in range(75)])
    assert quick.gaps == 0 and quick.start_s <= MEASURE_S + 0.1, quick


def lossy(seconds: float = 3.0) -> list[float]:
    """A 256 kbit/s tether with 2 % loss (bench.tether): 40 ms chunks at 0.62x real time, and
    twice a retransmission stall of about 1.8 s."""
    out, t = [], 0.0
    for k in range(round(seconds / 0.04)):
        t += 0.064 + (1.8 if k in (11, 40) else 0.0)
        out.append(t)
    return [x - out[0] for x in out]


def test_on_a_lossy_link_answers_told_where_they_end_play_whole_from_the_second() -> None:
    """A stall of 1.8 s in an answer used to end it in the buffer's eyes: the chunks after it
    made a new "answer", fast and short, and the next answers started at once and broke up.
    Told where answers end (the turn completes), a stall is a hole in the answer: the link's
    longest stall is held for, and from the second answer on each plays whole."""
    told = Session(told_ends=True)
    told.buffer.expect_slow()
    heard = [told.answer(lossy()) for _ in range(5)]
    assert all(h.gaps == 0 for h in heard[1:]), [h.gaps for h in heard]
    assert all(h.end_s - h.last_chunk_s < MAX_HOLD_S for h in heard), "not held far too long"
    untold = Session()
    untold.buffer.expect_slow()
    before = [untold.answer(lossy()) for _ in range(5)]
    assert sum(h.gaps for h in before[1:]) > sum(h.gaps for h in heard[1:])
