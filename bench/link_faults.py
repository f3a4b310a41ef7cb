"""Link faults: a stalled or slow phone link between shelfsight's LiveLink and the stand-in.

The product's LiveLink, with the product's SDK client and setup (`shelfsight.live.setup`) and its
default timeouts, talks TLS to the stand-in through the loopback fault relay
(tests/support/relay.py). A mic task feeds it 20 ms chunks in real time, each one unique (a faint
noise floor), so every chunk the stand-in received can be placed in what the mic produced.

Printed, per stall length (5, 10, 15, 30 s, both directions stalled while the mic streams):
  detection   stall start -> the link reports the connection dead (target < 5 s)
  reconnect   link back -> first audio on the new connection (target < 5 s)
  delivered   share of the mic audio produced during the run that reached the stand-in
              (target 100 % up to 15 s; beyond, what was lost is what the link reported)
And the answer lag at 256 kbit/s (upload only, and both ways): end of the question in the mic
timeline -> first answer audio out of the link, against an unlimited link; with the websocket's
permessage-deflate (the stand-in negotiates it: store-noise audio then just fits 256 kbit/s) and
without it (341 kbit/s of audio: the link must go slow, 8 kHz and no pictures, to keep up).

    python -m bench.link_faults [--stalls 5 10 15 30] [--relay-buffer 8192]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from bench._common import table
from shelfsight.live.link import AnswerAudio, AudioLost, Connected, LiveLink, Reconnecting
from shelfsight.live.setup import Endpoint, live_config, make_client
from shelfsight.media.pcm import rms_dbfs
from shelfsight.media.wav import load_mic_pcm
from shelfsight.session.prompt import load_system_prompt
from shelfsight.settings import DEFAULT_MODEL, Settings
from shelfsight.standin import StandIn, StandInConfig, StandInThread
from shelfsight.standin.protocol import rate_from_mime
from shelfsight.standin.records import ConnectionRecord
from tests.conftest import ASSETS
from tests.support.relay import RelayThread

KEY = "bench-key-not-secret"
CHUNK = 640


@dataclass
class Run:
    """One LiveLink session through the relay, with what its events said, timed."""

    server: StandInThread
    relay: RelayThread
    produced: list[bytes] = field(default_factory=list)
    events: list[tuple[float, object]] = field(default_factory=list)

    def first(self, kind: type, after: float = 0.0) -> float | None:
        return next((t for t, e in self.events if isinstance(e, kind) and t >= after), None)


@contextlib.contextmanager
def standin_and_relay(relay_buffer: int) -> Iterator[tuple[StandInThread, RelayThread]]:
    config = StandInConfig(api_keys=frozenset({KEY}), models=frozenset({DEFAULT_MODEL}))
    with StandIn.start_in_thread(config) as server:
        with RelayThread(server.server.port, sock_buf=relay_buffer) as relay:
            yield server, relay


def make_link(server: StandInThread, relay: RelayThread, deflate: bool = True) -> LiveLink:
    ssl_context = server.server.client_ssl_context()
    endpoint = Endpoint(base_url=f"https://127.0.0.1:{relay.port}", ssl_context=ssl_context)
    settings = Settings()
    prompt = load_system_prompt(None)
    return LiveLink(
        connect=make_client(
            KEY, endpoint, None if deflate else {"compression": None}
        ).aio.live.connect,
        model=settings.model,
        config_for=lambda handle: live_config(settings, prompt, handle),
    )


async def drive(run: Run, link: LiveLink, mic: bytes, script: Callable[[float], None]) -> None:
    """Stream `mic` in real time (then stop); `script(t)` runs every 20 ms with the run time."""

    connected = asyncio.Event()

    async def collect() -> None:
        async for event in link.events():
            run.events.append((time.monotonic(), event))
            if isinstance(event, Connected):
                connected.set()

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(link.run()), tg.create_task(collect())]
        await connected.wait()
        t0 = time.monotonic()
        for i in range(0, len(mic) - CHUNK + 1, CHUNK):
            chunk = mic[i : i + CHUNK]
            # Speech as the product's detector would flag it: the question, not the room.
            link.send_audio(chunk, speech=rms_dbfs(chunk) > SPEECH_DBFS)
            run.produced.append(chunk)
            script(time.monotonic() - t0)
            await asyncio.sleep(max(0.0, t0 + (i // CHUNK + 1) * 0.02 - time.monotonic()))
        deadline = time.monotonic() + 20
        while link.audio_backlog_s > 0.04 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # a figure, polled: the link has no "flushed" event
        await asyncio.sleep(1.0)
        for task in tasks:
            task.cancel()


SPEECH_DBFS = -40.0  # the room is -50 dBFS; the bundled question's words are far louder


def noise(seconds: float, seed: int) -> bytes:
    """Room noise at about -50 dBFS: every chunk unique, and as hard to compress as a store."""
    samples = np.random.default_rng(seed).normal(0, 100, int(seconds * 16000))
    return samples.astype("<i2").tobytes()


def delivered_share(run: Run) -> float:
    got: set[bytes] = set()
    slow_s = 0.0
    for conn in run.server.server.connections:
        for event in conn.received("audio"):
            if rate_from_mime(event.mime_type) != 16000:
                slow_s += len(event.data) / (2 * rate_from_mime(event.mime_type))
                continue
            data = event.data
            got.update(data[i : i + CHUNK] for i in range(0, len(data) - CHUNK + 1, CHUNK))
    produced = set(run.produced)
    return min(1.0, (len(produced & got) * 0.02 + slow_s) / (len(produced) * 0.02))


def stall_run(stall_s: float, relay_buffer: int) -> list[str]:
    lead_s, after_s = 3.0, 8.0
    mic = noise(lead_s + stall_s + after_s, seed=int(stall_s))
    with standin_and_relay(relay_buffer) as (server, relay):
        run = Run(server, relay)
        marks: dict[str, float] = {}

        def script(t: float) -> None:
            if "stall" not in marks and t >= lead_s:
                relay.stall()
                marks["stall"] = time.monotonic()
            elif "resume" not in marks and t >= lead_s + stall_s:
                relay.resume()
                marks["resume"] = time.monotonic()

        asyncio.run(drive(run, make_link(server, relay), mic, script))
        t_dead = run.first(Reconnecting, marks["stall"])
        back = first_audio_after(server.server.connections, marks["resume"])
        lost = [e for _, e in run.events if isinstance(e, AudioLost)]
        share = delivered_share(run)
    detection = f"{t_dead - marks['stall']:.1f} s" if t_dead else "never"
    reconnect = f"{back - marks['resume']:.2f} s" if back else "never"
    lost_s = f"{lost[-1].total_s:.1f} s" if lost else "0"
    return [f"{stall_s:.0f} s", detection, reconnect, f"{share * 100:.1f} %", lost_s]


def first_audio_after(conns: list[ConnectionRecord], t: float) -> float | None:
    times = [e.t_monotonic for c in conns[1:] for e in c.received("audio")]
    later = [x for x in times if x >= t]
    return min(later) if later else None


def lag_run(rate_bps: float | None, direction: str, relay_buffer: int, deflate: bool) -> list[str]:
    question = load_mic_pcm(ASSETS / "question.wav")
    mic = noise(4.0, 1) + question + noise(6.0, 2)
    lags = []
    with standin_and_relay(relay_buffer) as (server, relay):
        if rate_bps:
            relay.set(direction, rate_bps=rate_bps)
        run = Run(server, relay)
        t_start: list[float] = []

        def script(t: float) -> None:
            if not t_start:
                t_start.append(time.monotonic() - t)

        link = make_link(server, relay, deflate)
        asyncio.run(drive(run, link, mic, script))
        t_question_end = t_start[0] + (4.0 * 32000 + len(question)) / 32000
        t_answer = run.first(AnswerAudio, t_question_end)
        lags.append(t_answer - t_question_end if t_answer else float("nan"))
        slow_s = link.stats().slow_link_s
    label = "unlimited" if not rate_bps else f"{rate_bps / 1000:.0f} kbit/s {direction}"
    label += "" if deflate else ", no deflate"
    return [label, f"{lags[0]:.2f} s", f"{slow_s:.0f} s", f"{delivered_share(run) * 100:.1f} %"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stalls", type=float, nargs="*", default=[5, 10, 15, 30])
    parser.add_argument(
        "--relay-buffer",
        type=int,
        default=8192,
        help="relay socket buffers; small, so that a stalled relay stops acknowledging at once "
        "as a dead radio link does (large ones keep ACKing until they fill)",
    )
    args = parser.parse_args()
    rows = [["stall", "detection", "reconnect after link back", "mic audio delivered", "lost"]]
    for stall_s in args.stalls:
        rows.append(stall_run(stall_s, args.relay_buffer))
        print("  ".join(rows[-1]), flush=True)
    table("Stalls while the mic streams (both directions, sockets kept open)", rows)
    lag_rows = [["link", "answer lag", "time slow", "mic audio delivered"]]
    for deflate in (True, False):
        for rate, direction in ((None, "both"), (256_000, "up"), (256_000, "both")):
            lag_rows.append(lag_run(rate, direction, args.relay_buffer, deflate))
        print("  ".join(lag_rows[-1]), flush=True)
    table("Answer lag: end of question -> first answer audio out of the link", lag_rows)


if __name__ == "__main__":
    main()
