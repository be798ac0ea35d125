"""Progress for long work: periodic log lines with count, rate and (when known) ETA.

Log lines rather than a redrawn bar, because builds run under Spark and in CI where the
output is a log file; a line every ``interval`` seconds is readable in both.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger("pmd.progress")


class Progress:
    def __init__(self, stage: str, total: int | None = None, unit: str = "records", interval: float = 5.0,
                 logger: logging.Logger | None = None) -> None:
        self.stage, self.total, self.unit, self.interval = stage, total, unit, interval
        self.count = 0
        self._log = logger or log
        self._start = self._last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._emit(now)

    def _emit(self, now: float, done: bool = False) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.count / elapsed
        total = f"/{self.total:,}" if self.total is not None else ""
        eta = ""
        if not done and self.total and rate > 0:
            eta = f", eta {max(self.total - self.count, 0) / rate:,.0f}s"
        state = "done" if done else "progress"
        self._log.info("%s %s: %s%s %s (%.1f/s, %.1fs%s)", self.stage, state, f"{self.count:,}", total,
                       self.unit, rate, elapsed, eta)

    def close(self) -> None:
        self._emit(time.monotonic(), done=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], stage: str, total: int | None = None, unit: str = "records",
          interval: float = 5.0) -> Iterator[T]:
    """Yield ``items`` unchanged, logging progress every ``interval`` seconds and once at the end."""
    with Progress(stage, total, unit, interval) as p:
        for item in items:
            yield item
            p.update()
