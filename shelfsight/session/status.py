"""What the user is told about the session besides the answers: its state and its notices.

`State` is the vocabulary the view shows; the notice functions are pure (event in, sentence or
None out), so the wording is tested directly and every way of telling the user (screen today,
sound and speech later) says the same thing.
"""

from __future__ import annotations

import time
from enum import StrEnum

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
    """The sentence a connection event deserves, if any.

    A planned switch (goAway) that took under a second is not worth a word; a failed one is.
    """
    match event:
        case Connected(planned=planned, outage_s=outage, context_lost=lost):
            parts = []
            if lost:
                parts.append(
                    "the server could not resume the conversation; continuing in a fresh one "
                    "(earlier questions are forgotten)"
                )
            if not first_connection and (not planned or outage > 1.0):
                parts.append(f"reconnected after {outage:.1f} s")
            return "; ".join(parts) or None
        case Reconnecting(planned=True):
            return None
        case Reconnecting(again=True, reason=reason, delay_s=delay, outage_s=outage):
            return (
                f"the new connection failed at once ({reason}); no connection for "
                f"{outage:.0f} s, retrying in {delay:.1f} s"
            )
        case Reconnecting(reason=reason, attempt=attempt, delay_s=delay, outage_s=outage):
            if attempt >= 3:
                return (
                    f"still no connection after {outage:.0f} s ({reason}); giving up in "
                    f"{event.gives_up_in_s:.0f} s"
                )
            return f"{reason}; retrying in {delay:.1f} s"
        case AnswerCut():
            return "answer cut off by the connection; asking again"
        case SlowLink(slow=True):
            return "slow connection: answers may lag (lighter audio, a small picture per question)"
        case SlowLink(slow=False):
            return "connection keeping up again"
        case AudioLost(missed_at=missed) if missed:
            return f"{missed_sentence(missed)} (the connection was too slow or down too long)"
        case AudioLost(lost_s=lost, total_s=total):
            return (
                f"{lost:.1f} s of what you said never reached the model: the connection was "
                f"too slow or down too long ({total:.1f} s in all)"
            )
    return None


def missed_sentence(missed_at: tuple[float, ...]) -> str:
    """"I missed what you said at 12:03:14; please ask again", with local clock times."""
    times = [time.strftime("%H:%M:%S", time.localtime(t)) for t in missed_at]
    when = times[0] if len(times) == 1 else ", ".join(times[:-1]) + " and " + times[-1]
    return f"I missed what you said at {when}; please ask again"


def camera_notice(status: CameraStatus) -> str:
    if status.stalled:
        return "camera stopped sending pictures; reconnecting to it (answers go on)"
    return f"camera back after {status.outage_s:.0f} s"


class Spoken(StrEnum):
    """Status worth saying aloud: it lasts, or the user must act (session.announcer)."""

    NOT_CONNECTED = "not_connected"
    NO_CONNECTION = "no_connection"
    CONNECTED_AGAIN = "connected_again"
    CAMERA_LOST = "camera_lost"
    CAMERA_BACK = "camera_back"
    NO_ANSWER = "no_answer"
    MIC_SILENT = "mic_silent"


SPOKEN = {
    Spoken.NOT_CONNECTED: "Still connecting. Please wait.",
    Spoken.NO_CONNECTION: "The connection is lost. Trying to reconnect.",
    Spoken.CONNECTED_AGAIN: "Connected again.",
    Spoken.CAMERA_LOST: "The camera stopped. Check the phone's camera.",
    Spoken.CAMERA_BACK: "The camera is back.",
    Spoken.NO_ANSWER: "No answer came. Please ask again.",
    Spoken.MIC_SILENT: "I can't hear anything from the microphone. Check that it is on.",
}


def spoken(status: Spoken) -> str:
    """The sentence said aloud for `status` (short: it is heard standing in an aisle)."""
    return SPOKEN[status]


def stopped_sentence(message: str) -> str:
    """What is said as the session ends with an error: the error's first sentence."""
    reason = message.split(". ")[0].split(": use ")[0].rstrip(".")
    return f"shelfsight has stopped. {reason}."
