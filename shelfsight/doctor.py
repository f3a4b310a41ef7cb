"""`shelfsight doctor`: is everything a run needs in place? One line per check, with a fix.

Checks, in order: the API key is set (never shown), the Live API endpoint answers (a real
connect with the run's settings, closed at once, sending no audio), the camera opens and
gives a frame, the microphone hears something, the speaker plays a short tone. A check that
fails does not stop the others, so one run shows everything that needs fixing. The key line
is printed after the endpoint has been asked, because only the endpoint can tell that a key
is wrong.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Literal, TextIO

import numpy as np
from google.genai import errors
from websockets.exceptions import InvalidStatus, WebSocketException

from shelfsight.errors import UserError
from shelfsight.live.setup import Endpoint, live_config, make_client
from shelfsight.media.camera import open_camera, resolve_camera_spec
from shelfsight.media.open_audio import open_mic, open_speaker
from shelfsight.media.pcm import SPEAKER_RATE_HZ, rms_dbfs
from shelfsight.session.prompt import load_system_prompt
from shelfsight.settings import Settings, api_key_from_env

HEARD_DBFS = -90.0  # quieter than this is a muted, blocked or disconnected microphone
TONE_S, TONE_HZ, TONE_DBFS = 0.3, 660.0, -20.0
KEY_FIX = "check GEMINI_API_KEY: copy the whole key from https://aistudio.google.com/apikey"

Status = Literal["ok", "FAIL", "skip"]


@dataclass(frozen=True)
class CheckResult:
    """One line of the report; `fix` says what to do when `status` is FAIL."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<5} {self.name:<11} {self.detail}"
        return f"{text} -> {self.fix}" if self.fix else text


def run_doctor(
    settings: Settings,
    *,
    endpoint: Endpoint | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    listen_s: float = 1.0,
    connect_timeout_s: float = 10.0,
) -> int:
    """Run every check, print one line each to `out` (stdout); 0 if none failed, else 1.

    `environ` replaces the process environment and `.env` for the key (tests); `endpoint`
    is where the Live API is (a stand-in in tests, Google's by default).
    """
    return asyncio.run(
        doctor(
            settings,
            endpoint=endpoint,
            environ=environ,
            out=out,
            listen_s=listen_s,
            connect_timeout_s=connect_timeout_s,
        )
    )


async def doctor(
    settings: Settings,
    *,
    endpoint: Endpoint | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    listen_s: float = 1.0,
    connect_timeout_s: float = 10.0,
) -> int:
    """`run_doctor` for callers already on an event loop."""
    stream = out or sys.stdout
    failed = False
    where = endpoint or Endpoint()
    async for result in checks(settings, where, environ, listen_s, connect_timeout_s):
        print(result.line(), file=stream, flush=True)
        failed = failed or result.status == "FAIL"
    return 1 if failed else 0


async def checks(
    settings: Settings,
    endpoint: Endpoint,
    environ: Mapping[str, str] | None,
    listen_s: float,
    connect_timeout_s: float,
) -> AsyncIterator[CheckResult]:
    """The six checks' results, in order, each as soon as it is known."""
    try:
        key: str | None = api_key_from_env(None if environ is None else dict(environ))
    except UserError as exc:
        key = None
        detail = "malformed" if "malformed" in str(exc) else "not set"
        yield CheckResult("API key", "FAIL", detail, str(exc))
        yield CheckResult("endpoint", "skip", "not tried without a key")
    if key is not None:
        reached, key_rejected = await check_endpoint(settings, key, endpoint, connect_timeout_s)
        if key_rejected:
            yield CheckResult("API key", "FAIL", "set, but the Live API rejected it", KEY_FIX)
        else:
            yield CheckResult("API key", "ok", "set")
        yield reached
    yield await check_camera(settings.camera)
    yield await check_mic(settings.mic, listen_s)
    yield await check_speaker(settings.speaker)
    yield await check_speech(settings.speak_status)


# ---- endpoint ---------------------------------------------------------------------------------


