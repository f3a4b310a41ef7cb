"""The eval's listing and totals, for people (a table or plain lines) and machines (`--json`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from shelfsight.eval.runner import CaseResult
from shelfsight.session.cost import Tokens, format_usd
from shelfsight.ui.listing import Listing

# Words, not ✓/✗: a screen reader says them, and they read the same in plain lines.
MARK = {True: "right", False: "wrong", None: "n/a"}


def totals(results: list[CaseResult]) -> dict[str, Any]:
    """Right / scored per check, answer length, tokens and estimated price of the run."""

    def tally(name: str) -> dict[str, int]:
        marks = [getattr(r.score, name) for r in results]
        return {"right": sum(m is True for m in marks), "scored": sum(m is not None for m in marks)}

    tokens = sum((r.tokens for r in results), Tokens())
    lengths = [r.answer_s for r in results if r.answer_s]
    return {
        "cases": len(results),
        "correct": sum(r.score.correct for r in results),
        "found": tally("found"),
        "shelf": tally("shelf"),
        "position": tally("position"),
        "colour": tally("colour"),
        "mean_answer_s": round(sum(lengths) / len(lengths), 2) if lengths else 0.0,
        "tokens_in": tokens.tokens_in,
        "tokens_out": tokens.tokens_out,
        "cost_usd": round(sum(r.usd for r in results), 6),
    }


def as_json(results: list[CaseResult], model: str) -> dict[str, Any]:
    return {
        "model": model,
        "cases": [
            {
                "id": r.case.id,
                "question": r.heard,
                "answer": r.answer,
                "answer_s": r.answer_s,
                "latency_s": r.latency_s,
                "truth": asdict(r.case.truth),
                "reading": asdict(r.reading),
                "score": {**asdict(r.score), "correct": r.score.correct},
                "tokens": asdict(r.tokens),
                "cost_usd": round(r.usd, 6),
            }
            for r in results
        ],
        "totals": totals(results),
    }


def listing(results: list[CaseResult], title: str) -> Listing:
    """A row per case (its marks, answer length, tokens, price; the answer as its note) and
    the totals as the footer."""
    total = totals(results)

    def ratio(name: str) -> str:
        return f"{total[name]['right']}/{total[name]['scored']}"

    out = Listing(
        title,
        ["case", "found", "shelf", "position", "colour", "answer s", "tokens in/out", "cost"],
        footer=[
            f"{total['correct']}/{total['cases']} right",
            ratio("found"),
            ratio("shelf"),
            ratio("position"),
            ratio("colour"),
            f"{total['mean_answer_s']:.1f} mean",
            f"{total['tokens_in']:,}/{total['tokens_out']:,}",
            format_usd(total["cost_usd"]),
        ],
    )
    for r in results:
        s = r.score
        out.add(
            [
                r.case.id,
                MARK[s.found],
                MARK[s.shelf],
                MARK[s.position],
                MARK[s.colour],
                f"{r.answer_s:.1f}",
                f"{r.tokens.tokens_in:,}/{r.tokens.tokens_out:,}",
                format_usd(r.usd),
            ],
            note=r.answer,
        )
    return out
