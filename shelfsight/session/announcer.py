"""Sound for a user who is not looking: earcons on what changes, spoken status for what lasts.

`Announcer` observes the session's events (shelfsight.session.events: the state, the mic,
what was said or typed, the camera, words to speak) and, as the session fails, says its last
words. Which event gives which sound:

    first connection                      READY
    push-to-talk key down / up            TALK_DOWN / TALK_UP
    end of a question (speech then quiet, HEARD (hands-free: a transcript came and the mic
      or a typed one)                            has been quiet for `heard_silence_s`)
    no answer 1.5 s after that            THINKING, every 1.5 s; spoken after `answer_wait_s`
    connection down for 1 s / back        RECONNECTING / BACK; spoken after 3 s down
    camera lost / back                    CAMERA_LOST / CAMERA_BACK, then spoken
    mic digitally silent `silent_mic_s`   spoken
    the session ends with an error        ERROR, then the reason spoken (even over an answer)

Sounds go to the answer's speaker sink, so they are in the echo canceller's reference and never
reach the model as the user's speech, and into the recording as `cue` events. None plays while
an answer does (state ANSWERING or audio queued): a sound that cannot play yet waits its turn
in `_pending` (at most 6, the oldest dropped) until the speaker has been quiet for QUIET_GAP_S,
and is dropped when it has gone stale or a newer sound makes it pointless. Status sentences are
rendered by the platform's speech engine on a worker thread (`shelfsight.media.tts`), in the
language of its voice: the user's where the engine has a voice for it, else English (said
once). Loop thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from shelfsight.core.phrases import Catalogue, Phrase, current, language_of, load, phrase
from shelfsight.errors import UserError
from shelfsight.media.camera import CameraStatus
from shelfsight.media.earcons import Earcon, EarconBank, peak_dbfs_for
from shelfsight.media.off_loop import in_daemon_thread
from shelfsight.media.speaker import SpeakerSink
from shelfsight.media.tts import Engine, StatusVoice, find_engine, voice_for
from shelfsight.session.events import (
    MOMENT_STALE_S,
    NEWS_STALE_S,
    BudgetCrossed,
    CameraChanged,
    MicLevel,
    SessionEvent,
    Speak,
    StateChanged,
    UserSaid,
    UserTyped,
)
from shelfsight.session.status import Spoken, State, spoken, stopped_sentence
from shelfsight.settings import Settings

log = logging.getLogger(__name__)

TICK_S = 0.02
QUIET_GAP_S = 0.6  # > the speaker's LATE_GAP_S: a cue after an answer is not a gap in it
RECONNECT_CUE_AFTER_S = 1.0  # a planned switch is quicker than this and goes unheard
SPEAK_DOWN_AFTER_S = 3.0
THINK_AFTER_S = 1.5
USER_PAUSE_S = 0.3  # hands-free: this long without speech before a cue may start
THINK_EVERY_S = 1.5
SILENT_DBFS = -80.0  # below any real mic's noise floor: muted, or no signal at all
CUE_STALE_S = 1.0  # a cue about a moment (heard, thinking, a key) is soon no longer news
GUIDE_WORDS_STALE_S = MOMENT_STALE_S
NEWS = frozenset(
    {Earcon.READY, Earcon.RECONNECTING, Earcon.BACK, Earcon.CAMERA_LOST, Earcon.CAMERA_BACK}
)
# What a newer sound makes pointless if it has not played yet.
SUPERSEDES = {
    Earcon.BACK: Earcon.RECONNECTING,
    Earcon.CAMERA_BACK: Earcon.CAMERA_LOST,
    Spoken.CONNECTED_AGAIN: Spoken.NO_CONNECTION,
    Spoken.CAMERA_BACK: Spoken.CAMERA_LOST,
}
URGENT = frozenset(
    {Earcon.TALK_DOWN, Earcon.TALK_UP, Earcon.ERROR}
)  # follow a clear(), not a drain
DOWN = (State.CONNECTING, State.RECONNECTING)


class Recorder(Protocol):
    def event(self, kind: str, **fields: Any) -> None: ...


@dataclass(frozen=True)
class AnnouncerOptions:
    cues: bool = True
    speak: bool = True
    peak_dbfs: float = -20.0
    push_to_talk: bool = False
    answer_wait_s: float = 20.0
    silent_mic_s: float = 30.0
    heard_silence_s: float = 0.7  # the server's end-of-speech silence (settings.silence_ms)


@dataclass
class _Sound:
    pcm: bytes
    label: dict[str, str]
    expires: float
    urgent: bool = False


@dataclass
class _Watch:
    """Timers and once-only flags, reset as the situation they are about ends."""

    down_since: float | None = None
    cued_down: bool = False
    spoke_down: bool = False
    ever_connected: bool = False
    heard_pending: bool = False
    thinking_since: float | None = None
    next_think: float = 0.0
    t_last_speech: float = float("-inf")  # no speech yet
    t_last_sound: float | None = None
    spoke_silent: bool = False
    # Sentences to render: (text, label, seconds until stale).
    requests: deque[tuple[str, dict[str, str], float]] = field(
        default_factory=lambda: deque(maxlen=4)
    )


class Announcer:
    def __init__(
        self,
        speaker: SpeakerSink,
        recorder: Recorder,
        options: AnnouncerOptions = AnnouncerOptions(),
        voice: StatusVoice | None = None,
        clock: Callable[[], float] = time.monotonic,
        notice: Callable[[str], None] | None = None,
        speech: Catalogue | None = None,
    ) -> None:
        self._speaker, self._recorder, self._options = speaker, recorder, options
        self._notice = notice  # shows the statuses no screen notice already covers
        self._voice = voice if options.speak else None
        self._speech = speech or current()  # the language the voice speaks
        self._bank = EarconBank(options.peak_dbfs) if options.cues else None
        self._clock = clock
        self._state: State | None = None
        self._w = _Watch()
        self._pending: deque[_Sound] = deque(maxlen=6)  # full: the oldest is dropped
        self._quiet_since = clock() - QUIET_GAP_S  # nothing has played yet
        self._ours_playing = False
        self._wake = asyncio.Event()

    @property
    def playing(self) -> bool:
        """What the speaker plays now is one of our sounds, not an answer (none starts while an
        answer is queued, and an answer starting stops them)."""
        return self._ours_playing and self._speaker.pending_s > 0

    # -- what the session tells it ------------------------------------------------------------

    def on_event(self, event: SessionEvent) -> None:
        """An observer of the session (see shelfsight.session.events)."""
        match event:
            case StateChanged(state=state):
                self.state(state)
            case MicLevel(dbfs=dbfs, speaking=speaking):
                self.mic_level(dbfs, speaking)
            case UserSaid(text=text):
                self.user_said(text)
            case UserTyped(text=text):
                self.user_typed(text)
            case CameraChanged(status=status):
                self.camera(status)
            case Speak(phrase=words, stale_s=stale_s):
                self.say(words, stale_s=stale_s)
            case BudgetCrossed():
                self.say(event.sentence(), stale_s=NEWS_STALE_S)

    def state(self, state: State) -> None:
        old, self._state = self._state, state
        if state == old:
            return
        now, w = self._clock(), self._w
        if state == State.ANSWERING and self._ours_playing:
            # Only our sounds are queued (none starts while anything else is): the answer
            # must not wait behind a cue or a sentence, so they stop here; from now on what
            # plays is the answer (`playing` is False: barge-in stops it).
            self._ours_playing = False
            if self._speaker.pending_s > 0:
                self._speaker.clear()
        if state in DOWN and w.down_since is None:
            w.down_since = now
        elif state not in DOWN and old in DOWN:
            self._connected(first=not w.ever_connected)
        if state == State.USER_TALKING and self._options.push_to_talk:
            self._cue(Earcon.TALK_DOWN)
        elif state == State.THINKING and old == State.USER_TALKING and self._options.push_to_talk:
            self._cue(Earcon.TALK_UP)
            self._start_thinking(now)
        if state in (State.ANSWERING, State.LISTENING, *DOWN):
            w.heard_pending, w.thinking_since = False, None

    def _connected(self, *, first: bool) -> None:
        w = self._w
        if first:
            self._cue(Earcon.READY)
        elif w.cued_down:
            self._cue(Earcon.BACK)
        if w.spoke_down and not first:
            self._say(Spoken.CONNECTED_AGAIN)
        w.ever_connected, w.down_since, w.cued_down, w.spoke_down = True, None, False, False

    def mic_level(self, dbfs: float, speaking: bool) -> None:
        now, w = self._clock(), self._w
        if speaking:
            w.t_last_speech = now
        if dbfs > SILENT_DBFS or w.t_last_sound is None:
            w.t_last_sound, w.spoke_silent = now, False

    def user_said(self, text: str) -> None:
        if not self._options.push_to_talk and self._state != State.ANSWERING:
            self._w.heard_pending = True

    def user_typed(self, text: str) -> None:
        self._cue(Earcon.HEARD)
        self._start_thinking(self._clock())

    def camera(self, status: CameraStatus) -> None:
        self._cue(Earcon.CAMERA_LOST if status.stalled else Earcon.CAMERA_BACK)
        self._say(Spoken.CAMERA_LOST if status.stalled else Spoken.CAMERA_BACK)

    async def last_words(self, message: str, *, max_wait_s: float = 8.0) -> None:
        """The run ends with `message`: the error cue and the reason, over anything playing,
        heard before the devices close (at most `max_wait_s`)."""
        with contextlib.suppress(UserError, TimeoutError):  # an unplugged speaker: nothing to do
            async with asyncio.timeout(max_wait_s):
                self._speaker.clear()
                self._pending.clear()
                if self._bank is not None:
                    self._play(_Sound(self._bank.pcm(Earcon.ERROR), {"cue": Earcon.ERROR}, 0.0))
                if self._voice is not None:
                    text = stopped_sentence(message).text(self._speech)
                    if pcm := await in_daemon_thread(partial(self._voice.render, text), "speech"):
                        label = {"cue": "status", "status": "stopped", "text": text}
                        self._play(_Sound(pcm, label, 0.0))
                await self._speaker.drained()

    # -- the clock ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Every TICK_S: timers, and deferred sounds once the speaker is free. Status sentences
        are rendered here, one at a time, on a worker thread."""
        while True:
            while self._w.requests and self._voice is not None:
                text, label, stale_s = self._w.requests.popleft()
                if pcm := await in_daemon_thread(partial(self._voice.render, text), "speech"):
                    self._offer(_Sound(pcm, label, self._clock() + stale_s))
            self._tick(self._clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._wake.wait()
            self._wake.clear()

    def _tick(self, now: float) -> None:
        w = self._w
        if w.down_since is not None and self._state in DOWN:
            down_s = now - w.down_since
            if w.ever_connected and not w.cued_down and down_s >= RECONNECT_CUE_AFTER_S:
                w.cued_down = True
                self._cue(Earcon.RECONNECTING)
            if not w.spoke_down and down_s >= SPEAK_DOWN_AFTER_S:
                w.spoke_down = True
                self._say(Spoken.NO_CONNECTION if w.ever_connected else Spoken.NOT_CONNECTED)
        if w.heard_pending and now - w.t_last_speech >= self._options.heard_silence_s:
            w.heard_pending = False
            self._cue(Earcon.HEARD)
            self._start_thinking(now)
        if w.thinking_since is not None and self._state != State.ANSWERING:
            if now >= w.next_think:
                w.next_think += THINK_EVERY_S
                self._cue(Earcon.THINKING)
            if now - w.thinking_since >= self._options.answer_wait_s:
                w.thinking_since = None
                self._say(Spoken.NO_ANSWER, show=True)
        silent_s = now - w.t_last_sound if w.t_last_sound is not None else 0.0
        if w.ever_connected and not w.spoke_silent and silent_s >= self._options.silent_mic_s:
            w.spoke_silent = True
            self._say(Spoken.MIC_SILENT, show=True)
        self._flush(now)

    def _start_thinking(self, now: float) -> None:
        self._w.thinking_since, self._w.next_think = now, now + THINK_AFTER_S

    # -- playing ------------------------------------------------------------------------------

    def _cue(self, cue: Earcon) -> None:
        if self._bank is not None:
            stale_s = NEWS_STALE_S if cue in NEWS else CUE_STALE_S
            sound = _Sound(self._bank.pcm(cue), {"cue": cue}, self._clock() + stale_s)
            sound.urgent = cue in URGENT
            self._offer(sound)

    def _say(self, status: Spoken, *, show: bool = False) -> None:
        """Queue the sentence for rendering (the cue alone when speech is off or absent)."""
        words = spoken(status)
        if show and self._notice is not None:
            self._notice(words.text())
        if self._voice is not None:
            text = words.text(self._speech)
            label = {"cue": "status", "status": status, "text": text}
            self._w.requests.append((text, label, NEWS_STALE_S))
            self._wake.set()

    def say(self, words: Phrase | str, *, stale_s: float = GUIDE_WORDS_STALE_S) -> bool:
        """Speak a sentence of the moment (the guide's "a bit lower"): like a status, but
        dropped once `stale_s` old; a phrase in the voice's language. False when there is no
        voice to say it."""
        if self._voice is None:
            return False
        text = words if isinstance(words, str) else words.text(self._speech)
        self._w.requests.append((text, {"cue": "words", "text": text}, stale_s))
        self._wake.set()
        return True

    def _offer(self, sound: _Sound) -> None:
        """Play now if the speaker is free and nothing waits; else wait in turn."""
        key = sound.label.get("status") or sound.label["cue"]
        if old := SUPERSEDES.get(key):  # type: ignore[call-overload]
            kept = [s for s in self._pending if (s.label.get("status") or s.label["cue"]) != old]
            self._pending = deque(kept, maxlen=self._pending.maxlen)
        if not self._pending and self._free(self._clock(), urgent=sound.urgent):
            self._play(sound)
        else:
            self._pending.append(sound)

    def _free(self, now: float, *, urgent: bool) -> bool:
        """No answer playing or queued, and (unless urgent) the speaker quiet for a moment and,
        hands-free, the user not talking: their speech would stop the sound at once (barge-in
        clears whatever plays), so it waits until they pause."""
        if self._state == State.ANSWERING or self._speaker.pending_s > 0:
            return False
        if urgent:
            return True
        talking = not self._options.push_to_talk and now - self._w.t_last_speech < USER_PAUSE_S
        return not talking and now - self._quiet_since >= QUIET_GAP_S

    def _flush(self, now: float) -> None:
        if self._speaker.pending_s > 0 or self._state == State.ANSWERING:
            self._quiet_since = now
        elif self._ours_playing:
            # Our own sound has drained: let the speaker forget it ran dry, so an answer that
            # follows is not counted as a gap in playback (its underrun count is about answers).
            self._ours_playing = False
            self._speaker.clear()
        while self._pending and self._pending[0].expires < now:
            self._pending.popleft()
        if self._pending and self._free(now, urgent=self._pending[0].urgent):
            self._play(self._pending.popleft())

    def _play(self, sound: _Sound) -> None:
        self._speaker.play(sound.pcm)
        self._speaker.answer_ended()  # a sound of ours comes whole, in one piece
        self._ours_playing = True
        self._quiet_since = self._clock()
        self._recorder.event("cue", **sound.label)


def make_announcer(
    settings: Settings,
    speaker: SpeakerSink,
    recorder: Recorder,
    notice: Callable[[str], None],
    find: Callable[[], Engine | None] = find_engine,
) -> Announcer | None:
    """The cues these settings ask for (None when both cues and spoken status are off); says
    once, through `notice`, when spoken status is on but there is no speech engine (`find`
    looks for it), or no voice for the user's language: then it speaks English, and says so
    aloud too."""
    if not settings.cues and not settings.speak_status:
        return None
    voice, speech, no_voice = None, current(), None
    if settings.speak_status:
        if (engine := find()) is None:
            notice(phrase("no_speech_engine"))
        else:
            voice, speech, no_voice = status_voice(engine, settings.language)
            if no_voice is not None:
                notice(no_voice.text())
    options = AnnouncerOptions(
        cues=settings.cues,
        speak=settings.speak_status,
        peak_dbfs=peak_dbfs_for(settings.cue_volume),
        push_to_talk=settings.mode == "ptt",
        answer_wait_s=settings.answer_wait_s,
        silent_mic_s=settings.silent_mic_s,
        heard_silence_s=settings.silence_ms / 1000,
    )
    announcer = Announcer(speaker, recorder, options, voice, notice=notice, speech=speech)
    if no_voice is not None:
        announcer.say(no_voice, stale_s=NEWS_STALE_S)
    return announcer


def status_voice(engine: Engine, tag: str) -> tuple[StatusVoice, Catalogue, Phrase | None]:
    """The engine's voice for the language of `tag` and the catalogue it speaks; where it has
    none, its English voice and English, with the sentence that says so."""
    code = language_of(tag)
    name = voice_for(engine, tag) if code else None
    if name is not None:
        return StatusVoice(engine, name), current(), None
    if code in (None, "en"):
        return StatusVoice(engine), load("en"), None
    return (
        StatusVoice(engine),
        load("en"),
        Phrase("no_voice", {"language": current().name, "tag": tag}),
    )
