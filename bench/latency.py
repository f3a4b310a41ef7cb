"""Client-added latency per turn: shelfsight vs the starter script's shape, against the stand-in.

The stand-in runs in its own process and records when each message arrived and left; the
client runs here, on the real pipeline (`shelfsight.app.run_conversation`, with a video file
as camera, a WAV mic and a WAV speaker), with three probes: the mic chunks' capture times,
the speaker's `on_played` times and the client's answer-receive times (see `_probes.py`).
The answer audio is a ramp whose every sample value names its position, so each played
sample is matched to the exact chunk that carried it. Clocks: CLOCK_MONOTONIC, shared.

- mic -> wire: stand-in receive time minus the capture time of the chunk's first sample
  (for a WAV mic chunk k is captured at start + k * chunk length). Target p95 < 30 ms.
- received -> device: stand-in send time of an answer chunk to the time the speaker plays
  its first sample. Target p95 < 50 ms. The stand-in paces answers in real time
  (--speed 1); faster pacing measures the jitter buffer's queue, not the client.
- end of speech -> first answer sample played, split into the client's share and the
  stand-in's own end-of-speech detection (silence_ms) and answer start.

    python -m bench.latency [--turns 6] [--speed 1] [--skip-naive]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import tempfile
from collections import defaultdict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import (
    BENCH_KEY,
    MIC_RATE_HZ,
    Connection,
    MicScript,
    StandInProcess,
    ms3,
    pct,
    question_mic,
    shelf_video,
    table,
)
from bench._naive import run_starter
from bench._probes import Probe, QuietView, probed_parts
from shelfsight.app import run_conversation
from shelfsight.live.setup import Endpoint, live_config, make_client
from shelfsight.media.speaker import WavSpeaker
from shelfsight.session.prompt import load_system_prompt
from shelfsight.settings import Settings

SPEAKER_RATE_HZ = 24000
ANSWER_CHUNK_SAMPLES = 960  # the stand-in's 40 ms answer chunks at 24 kHz
TARGET_MIC_S, TARGET_PLAY_S = 0.030, 0.050

Runner = Callable[[StandInProcess, Probe], Coroutine[Any, Any, None]]


@dataclasses.dataclass
class Result:
    name: str
    mic_chunk_s: float
    mic_to_wire: list[float]
    sent_to_played: list[float]
    first_chunk: list[float]
    received_to_played: list[float]
    received_to_handed: list[float]
    eos: list[dict[str, float]]
    lost_samples: int
    product_latency: list[float]


# ---- the two clients ------------------------------------------------------------------------


def shelfsight_runner(mic: MicScript, video: Path, work: Path) -> Runner:
    async def run(standin: StandInProcess, probe: Probe) -> None:
        settings = dataclasses.replace(
            Settings(), camera=str(video), mic=str(mic.path), speaker=str(work / "ours.wav")
        )
        endpoint = Endpoint(standin.base_url, standin.ssl_context())
        async with probed_parts(probe, settings, BENCH_KEY, endpoint) as parts:
            await run_conversation(settings, BENCH_KEY, QuietView(probe), endpoint, **parts)

    return run


def starter_runner(mic: MicScript, video: Path, work: Path, frames: str) -> Runner:
    async def run(standin: StandInProcess, probe: Probe) -> None:
        settings = Settings()
        speaker = WavSpeaker(work / f"naive-{frames}.wav", on_played=probe.on_played)
        speaker.start()
        try:
            starter = await run_starter(
                client=make_client(BENCH_KEY, Endpoint(standin.base_url, standin.ssl_context())),
                model=settings.model,
                config=live_config(settings, load_system_prompt(None), None),
                mic_wav=mic.path,
                video=video,
                speaker=speaker,
                frames=frames,
                mic_hook=lambda t, pcm: probe.on_mic(t, len(pcm) // 2),
            )
            probe.flushed_bytes = starter.flushed_bytes
        finally:
            speaker.close()

    return run


# ---- analysis -------------------------------------------------------------------------------


def played_chunk_starts(probe: Probe) -> dict[int, list[float]]:
    """Answer chunk index -> sorted times its first sample was played."""
    starts: dict[int, list[float]] = defaultdict(list)
    for t_block, block in probe.played_blocks():
        a = np.frombuffer(block, "<i2").astype(np.int32)
        for i in np.nonzero((a > 0) & ((a - 1) % ANSWER_CHUNK_SAMPLES == 0))[0]:
            starts[int(a[i] - 1) // ANSWER_CHUNK_SAMPLES].append(t_block + i / SPEAKER_RATE_HZ)
    return {j: sorted(ts) for j, ts in starts.items()}


def answer_chunks(conn: Connection) -> list[tuple[int, float]]:
    """(index within its turn, stand-in send time) of every answer audio message."""
    out, j = [], 0
    for t, kind, _ in conn.sent:
        if kind == "audio":
            out.append((j, t))
            j += 1
        elif kind in ("turn_complete", "interrupted"):
            j = 0
    return out


def first_after(times: list[float], t: float, within_s: float = 3.0) -> float | None:
    i = bisect.bisect_left(times, t - 0.001)
    return times[i] if i < len(times) and times[i] < t + within_s else None


def analyse(name: str, probe: Probe, conn: Connection, mic: MicScript) -> Result:
    audio_in = conn.got("audio")
    mic_chunks = probe.mic_chunks()
    chunk_s = mic_chunks[0][1] / MIC_RATE_HZ
    t_connected = audio_in[0][0]  # chunks captured before this waited for the connection
    mic_to_wire = [
        recv[0] - t_cap
        for (t_cap, _), recv in zip(mic_chunks, audio_in, strict=False)
        if t_cap >= t_connected
    ]
    starts = played_chunk_starts(probe)
    sent = answer_chunks(conn)
    played = [first_after(starts.get(j, []), t) for j, t in sent]
    sent_to_played = [p - t for (_, t), p in zip(sent, played, strict=True) if p is not None]
    first = [p - t for (j, t), p in zip(sent, played, strict=True) if p is not None and j == 0]
    received = probe.answer_received()
    client_part = [
        p - r for r, p in zip(received, played, strict=False) if p is not None and r is not None
    ]
    handed = [h - r for r, h in zip(received, probe.play_calls(), strict=False)]
    answer_samples = sum(n for _, _, n in conn.gave("audio")) // 2
    lost = answer_samples - probe.ramp_samples_played()
    return Result(
        name,
        chunk_s,
        mic_to_wire,
        sent_to_played,
        first,
        client_part,
        handed,
        end_of_speech(probe, conn, mic, sent, played, chunk_s),
        lost,
        [x for x in probe.turn_latency_s if x is not None],
    )


def end_of_speech(
    probe: Probe,
    conn: Connection,
    mic: MicScript,
    sent: list[tuple[int, float]],
    played: list[float | None],
    chunk_s: float,
) -> list[dict[str, float]]:
    """Per turn: end of speech -> first answer sample played, and where the time went."""
    t0 = probe.mic_chunks()[0][0]
    audio_in = conn.got("audio")
    firsts = [(t, p) for (j, t), p in zip(sent, played, strict=True) if j == 0 and p is not None]
    out = []
    for (_, end), turn, (t_sent, t_played) in zip(mic.segments, conn.turns, firsts, strict=False):
        t_eos = t0 + end / MIC_RATE_HZ
        k = int((end - 1) / MIC_RATE_HZ / chunk_s)
        t_wire = audio_in[k][0]
        out.append(
            {
                "total": t_played - t_eos,
                "mic_to_wire": t_wire - t_eos,
                "detection": turn[1] - t_wire,
                "answer_start": t_sent - turn[1],
                "to_speaker": t_played - t_sent,
            }
        )
    return out


# ---- running and printing -------------------------------------------------------------------


async def measure(name: str, runner: Runner, mic: MicScript, speed: float) -> Result:
    probe = Probe()
    with StandInProcess(speed=speed, answer="ramp", answer_s=1.2) as standin:
        await runner(standin, probe)
        conns = standin.connections()
    if len(conns) != 1:
        print(f"  note: {name} made {len(conns)} connections; using the first")
    return analyse(name, probe, conns[0], mic)


def verdict(values: list[float], target: float) -> str:
    return "meets" if values and pct(values, 95) < target else "MISSES"


def report(results: list[Result]) -> None:
    rows: list[tuple[str, ...]] = [("figure", *(r.name for r in results))]
    rows.append(("mic chunk, ms", *(f"{r.mic_chunk_s * 1000:.0f}" for r in results)))
    rows.append(
        ("turns / answer chunks", *(f"{len(r.eos)} / {len(r.sent_to_played)}" for r in results))
    )
    rows.append(("mic -> wire (target p95 < 30)", *(ms3(r.mic_to_wire) for r in results)))
    after = [[x - r.mic_chunk_s for x in r.mic_to_wire] for r in results]
    rows.append(("  of which after the chunk filled", *(ms3(a) for a in after)))
    rows.append(("answer sent -> played (p95 < 50)", *(ms3(r.sent_to_played) for r in results)))
    rows.append(("  first chunk of each turn", *(ms3(r.first_chunk) for r in results)))
    rows.append(("  client receive -> played", *(ms3(r.received_to_played) for r in results)))
    rows.append(
        ("  client receive -> speaker.play()", *(ms3(r.received_to_handed) for r in results))
    )
    rows.append(("answer samples never played", *(str(r.lost_samples) for r in results)))
    for key, label in (
        ("total", "end of speech -> first answer sample"),
        ("mic_to_wire", "  mic -> wire (client)"),
        ("detection", "  stand-in end-of-speech detection"),
        ("answer_start", "  stand-in answer start"),
        ("to_speaker", "  answer sent -> played (client)"),
    ):
        rows.append((label, *(ms3([e[key] for e in r.eos]) for r in results)))
    rows.append(("latency shown by shelfsight", *(ms3(r.product_latency) for r in results)))
    table("Client-added latency, ms: p50 / p95 / max", rows)
    ours = results[0]
    print(
        f"\nshelfsight: mic -> wire p95 {pct(ours.mic_to_wire, 95) * 1000:.1f} ms "
        f"({verdict(ours.mic_to_wire, TARGET_MIC_S)} < 30 ms); answer sent -> played p95 "
        f"{pct(ours.sent_to_played, 95) * 1000:.1f} ms "
        f"({verdict(ours.sent_to_played, TARGET_PLAY_S)} < 50 ms)"
    )


async def main_async(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    mic = question_mic(work / "questions.wav", turns=args.turns)
    video = shelf_video(work / "shelf720.avi", seconds=10, size=(1280, 720))
    print(f"{args.turns} spoken questions, 1280x720 30 fps video file, work files in {work}")
    runs: list[tuple[str, Runner]] = [("shelfsight", shelfsight_runner(mic, video, work))]
    if not args.skip_naive:
        runs.append(("starter, 1 fps", starter_runner(mic, video, work, "1fps")))
        runs.append(("starter, camera rate", starter_runner(mic, video, work, "camera")))
    results = []
    for name, runner in runs:
        print(f"running {name} ...")
        results.append(await measure(name, runner, mic, args.speed))
    report(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--speed", type=float, default=1.0, help="stand-in answer pacing")
    parser.add_argument("--skip-naive", action="store_true")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