async def check_endpoint(
    settings: Settings, key: str, endpoint: Endpoint, timeout_s: float
) -> tuple[CheckResult, bool]:
    """Open a Live session with the run's model and setup, then close it; (result, key bad)."""
    try:
        prompt = load_system_prompt(settings.prompt_file)
    except OSError as exc:
        detail = f"cannot read the prompt file {settings.prompt_file}: {exc.strerror}"
        return CheckResult("endpoint", "FAIL", detail, "fix --prompt-file or remove it"), False
    t0 = time.monotonic()
    try:
        config = live_config(settings, prompt, None)
        client = make_client(key, endpoint)
        async with asyncio.timeout(timeout_s):
            async with client.aio.live.connect(model=settings.model, config=config):
                pass
    except TimeoutError:
        fix = "check the internet connection (and GOOGLE_GEMINI_BASE_URL if set)"
        return CheckResult("endpoint", "FAIL", f"no answer within {timeout_s:.0f} s", fix), False
    except (errors.APIError, InvalidStatus) as exc:
        return refusal(exc, settings.model)
    except (OSError, WebSocketException, UserError) as exc:
        return CheckResult("endpoint", "FAIL", network_problem(exc), network_fix(exc)), False
    took = time.monotonic() - t0
    return CheckResult("endpoint", "ok", f"Live API answered in {took:.1f} s"), False


def refusal(exc: errors.APIError | InvalidStatus, model: str) -> tuple[CheckResult, bool]:
    """The endpoint answered with a refusal: a bad key, an unknown model, or something else."""
    if isinstance(exc, InvalidStatus):
        code, reason = exc.response.status_code, f"HTTP {exc.response.status_code}"
    else:
        code, reason = exc.code, str(exc.details or exc.message or "")
    answered = CheckResult("endpoint", "ok", "reachable; it refused the key (see above)")
    if code in (401, 403) or (code == 1007 and "api key" in reason.lower()):
        return answered, True
    if code == 1008 or code == 404:
        fix = "choose a Live model with --model or SHELFSIGHT_MODEL"
        detail = f"model {model!r} is not available for the Live API ({reason[:120]})"
        return CheckResult("endpoint", "FAIL", detail, fix), False
    fix = "try again in a minute; if it persists, check https://aistudio.google.com/status"
    return CheckResult(
        "endpoint", "FAIL", f"refused the session ({code}: {reason[:120]})", fix
    ), False


def network_problem(exc: BaseException) -> str:
    """What went wrong reaching the endpoint, in one phrase (also `doctor --live`'s)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, UserError):
        return str(exc)
    return f"cannot connect ({exc.__class__.__name__}: {exc})"


def network_fix(exc: BaseException) -> str:
    """What to do about `network_problem(exc)`."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "behind a proxy that inspects TLS, point SSL_CERT_FILE at its CA certificate"
    if isinstance(exc, UserError):
        return "fix the setting named above"
    return "check the internet connection (and GOOGLE_GEMINI_BASE_URL if set)"


# ---- devices ----------------------------------------------------------------------------------


async def check_camera(spec: str, timeout_s: float = 3.0) -> CheckResult:
    """Open the camera as a run would and wait for one frame."""
    if spec.strip().lower() == "none":
        return CheckResult("camera", "skip", "none chosen (--camera none)")
    camera = None
    try:
        camera = open_camera(resolve_camera_spec(spec))
        if camera is None:
            return CheckResult("camera", "skip", "none chosen")
        t0 = time.monotonic()
        await asyncio.to_thread(camera.start)
        frame = await camera.frame(timeout_s=timeout_s)
    except UserError as exc:
        return CheckResult("camera", "FAIL", "cannot open it", str(exc))
    finally:
        if camera is not None:
            camera.close()
    if frame is None:
        fix = "close other apps using it; for a phone stream, check the app is streaming"
        return CheckResult("camera", "FAIL", f"{camera.name}: opened, but no frame in 3 s", fix)
    height, width = frame.image.shape[:2]
    took = time.monotonic() - t0
    return CheckResult("camera", "ok", f"{camera.name}: {width}x{height} frame in {took:.1f} s")


