"""What the user is told about the session besides the answers: its state and its notices.

`State` is the vocabulary the view shows; the notice functions are pure (event in, sentence or
None out), so the wording is tested directly and every way of telling the user (screen,
sound and speech) says the same thing. The words are the catalogue's, in the session's
language (`shelfsight.core.phrases`).
"""

from __future__ import annotations

import time
from enum import StrEnum

from shelfsight.core.phrases import Phrase, phrase
from shelfsight.live.events import (
    AnswerCut,
    AudioLost,
    Connected,
    Reconnecting,
    ServerEvent,
    SlowLink,
)
from shelfsight.media.camera import CameraStatus


class State(StrEnum):
    CONNECTING = "connecting"
    LISTENING = "listening"
    USER_TALKING = "user talking"
    THINKING = "thinking"
    ANSWERING = "answering"
    RECONNECTING = "reconnecting"


def link_notice(event: ServerEvent, *, first_connection: bool) -> str | None:
    """The sentence a connection event deserves, if any (in the session's language).

    A planned switch (goAway) that took under a second is not worth a word; a failed one is.
    """
    match event:
        case Connected(planned=planned, outage_s=outage, context_lost=lost):
            parts = []
            if lost:
                parts.append(phrase("fresh_conversation"))
            if not first_connection and (not planned or outage > 1.0):
                parts.append(phrase("reconnected", seconds=outage))
            return "; ".join(parts) or None
        case Reconnecting(planned=True):
            return None
        case Reconnecting(again=True, reason=reason, delay_s=delay, outage_s=outage):
            return phrase("failed_at_once", reason=reason, outage=outage, delay=delay)
        case Reconnecting(reason=reason, attempt=attempt, delay_s=delay, outage_s=outage):
            if attempt >= 3:
                left = event.gives_up_in_s
                return phrase("still_no_connection", outage=outage, reason=reason, left=left)
            return phrase("retrying", reason=reason, delay=delay)
        case AnswerCut():
            return phrase("answer_cut")
        case SlowLink(slow=True):
            return phrase("slow_link")
        case SlowLink(slow=False):
            return phrase("slow_link_over")
        case AudioLost(missed_at=missed) if missed:
            return phrase("missed_why", times=_clock_times(missed))
        case AudioLost(lost_s=lost, total_s=total):
            return phrase("audio_lost", lost=lost, total=total)
    return None


def missed_sentence(missed_at: tuple[float, ...]) -> Phrase:
    """ "I missed what you said at 12:03:14; please ask again", with local clock times."""
    return Phrase("missed", {"times": _clock_times(missed_at)})


def _clock_times(missed_at: tuple[float, ...]) -> str:
    times = [time.strftime("%H:%M:%S", time.localtime(t)) for t in missed_at]
    if len(times) == 1:
        return times[0]
    return phrase("list_and", first=", ".join(times[:-1]), last=times[-1])


def camera_notice(status: CameraStatus) -> str:
    if status.stalled:
        return phrase("camera_stalled")
    return phrase("camera_back_after", seconds=status.outage_s)


class Spoken(StrEnum):
    """Status worth saying aloud: it lasts, or the user must act (session.announcer)."""

    NOT_CONNECTED = "not_connected"
    NO_CONNECTION = "no_connection"
    CONNECTED_AGAIN = "connected_again"
    CAMERA_LOST = "camera_lost"
    CAMERA_BACK = "camera_back"
    NO_ANSWER = "no_answer"
    MIC_SILENT = "mic_silent"


def spoken(status: Spoken) -> Phrase:
    """The sentence said aloud for `status` (short: it is heard standing in an aisle)."""
    return Phrase(f"spoken_{status}")


def stopped_sentence(message: str) -> Phrase:
    """What is said as the session ends with an error: the error's first sentence."""
    reason = message.split(". ")[0].split(": use ")[0].rstrip(".")
    return Phrase("stopped", {"reason": reason})
