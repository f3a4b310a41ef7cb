"""What the link's outbox drops when an outage or a slow link outlasts its buffer: whole
utterances, oldest first, never a part of one glued to a later one, and which ones it lost."""

from __future__ import annotations

import pytest

from shelfsight.live.outbox import (
    PREROLL_CHUNKS,
    ActivityEnd,
    ActivityStart,
    Audio,
    AudioStreamEnd,
    Item,
    Outbox,
)

P = PREROLL_CHUNKS  # 0.6 s

CHUNK = 640  # 20 ms


def _chunks(n: int, speech: bool, tag: int) -> list[Audio]:
    """`n` chunks whose bytes say which stretch they come from (`tag`) and where."""
    return [Audio(bytes([tag, i % 256]) * (CHUNK // 2), speech) for i in range(n)]


def _sent(outbox: Outbox) -> list[Item]:
    out = []
    while (item := outbox.take()) is not None:
        out.append(item)
        outbox.sent()
    return out


def _tags(items: list[Item]) -> list[int]:
    return [item.pcm[0] for item in items if isinstance(item, Audio)]


def _stretches(items: list[Item]) -> list[tuple[int, int]]:
    """(tag, how many chunks) for each run of one tag, in order."""
    runs: list[tuple[int, int]] = []
    for tag in _tags(items):
        if runs and runs[-1][0] == tag:
            runs[-1] = (tag, runs[-1][1] + 1)
        else:
            runs.append((tag, 1))
    return runs


def test_an_outage_drops_the_oldest_question_whole_and_keeps_the_newest_whole() -> None:
    """Hands-free, 4 s of buffer: 1 s pause, a 2 s question, 1 s pause, a 1.5 s question,
    1 s pause. The first question goes (with the 0.6 s before it and the 0.7 s after);
    nothing of it is glued to the second, which arrives whole."""
    outbox = Outbox(max_audio_s=4.0, replay_s=15.0)
    parts = [
        _chunks(50, False, 1),
        _chunks(100, True, 2),
        _chunks(50, False, 3),
        _chunks(75, True, 4),
        _chunks(50, False, 5),
    ]
    for chunk in (c for part in parts for c in part):
        outbox.put(chunk)
    out = _sent(outbox)
    assert 2 not in _tags(out), "the first question is gone whole"
    assert (4, 75) in _stretches(out), "the second is there whole"
    # The pause between: what of it is not the first question's hang is the pre-roll.
    assert _stretches(out)[:2] == [(3, 50 - 35), (4, 75)], "the pause between: its pre-roll"
    assert 1 not in _tags(out), "the pause before the first question went before it did"
    (missed,) = outbox.missed.values()
    assert missed.dropped_s >= 2.0 + 0.7


def test_whatever_the_buffer_no_question_is_cut_short_or_spliced() -> None:
    """Questions of 0.5-3 s between pauses of 0.2-2 s, through buffers of 1-6 s: every
    question that reaches the server reaches it whole (the one still being spoken aside)."""
    lengths = [(25, 40), (150, 10), (60, 100), (90, 25), (30, 60), (120, 50)]
    for buffer_s in (1.0, 2.0, 3.5, 6.0):
        outbox = Outbox(max_audio_s=buffer_s, replay_s=15.0)
        for k, (speech_n, pause_n) in enumerate(lengths):
            for chunk in _chunks(speech_n, True, 10 + k) + _chunks(pause_n, False, 100 + k):
                outbox.put(chunk)
        out = _sent(outbox)
        for tag, n in _stretches(out):
            if 10 <= tag < 16 and tag != 15:
                assert n == lengths[tag - 10][0], (buffer_s, tag, n)


def test_a_push_to_talk_turn_not_yet_begun_goes_whole_with_its_markers() -> None:
    outbox = Outbox(max_audio_s=1.0, replay_s=15.0)
    for item in [ActivityStart(), *_chunks(40, True, 1), ActivityEnd()]:
        outbox.put(item)
    for item in [ActivityStart(), *_chunks(40, True, 2), ActivityEnd()]:
        outbox.put(item)
    out = _sent(outbox)
    assert _tags(out) == [2] * 40
    assert [type(i).__name__ for i in out if not isinstance(i, Audio)] == [
        "ActivityStart",
        "ActivityEnd",
    ]
    assert len(outbox.missed) == 1


def test_a_turn_whose_start_went_out_keeps_its_end_so_the_server_closes_it() -> None:
    outbox = Outbox(max_audio_s=1.0, replay_s=15.0)
    outbox.put(ActivityStart())
    assert isinstance(outbox.take(), ActivityStart)  # sent, then the link stalled
    outbox.sent()
    for item in [*_chunks(40, True, 1), ActivityEnd(), ActivityStart(), *_chunks(40, True, 2)]:
        outbox.put(item)
    outbox.put(ActivityEnd())
    out = _sent(outbox)
    kinds = [type(i).__name__ for i in out]
    assert kinds[0] == "ActivityEnd", "the first turn is closed, its audio gone"
    assert _tags(out) == [2] * 40


def test_a_turn_longer_than_the_buffer_loses_its_start_and_keeps_its_markers() -> None:
    outbox = Outbox(max_audio_s=1.0, replay_s=15.0)
    outbox.put(ActivityStart())
    for chunk in _chunks(100, True, 1):  # 2 s said into a 1 s buffer, all during an outage
        outbox.put(chunk)
    outbox.put(ActivityEnd())
    out = _sent(outbox)
    assert isinstance(out[0], ActivityStart) and isinstance(out[-1], ActivityEnd)
    kept = [item.pcm[1] for item in out if isinstance(item, Audio)]
    assert kept == list(range(50, 100)), "the newest 1 s of it, whole and in order"
    assert list(outbox.missed.values())[0].dropped_s == pytest.approx(1.0)


def test_hands_free_speech_longer_than_the_buffer_keeps_its_newest_part_in_order() -> None:
    """Speech in babble the detector never hears end, during an outage: the newest buffer's
    worth of it goes out (it holds the question), not nothing."""
    outbox = Outbox(max_audio_s=1.0, replay_s=15.0)
    for chunk in _chunks(200, True, 1):  # 4 s of one utterance into a 1 s buffer
        outbox.put(chunk)
    kept = [item.pcm[1] for item in _sent(outbox) if isinstance(item, Audio)]
    assert kept == list(range(150, 200))


def test_on_a_slow_link_only_speech_goes_up_each_utterance_whole_then_a_stream_end() -> None:
    """Speech only: 2 s of pause, a 1 s question, 2 s of pause, a 1 s question, a pause.
    What goes out is each question with its 0.6 s before and 0.7 s after, an AudioStreamEnd
    after each, and none of the pauses beyond; the newest 0.6 s of pause waits (it may be
    the start of the next question)."""
    outbox = Outbox(max_audio_s=15.0, replay_s=15.0)
    outbox.speech_only = True
    out: list[Item] = []
    parts = [
        _chunks(100, False, 1),
        _chunks(50, True, 2),
        _chunks(100, False, 3),
        _chunks(50, True, 4),
        _chunks(30, False, 5),
    ]
    for chunk in (c for part in parts for c in part):
        outbox.put(chunk)
        out += _sent(outbox)  # a fast link: everything that may go, goes at once
    # Each question whole with its pre-roll; the first one's 0.7 s after it and the second's
    # pre-roll meet in the output (the 1 s of pause between them stays home).
    assert _stretches(out) == [(1, P), (2, 50), (3, 35 + P), (4, 50), (5, 30)]
    ends = [k for k, item in enumerate(out) if isinstance(item, AudioStreamEnd)]
    assert ends == [P + 50 + 35], "a stream end after the first question's hang, once"
    assert outbox.skipped_s == pytest.approx((100 - P + 100 - 35 - P) * 0.02)


def test_speech_only_sends_all_the_mic_while_an_answer_plays_and_owes_no_pause() -> None:
    """Speech only (the default): pause audio marked `keep` (an answer plays) goes up whole,
    so the server hears a barge-in at once; once the answer is over the pause stays home
    again, after one AudioStreamEnd. Pause audio held back as a possible pre-roll is not a
    backlog (the end of a session, the slow-link judgement wait for none of it)."""
    outbox = Outbox(max_audio_s=15.0, replay_s=15.0)
    outbox.speech_only = True
    out: list[Item] = []
    answering = [Audio(c.pcm, keep=True) for c in _chunks(40, False, 2)]
    for chunk in [*_chunks(50, False, 1), *answering, *_chunks(50, False, 3)]:
        outbox.put(chunk)
        out += _sent(outbox)
        assert outbox.backlog_s == 0.0
    assert _stretches(out) == [(2, 40)]
    assert sum(isinstance(item, AudioStreamEnd) for item in out) == 1
    outbox.put(_chunks(1, True, 4)[0])
    assert outbox.backlog_s == pytest.approx((P + 1) * 0.02), "speech claims its pre-roll: owed"
