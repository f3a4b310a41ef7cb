"""The end-of-session summary: what went out, what was lost, what the listener may have heard.

The same figures go into the recording's manifest and, as one line, onto the screen, so a
problem in a store (a lossy link, a starved speaker) is visible afterwards, not only in a log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from shelfsight.guide.guide import GuideStats
from shelfsight.live.link import LinkStats
from shelfsight.media.echo import EchoStats
from shelfsight.session.cost import CostMeter


@dataclass(frozen=True)
class SessionSummary:
    link: LinkStats
    speaker_underruns: int  # gaps a listener heard mid-answer
    mic_dropped_chunks: int  # 20 ms chunks the device delivered faster than the loop read
    echo: EchoStats | None
    cost: CostMeter | None = None  # what the answers were billed, from usageMetadata
    speaker_xruns: int = 0  # PortAudio output underflows: the device itself ran short
    mic_xruns: int = 0  # PortAudio input overflows: the device dropped what it captured
    playout_margin_ms: float = 0.0  # the largest margin the jitter buffer needed
    answer_audio_s: float = 0.0  # answer audio that came from the server
    guide: GuideStats | None = None  # guide mode's counts (a camera was on)
    guide_cue_ms: tuple[float, float] | None = None  # frame capture -> its cue mixed, p50/p95
    guide_cpu_s: float = 0.0  # the guide worker thread's CPU time

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            **asdict(self.link),
            "speaker_underruns": self.speaker_underruns,
            "mic_dropped_chunks": self.mic_dropped_chunks,
            "speaker_xruns": self.speaker_xruns,
            "mic_xruns": self.mic_xruns,
            "playout_margin_ms": round(self.playout_margin_ms),
        }
        if self.echo is not None:
            out["echo"] = asdict(self.echo)
        if self.cost is not None:
            out.update(self.cost.as_dict())
        if self.guide is not None:
            out["guide"] = {
                **asdict(self.guide),
                "capture_to_sound_ms": self.guide_cue_ms,
                "cpu_s": round(self.guide_cpu_s, 2),
            }
        return out

    def line(self) -> str:
        link = self.link
        parts = [
            f"{link.connections} connection{'s' if link.connections != 1 else ''}",
            f"{_n(link.frames_sent, 'frame')} sent ({link.frames_skipped} replaced by newer ones)",
            f"{link.audio_chunks_sent * 0.02:.0f} s of mic audio sent",
        ]
        if link.audio_replayed_s:
            parts.append(f"{link.audio_replayed_s:.1f} s re-sent after a dropped connection")
        if link.dead_links:
            parts.append(
                f"{link.dead_links} silent connection{'s' if link.dead_links != 1 else ''} cut"
            )
        if link.slow_link_s:
            parts.append(
                f"upload too slow for {link.slow_link_s:.0f} s (lighter audio, speech only, "
                "a small picture per question)"
            )
        if link.audio_dropped_s:
            parts.append(f"{link.audio_dropped_s:.1f} s of what you said was lost")
        if self.speaker_underruns:
            margin = self.playout_margin_ms
            grew = f" (playout margin grew to {margin:.0f} ms)" if margin else ""
            parts.append(f"{_n(self.speaker_underruns, 'gap')} in answer playback{grew}")
        if self.speaker_xruns:
            parts.append(f"{self.speaker_xruns} speaker underruns in the sound device")
        if self.mic_xruns:
            parts.append(f"{self.mic_xruns} microphone overflows in the sound device")
        if self.mic_dropped_chunks:
            parts.append(f"{self.mic_dropped_chunks * 20} ms of microphone audio dropped")
        if self.guide is not None and self.guide.marks:
            g = self.guide
            parts.append(
                f"guided {g.marks} time{'s' if g.marks != 1 else ''} "
                f"(item lost {g.lost}, asked again {g.asks})"
            )
        if self.cost is not None and self.cost.answers:
            parts.append(self.cost.line())
        return "session: " + ", ".join(parts)


def _n(count: int, noun: str) -> str:
    """"1 frame", "2 frames"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
