"""The end-of-session summary: what went out, what was lost, what the listener may have heard.

The same figures go into the recording's manifest and, as one line, onto the screen, so a
problem in a store (a lossy link, a starved speaker) is visible afterwards, not only in a log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from shelfsight.core.phrases import phrase
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
        """One line, in the session's language: "session: 2 connections, 14 frames sent ..."."""
        link = self.link
        parts = [
            phrase("summary_connections", count=link.connections),
            phrase("summary_frames", count=link.frames_sent, skipped=link.frames_skipped),
            phrase("summary_mic_sent", seconds=link.audio_chunks_sent * 0.02),
        ]
        if link.audio_replayed_s:
            parts.append(phrase("summary_replayed", seconds=link.audio_replayed_s))
        if link.dead_links:
            parts.append(phrase("summary_dead_links", count=link.dead_links))
        if link.slow_link_s:
            parts.append(phrase("summary_slow", seconds=link.slow_link_s))
        if link.audio_dropped_s:
            parts.append(phrase("summary_audio_lost", seconds=link.audio_dropped_s))
        if self.speaker_underruns:
            margin = self.playout_margin_ms
            key = "summary_gaps_margin" if margin else "summary_gaps"
            parts.append(phrase(key, count=self.speaker_underruns, margin=margin))
        if self.speaker_xruns:
            parts.append(phrase("summary_speaker_xruns", count=self.speaker_xruns))
        if self.mic_xruns:
            parts.append(phrase("summary_mic_xruns", count=self.mic_xruns))
        if self.mic_dropped_chunks:
            parts.append(phrase("summary_mic_dropped", ms=self.mic_dropped_chunks * 20))
        if self.guide is not None and self.guide.marks:
            g = self.guide
            parts.append(phrase("summary_guided", count=g.marks, lost=g.lost, asks=g.asks))
        if self.cost is not None and self.cost.answers:
            parts.append(self.cost.line())
        return phrase("summary", parts=", ".join(parts))
