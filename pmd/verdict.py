"""Verdicts and failures: how a stage says what happened to each record.

Every record that enters a stage leaves it as exactly one of: kept, dropped with a reason
(a ``Verdict`` with ``keep=False``), or failed with an error (a ``Failure``). Counters
(``pmd.counters``) tally the three so that a stage's books always balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Iterator, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of a filter: ``keep`` or drop with a short, stable, snake_case ``reason``."""

    keep: bool
    reason: str | None = None

    def __post_init__(self) -> None:
        if not self.keep and not self.reason:
            raise ValueError("a drop verdict needs a reason")

    @staticmethod
    def ok() -> "Verdict":
        return KEEP

    @staticmethod
    def drop(reason: str) -> "Verdict":
        return Verdict(False, reason)

    def __bool__(self) -> bool:
        return self.keep


KEEP = Verdict(True)


@dataclass(frozen=True, slots=True)
class Failure:
    """A record a stage could not process (malformed input, an exception, a failed download).

    ``error`` is a short stable class for counting (``bad_json``, ``wrong_column_count``,
    ``http_404``); ``message`` says what happened; file and line point at the input.
    """

    error: str
    message: str = ""
    input_file: str | None = None
    input_line: int | None = None
    raw: str | None = None

    def __post_init__(self) -> None:
        if not self.error:
            raise ValueError("a failure needs an error class")

    def describe(self) -> str:
        where = ""
        if self.input_file is not None:
            where = f"{self.input_file}:{self.input_line}: " if self.input_line is not None else f"{self.input_file}: "
        return f"{where}{self.error}: {self.message}".rstrip(": ")

    def to_row(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "message": self.message,
            "input_file": self.input_file,
            "input_line": self.input_line,
            "raw": None if self.raw is None else self.raw[:2000],
        }


@dataclass(frozen=True, slots=True)
class Dropped:
    """A record a parser or stage decided not to keep, with its reason and where it came from."""

    reason: str
    input_file: str | None = None
    input_line: int | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if not self.reason:
            raise ValueError("a drop needs a reason")


class Filter(Protocol[T]):
    """A named predicate returning a ``Verdict`` (datatrove-style: the reason is counted)."""

    name: str

    def __call__(self, record: T) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class Rejected(Generic[T]):
    """A record that left a stage without being kept, with its verdict or failure (for reject sinks)."""

    record: T | None
    verdict: Verdict | None = None
    failure: Failure | None = None


def apply_filters(
    records: Iterable[T],
    filters: "list[Filter[T]] | list[Callable[[T], Verdict]]",
    counters: "Any",
    on_reject: Callable[[Rejected[T]], None] | None = None,
) -> Iterator[T]:
    """Run ``filters`` in order over ``records``; yield kept ones, count the rest in ``counters``.

    The first filter that drops a record decides its reason. An exception inside a filter
    makes that record *failed* (error class = exception type), never lost and never fatal.
    """
    for record in records:
        counters.add_input()
        try:
            verdict = KEEP
            for f in filters:
                verdict = f(record)
                if not verdict.keep:
                    break
        except Exception as exc:  # noqa: BLE001 - every record must leave with an outcome
            failure = Failure(error=type(exc).__name__, message=str(exc)[:500])
            counters.add_failed(failure.error)
            if on_reject is not None:
                on_reject(Rejected(record, failure=failure))
            continue
        if verdict.keep:
            counters.add_kept()
            yield record
        else:
            counters.add_dropped(verdict.reason)  # type: ignore[arg-type]
            if on_reject is not None:
                on_reject(Rejected(record, verdict=verdict))