async def check_mic(spec: str, listen_s: float) -> CheckResult:
    """Listen for `listen_s` and report the loudest 20 ms."""
    if spec.strip().lower() == "none":
        return CheckResult("microphone", "skip", "none chosen (--mic none)")
    try:
        mic = open_mic(spec)
        await mic.start()
    except UserError as exc:
        return CheckResult("microphone", "FAIL", "cannot open it", str(exc))
    levels: list[float] = []
    try:
        async with asyncio.timeout(listen_s + 2.0):
            while len(levels) * 0.02 < listen_s and (chunk := await mic.read()) is not None:
                levels.append(rms_dbfs(chunk.pcm))
    except TimeoutError:
        fix = "another app may hold the device; pick another with --mic"
        return CheckResult("microphone", "FAIL", f"{mic.name}: no sound arrived", fix)
    finally:
        mic.close()
    peak = max(levels, default=-120.0)
    heard = f"{mic.name}: loudest {peak:.0f} dBFS over {len(levels) * 0.02:.1f} s"
    if peak < HEARD_DBFS:
        fix = (
            "unmute it or raise its input level; on macOS allow Microphone access for this "
            "terminal (System Settings > Privacy & Security > Microphone)"
        )
        return CheckResult("microphone", "FAIL", f"{heard}: only silence", fix)
    return CheckResult("microphone", "ok", heard)


async def check_speaker(spec: str, timeout_s: float = 3.0) -> CheckResult:
    """Play a short tone and wait until the device (or WAV clock) has taken all of it."""
    tone = _tone()
    played = [0]  # non-silent samples played; written by the audio thread

    def on_played(pcm24k: bytes, t_monotonic: float) -> None:
        played[0] += int(np.count_nonzero(np.frombuffer(pcm24k, "<i2")))

    try:
        speaker = open_speaker(spec, on_played=on_played)
        speaker.start()
    except UserError as exc:
        return CheckResult("speaker", "FAIL", "cannot open it", str(exc))
    try:
        speaker.play(tone)
        async with asyncio.timeout(timeout_s):
            await speaker.drained()
    except TimeoutError:
        pass
    finally:
        speaker.close()
    if played[0] < len(tone) // 4:  # half of the tone's samples
        fix = "another app may hold the device; pick another with --speaker"
        return CheckResult("speaker", "FAIL", f"{speaker.name}: the tone did not play", fix)
    return CheckResult("speaker", "ok", f"{speaker.name}: played a {TONE_S:.1f} s tone")


def _tone() -> bytes:
    t = np.arange(int(TONE_S * SPEAKER_RATE_HZ)) / SPEAKER_RATE_HZ
    amplitude = 32768 * 10 ** (TONE_DBFS / 20) * np.sqrt(2)
    fade = np.clip(np.minimum(t, TONE_S - t) / 0.01, 0.0, 1.0)  # no clicks
    return (np.sin(2 * np.pi * TONE_HZ * t) * fade * amplitude).astype("<i2").tobytes()


async def check_speech(speak_status: bool) -> CheckResult:
    """Spoken status needs a speech engine that can write a file (shelfsight.media.tts)."""
    from shelfsight.media.tts import INSTALL_HINT, StatusVoice, find_engine

    if not speak_status:
        return CheckResult("speech", "skip", "spoken status is off (--speak-status off)")
    engine = find_engine()
    if engine is None:
        return CheckResult("speech", "skip", "no speech engine: sound cues only", INSTALL_HINT)
    t0 = time.monotonic()
    pcm = await asyncio.to_thread(StatusVoice(engine).render, "Ready.")
    if not pcm:
        return CheckResult("speech", "FAIL", f"{engine.name} wrote no audio", INSTALL_HINT)
    took = time.monotonic() - t0
    return CheckResult("speech", "ok", f"{engine.name}: spoke a status sentence in {took:.1f} s")
