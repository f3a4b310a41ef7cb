"""Link trust: no false alarm on a quiet healthy link, a dead one found when something is owed.

The product's LiveLink (real google-genai client, real TLS) against the stand-in, on one loop.
"macos" is the link without an acknowledgement probe (what it meets where the kernel cannot
say); "linux" reads TCP_INFO.

1. Healthy sessions of `--minutes` (10 by default), all at once: pongs late (25 s) or never,
   linux or macos, hands-free (the mic streams all along) or push-to-talk (nothing sent
   between questions), a question every 40 s. Printed: connections, alarms (reconnects the
   user is told of), audio re-sent, questions answered. Target: 1 connection, 0 alarms.
2. How fast a dead link is found, `--runs` times each (median and max), through a relay that
   stalls both ways with tiny socket buffers (so acknowledgements stop as on a dead radio
   link): a push-to-talk key pressed after the link died while idle (target 3 s), and a
   stall while the hands-free mic streams (target 3 s, required 5 s).

    python -m bench.link_trust [--minutes 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from bench._common import table
from shelfsight.live.ack_probe import LinuxTcpInfo
from shelfsight.live.link import Connected, Reconnecting, TurnComplete
from shelfsight.settings import DEFAULT_MODEL, Settings
from shelfsight.standin import StandIn, StandInConfig
from tests.conftest import TEST_KEY
from tests.support.link_run import LinkRun, hands_free, noise, push_to_talk, question
from tests.support.relay import RelayThread

PROBES: dict[str, Any] = {"linux": LinuxTcpInfo, "macos": lambda: None}
ASK_EVERY_S = 40.0


def _config(**kwargs: Any) -> StandInConfig:
    return StandInConfig(
        api_keys=frozenset({TEST_KEY}), models=frozenset({DEFAULT_MODEL}), **kwargs
    )


async def healthy(minutes: float) -> list[list[str]]:
    total_s = minutes * 60
    asks = [t for t in range(10, int(total_s) - 10, int(ASK_EVERY_S))]
    rows = [["pongs", "platform", "mode", "connections", "alarms", "re-sent", "answered"]]
    async with (
        StandIn(_config(pongs="never", keep_frames=False)) as never,
        StandIn(_config(pongs="late", pong_delay_s=25.0, keep_frames=False)) as late,
    ):
        runs: list[tuple[list[str], LinkRun]] = []
        tasks: list[asyncio.Task[Any]] = []
        talkers = []
        for server, pongs in ((never, "never"), (late, "late")):
            for platform, probe in PROBES.items():
                for mode in ("handsfree", "ptt"):
                    run = LinkRun(server, settings=Settings(mode=mode), ack_probe=probe)
                    runs.append(([pongs, platform, mode], run))
                    tasks += [
                        asyncio.create_task(run.link.run()),
                        asyncio.create_task(run.collect()),
                    ]
                    talk = hands_free if mode == "handsfree" else push_to_talk
                    talkers.append(asyncio.create_task(talk(run, asks, total_s)))
        await asyncio.gather(*talkers)
        await asyncio.sleep(3.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for labels, run in runs:
        stats = run.link.stats()
        answered = f"{len(run.of(TurnComplete))}/{len(asks)}"
        re_sent = f"{stats.audio_replayed_s:.1f} s"
        rows.append(
            [*labels, str(stats.connections), str(len(run.of(Reconnecting))), re_sent, answered]
        )
    return rows


async def found_after_press(platform: str) -> float:
    """Push-to-talk: the link dies while idle; seconds from the key press to the verdict."""
    async with StandIn(_config()) as server:
        with RelayThread(server.port, sock_buf=1024) as relay:
            run = LinkRun(
                server, port=relay.port, settings=Settings(mode="ptt"), ack_probe=PROBES[platform]
            )
            tasks = [asyncio.create_task(run.link.run()), asyncio.create_task(run.collect())]
            try:
                await run.until(lambda: bool(run.of(Connected)))
                relay.stall()
                await asyncio.sleep(6.0)
                t_press = time.monotonic()
                asking = asyncio.create_task(run.ask(question()))
                await run.until(lambda: bool(run.of(Reconnecting)), 15.0)
                asking.cancel()
                return time.monotonic() - t_press
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)


async def found_while_streaming(platform: str) -> float:
    """Hands-free: the link stalls while the mic streams; seconds from the stall to the verdict."""
    async with StandIn(_config()) as server:
        with RelayThread(server.port, sock_buf=1024) as relay:
            run = LinkRun(server, port=relay.port, ack_probe=PROBES[platform])
            tasks = [asyncio.create_task(run.link.run()), asyncio.create_task(run.collect())]
            tasks.append(asyncio.create_task(run.stream(noise(30.0, seed=1))))
            try:
                await run.until(lambda: bool(run.of(Connected)))
                await asyncio.sleep(3.0)
                t_stall = time.monotonic()
                relay.stall()
                await run.until(lambda: bool(run.of(Reconnecting)), 15.0)
                return time.monotonic() - t_stall
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)


async def detection(runs: int) -> list[list[str]]:
    rows = [["dead link found", "platform", "median", "max", "target"]]
    for what, measure, target in (
        ("key pressed after it died idle", found_after_press, "3 s"),
        ("stalled while the mic streams", found_while_streaming, "3 s (5 s required)"),
    ):
        for platform in PROBES:
            times = [await measure(platform) for _ in range(runs)]
            median, worst = statistics.median(times), max(times)
            rows.append([what, platform, f"{median:.2f} s", f"{worst:.2f} s", target])
    return rows


async def main(minutes: float, runs: int) -> None:
    table("How fast a dead link is found (relay stalled both ways)", await detection(runs))
    print(
        f"\n{minutes:g}-minute healthy sessions, 8 at once, a question every {ASK_EVERY_S:.0f} s:"
    )
    table("Healthy sessions (target: 1 connection, 0 alarms)", await healthy(minutes))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.minutes, args.runs))
