"""Progress lines while a Spark stage runs (tasks done / total from the status tracker) and a
closing line with the stage's record counts and rate (``pmd.progress``)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pmd.progress import Progress

log = logging.getLogger("pmd.progress")


class SparkStageProgress:
    """Context manager: a daemon thread logs the running Spark jobs' task progress every ``interval`` s."""

    def __init__(self, spark: Any, stage: str, interval: float = 5.0) -> None:
        self.spark, self.stage, self.interval = spark, stage, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"pmd-progress-{stage}", daemon=True)
        self.start = time.monotonic()

    def _loop(self) -> None:
        tracker = self.spark.sparkContext.statusTracker()
        while not self._stop.wait(self.interval):
            try:
                done = total = 0
                for sid in tracker.getActiveStageIds():
                    info = tracker.getStageInfo(sid)
                    if info is not None:
                        done += info.numCompletedTasks
                        total += info.numTasks
                if total:
                    log.info("%s progress: %d/%d Spark tasks of the running job (%.0fs)", self.stage, done, total,
                             time.monotonic() - self.start)
            except Exception:  # noqa: BLE001 - progress must never break a build
                log.debug("progress poll failed", exc_info=True)

    def __enter__(self) -> "SparkStageProgress":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def report_done(stage: str, records: int, kept: int, dropped: int, failed: int, seconds: float) -> None:
    """One closing line per stage: records, rate, and where they went."""
    p = Progress(stage, total=records, unit=f"records (kept {kept:,}, dropped {dropped:,}, failed {failed:,})",
                 interval=1e9)
    p._start = time.monotonic() - max(seconds, 1e-9)
    p.update(records)
    p.close()
