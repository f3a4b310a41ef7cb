"""The eval's table and totals, for people (rich table) and machines (`--json`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.table import Table

from shelfsight.eval.runner import CaseResult
from shelfsight.session.cost import Tokens, format_usd

MARK = {True: "✓", False: "✗", None: "·"}


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


def table(results: list[CaseResult], title: str) -> Table:
    out = Table(title=title, title_justify="left", show_footer=True)
    total = totals(results)

    def ratio(name: str) -> str:
        return f"{total[name]['right']}/{total[name]['scored']}"

    columns = [
        ("case", f"{total['correct']}/{total['cases']} right"),
        ("found", ratio("found")),
        ("shelf", ratio("shelf")),
        ("position", ratio("position")),
        ("colour", ratio("colour")),
        ("answer s", f"{total['mean_answer_s']:.1f} mean"),
        ("tokens in/out", f"{total['tokens_in']:,}/{total['tokens_out']:,}"),
        ("cost", format_usd(total["cost_usd"])),
        ("answer", ""),
    ]
    for header, footer in columns:
        out.add_column(header, footer=footer, overflow="fold")
    for r in results:
        s = r.score
        out.add_row(
            r.case.id,
            MARK[s.found],
            MARK[s.shelf],
            MARK[s.position],
            MARK[s.colour],
            f"{r.answer_s:.1f}",
            f"{r.tokens.tokens_in:,}/{r.tokens.tokens_out:,}",
            format_usd(r.usd),
            r.answer,
        )
    return out
