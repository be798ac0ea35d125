"""Counters of a stage, counted from its outcome rows, and the checks that the books balance.

A stage's ``input`` is counted from the rows that went IN (the previous stage's kept rows), its
kept / dropped / failed from the rows that came OUT; so a join that loses or duplicates rows
shows up as a ``ReconciliationError`` naming the stage and source, never as a quiet difference.
"""

from __future__ import annotations

from typing import Any

from pmd.counters import CounterBook, ReconciliationError, StageCounters

from pmd.pairs.outcomes import DROPPED, FAILED, KEPT


def count_inputs(df: Any) -> dict[str, int]:
    return {r["source"]: int(r["count"]) for r in df.groupBy("source").count().collect()}


def book_from_outcomes(stage: str, outcome_counts: list[tuple[str, str, str | None, int]],
                       inputs: dict[str, int] | None) -> CounterBook:
    """``(source, outcome, reason, n)`` tuples → a book; ``inputs`` None means input = outputs (ingest)."""
    book = CounterBook()
    for source, outcome, reason, n in outcome_counts:
        c = book.get(stage, source)
        if outcome == KEPT:
            c.add_kept(n)
        elif outcome == DROPPED:
            c.add_dropped(reason or "unknown", n)
        elif outcome == FAILED:
            c.add_failed(reason or "unknown", n)
        else:
            raise ReconciliationError(f"stage {stage!r} source {source!r}: {n} rows with unknown outcome {outcome!r}")
    for source in set(inputs or {}) | {c.source for c in book}:
        c = book.get(stage, source)
        c.input = (inputs or {}).get(source, 0) if inputs is not None else c.n_out
    return book


def count_outcomes(df: Any) -> list[tuple[str, str, str | None, int]]:
    rows = df.groupBy("source", "outcome", "reason").count().collect()
    return sorted(((r["source"], r["outcome"], r["reason"], int(r["count"])) for r in rows),
                  key=lambda t: (t[0], t[1], t[2] or ""))


def stage_book(stage: str, out_df: Any, inputs: "dict[str, int] | Any | None") -> CounterBook:
    """The stage's counters, reconciled: raises ``ReconciliationError`` naming stage and source.

    ``inputs``: per-source input counts, or a DataFrame of the input rows to count, or None (ingest:
    input = outcomes)."""
    if inputs is not None and not isinstance(inputs, dict):
        inputs = count_inputs(inputs)
    book = book_from_outcomes(stage, count_outcomes(out_df), inputs)
    book.check_reconciled()
    return book


def check_books(book: CounterBook, stages: list[str]) -> None:
    """Every stage balances, and each stage took in exactly what the one before it kept."""
    book.check_reconciled()
    present = [s for s in stages if any(c.stage == s for c in book)]
    for up, down in zip(present, present[1:]):
        book.check_chain(up, down)


def totals(book: CounterBook, stage: str) -> StageCounters:
    return book.total(stage)
