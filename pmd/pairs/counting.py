"""Counters of a stage from its outcome counts (counted by Spark in ``pmd.spark.stages``), and the
checks that the books balance.

A stage's ``input`` is counted from the rows that went IN (the previous stage's kept rows), its
kept / dropped / failed from the rows that came OUT; so a join that loses or duplicates rows
shows up as a ``ReconciliationError`` naming the stage and source, never as a quiet difference.
"""

from __future__ import annotations

from pmd.counters import CounterBook, ReconciliationError

from pmd.pairs.outcomes import DROPPED, FAILED, KEPT


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

