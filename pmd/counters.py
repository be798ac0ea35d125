"""Mergeable per-stage counters: in / kept / dropped-by-reason / failed-by-error.

Workers count locally; the driver merges. ``CounterBook`` keys counters by (stage, source) so
that stats can be reported per source and per stage, and ``check_reconciled`` fails a run
loudly when any stage's books do not balance.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator


class ReconciliationError(RuntimeError):
    """Counts that should balance do not: some records vanished or were counted twice."""


@dataclass
class StageCounters:
    stage: str
    source: str = "*"
    input: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)

    def add_input(self, n: int = 1) -> None:
        self.input += n

    def add_kept(self, n: int = 1) -> None:
        self.kept += n

    def add_dropped(self, reason: str, n: int = 1) -> None:
        if not reason:
            raise ValueError("a drop needs a reason")
        self.dropped[reason] += n

    def add_failed(self, error: str, n: int = 1) -> None:
        if not error:
            raise ValueError("a failure needs an error class")
        self.failed[error] += n

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    @property
    def n_out(self) -> int:
        return self.kept + self.n_dropped + self.n_failed

    def reconciles(self) -> bool:
        return self.input == self.n_out

    def check(self) -> None:
        if not self.reconciles():
            raise ReconciliationError(
                f"stage {self.stage!r} source {self.source!r}: in={self.input} but kept={self.kept} "
                f"+ dropped={self.n_dropped} + failed={self.n_failed} = {self.n_out}"
            )

    def merge(self, other: "StageCounters") -> "StageCounters":
        """Sum of two counters of the same stage and source (associative, commutative)."""
        if (self.stage, self.source) != (other.stage, other.source):
            raise ValueError(f"cannot merge {self.stage}/{self.source} with {other.stage}/{other.source}")
        return StageCounters(
            self.stage,
            self.source,
            self.input + other.input,
            self.kept + other.kept,
            self.dropped + other.dropped,
            self.failed + other.failed,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "source": self.source,
            "input": self.input,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "failed": dict(sorted(self.failed.items())),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StageCounters":
        return cls(
            d["stage"], d.get("source", "*"), int(d["input"]), int(d["kept"]),
            Counter({k: int(v) for k, v in d.get("dropped", {}).items()}),
            Counter({k: int(v) for k, v in d.get("failed", {}).items()}),
        )


class CounterBook:
    """Counters for many (stage, source) pairs; merges and serialises as a list of dicts."""

    def __init__(self, counters: Iterable[StageCounters] = ()) -> None:
        self._c: dict[tuple[str, str], StageCounters] = {}
        for c in counters:
            self.add(c)

    def get(self, stage: str, source: str = "*") -> StageCounters:
        key = (stage, source)
        if key not in self._c:
            self._c[key] = StageCounters(stage, source)
        return self._c[key]

    def add(self, counters: StageCounters) -> None:
        key = (counters.stage, counters.source)
        self._c[key] = self._c[key].merge(counters) if key in self._c else counters

    def merge(self, other: "CounterBook") -> "CounterBook":
        out = CounterBook(self)
        for c in other:
            out.add(c)
        return out

    def __iter__(self) -> Iterator[StageCounters]:
        return iter(sorted(self._c.values(), key=lambda c: (c.stage, c.source)))

    def __len__(self) -> int:
        return len(self._c)

    def stages(self) -> list[str]:
        return sorted({s for s, _ in self._c})

    def total(self, stage: str) -> StageCounters:
        """All sources of one stage summed, with source ``*``."""
        out = StageCounters(stage)
        for c in self:
            if c.stage == stage:
                out = out.merge(StageCounters(stage, "*", c.input, c.kept, c.dropped, c.failed))
        return out

    def check_reconciled(self) -> None:
        """Raise ``ReconciliationError`` listing every (stage, source) whose books do not balance."""
        bad = [c for c in self if not c.reconciles()]
        if bad:
            lines = []
            for c in bad:
                try:
                    c.check()
                except ReconciliationError as e:
                    lines.append(str(e))
            raise ReconciliationError("counts do not reconcile:\n  " + "\n  ".join(lines))

    def check_chain(self, upstream: str, downstream: str) -> None:
        """The records a stage kept must be exactly those the next stage took in, per source."""
        srcs = {s for st, s in self._c if st in (upstream, downstream)}
        for s in sorted(srcs):
            up_c, down_c = self._c.get((upstream, s)), self._c.get((downstream, s))
            up, down = (up_c.kept if up_c else 0), (down_c.input if down_c else 0)
            if up != down:
                raise ReconciliationError(f"source {s!r}: {upstream} kept {up} but {downstream} took in {down}")

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self]

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_list(), **kw)

    @classmethod
    def from_list(cls, items: Iterable[dict[str, Any]]) -> "CounterBook":
        return cls(StageCounters.from_dict(d) for d in items)
