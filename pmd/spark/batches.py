"""``map_batches``: the only way records reach Spark executors - Arrow batches in, batches out.

The callables are pure functions from ``pmd/`` (parse, filter, crop, hash, write a shard); no row
UDFs, so Python is entered once per batch, not once per record.

``write_parts`` is the other way, for a stage whose rows need nothing from the JVM (the PMD
ingest and filter): each Spark task makes its rows in Python and writes them as its own Parquet
part with pyarrow, and hands Spark back only its ``(source, outcome, reason, n)`` counts. No
record reaches Spark at all: that spares the copy of every row from Arrow into Spark's rows,
Spark's Parquet writer, and the job that would read the stage back to count it.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import pyarrow as pa

from pmd.pairs.outcomes import outcome_counts

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from pmd.spark.stages import TaskCounts

BatchFn = Callable[[Iterator["pa.RecordBatch"]], Iterator["pa.RecordBatch"]]

#: ``(part file, source, outcome, reason, n)``: one group of the rows a ``write_parts`` task wrote.
PartCount = tuple[str, "str | None", "str | None", "str | None", int]


def map_batches(df: "DataFrame", fn: BatchFn, schema: "pa.Schema") -> "DataFrame":
    """``df.mapInArrow(fn)`` with an Arrow output schema."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return df.mapInArrow(fn, from_arrow_schema(schema))


def write_part(out_url: str, name: str, batches: Iterable[pa.RecordBatch], schema: pa.Schema,
               by: str = "source", options: dict[str, Any] | None = None) -> list[PartCount]:
    """Write one part file ``out_url/name`` (whole or not at all) and return its counts, the
    ``(file, source, outcome, reason, n)`` rows the executor hands back instead of the rows; a part
    with no rows gives one row with ``source`` None and n 0 (the part exists all the same)."""
    from pmd.spark.stages import join, write_parquet_atomic

    groups: Counter = Counter()

    def seen(b: pa.RecordBatch) -> None:
        for key, n in outcome_counts(b, by):
            groups[key] += n

    write_parquet_atomic(join(out_url, name), batches, schema, seen, options)
    return _part_rows(name, groups)


def _part_rows(name: str, groups: Counter) -> list[PartCount]:
    """A part's ``(file, source, outcome, reason, n)`` rows from its counted groups, sorted; one row with
    ``source`` None and n 0 for a part with no rows."""
    rows = [(name, s, o, r, n) for (s, o, r), n in sorted(groups.items(), key=lambda kv: tuple(x or "" for x in kv[0]))]
    return rows or [(name, None, None, None, 0)]


def write_part_pair(out_urls: tuple[str, str], name: str,
                    pairs: Iterable[tuple["pa.RecordBatch | None", "pa.RecordBatch | None"]], schema: pa.Schema,
                    by: str = "source", options: dict[str, Any] | None = None) -> list[tuple[int, PartCount]]:
    """Two stages' parts of one item at once: ``pairs`` gives (a batch of the first stage's part or
    None, a batch of the second stage's part or None); ``out_urls[0]/name`` and ``out_urls[1]/name`` are
    written side by side, each whole or not at all, the first committed first. Returns each part's
    counts (``write_part``'s rows) tagged with its stage index, 0 or 1. Streaming: one batch of each
    stage is held at a time, so a task's memory does not grow with its item."""
    from pmd.spark.stages import ParquetPart, join

    parts = [ParquetPart(join(u, name), schema, options) for u in out_urls]
    groups: list[Counter] = [Counter(), Counter()]
    try:
        for pair in pairs:
            for i, b in enumerate(pair):
                if b is not None and b.num_rows:
                    parts[i].write(b)
                    for key, n in outcome_counts(b, by):
                        groups[i][key] += n
    except BaseException:
        for part in parts:
            part.abort()
        raise
    parts[0].commit()
    parts[1].commit()
    return [(i, row) for i, g in enumerate(groups) for row in _part_rows(name, g)]


def part_task(out_url: str, items: Sequence[tuple[str, Any]], batches_of: Callable[[Any], Iterable[pa.RecordBatch]],
              schema: pa.Schema, by: str = "source",
              options: dict[str, Any] | None = None) -> Callable[[Iterable[int]], Iterator[PartCount]]:
    """The task function of ``write_parts``: for each item index of its partition, the part
    ``out_url/<name>`` of ``batches_of(payload)`` (``items[i]`` is ``(name, payload)``), and its counts."""

    def fn(indices: Iterable[int]) -> Iterator[PartCount]:
        for i in indices:
            name, payload = items[i]
            yield from write_part(out_url, name, batches_of(payload), schema, by, options)

    return fn


def _prepare_parts(caller: str, items: Sequence[tuple[str, Any]], out_urls: Sequence[str]) -> None:
    """Part names must be unique (a retried task then leaves one file); the output directories exist."""
    from pmd.spark.stages import fs_and_path

    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"{caller}: part names must be unique")
    for url in out_urls:
        fs, p = fs_and_path(url)
        fs.makedirs(p, exist_ok=True)


def write_part_pairs(spark: "SparkSession", out_urls: tuple[str, str], items: Sequence[tuple[str, Any]],
                     pairs_of: Callable[[Any], Iterable[tuple["pa.RecordBatch | None", "pa.RecordBatch | None"]]],
                     schema: pa.Schema, by: str = "source",
                     options: dict[str, Any] | None = None) -> tuple["TaskCounts", "TaskCounts"]:
    """``write_parts`` for two consecutive stages at once (one Spark job, one task per item): each task
    writes the item's part of both stages from one pass over its rows (``write_part_pair``), so the
    second stage neither reads the first one's part back nor pays its own job. Returns both stages'
    ``TaskCounts``; the same names, bytes and counts as running the two stages one after the other,
    when ``pairs_of`` makes the second stage's batches as that stage makes them from the part."""
    from pmd.spark.stages import TaskCounts

    _prepare_parts("write_part_pairs", items, out_urls)
    if not items:
        tagged = write_part_pair(out_urls, "part-00000.parquet", (), schema, by, options)
    else:
        payloads = list(items)

        def task(indices: Iterable[int]) -> Iterator[tuple[int, PartCount]]:
            for i in indices:
                name, payload = payloads[i]
                yield from write_part_pair(out_urls, name, pairs_of(payload), schema, by, options)

        tagged = spark.sparkContext.parallelize(range(len(items)), len(items)).mapPartitions(task).collect()
    first, second = ([row for i, row in tagged if i == k] for k in (0, 1))
    return TaskCounts.from_rows(first), TaskCounts.from_rows(second)


def write_parts(spark: "SparkSession", out_url: str, items: Sequence[tuple[str, Any]],
                batches_of: Callable[[Any], Iterable[pa.RecordBatch]], schema: pa.Schema,
                by: str = "source", options: dict[str, Any] | None = None, tasks: int | None = None) -> "TaskCounts":
    """Spark tasks write the Parquet part ``out_url/<name>`` of ``batches_of(payload)`` for every
    item; returns the tasks' counts for the ``Runner`` (``TaskCounts``).

    ``tasks``: how many Spark tasks share the items (contiguous runs of them); default one per item,
    which balances best when an item is a lot of work (an ingest unit), where a few tasks per core
    spare the per-task cost when items are quick (a filter part). The tasks are a plain RDD of item
    indices, collected: one job for the whole stage, and no SQL plan or Arrow stream per task (about half the per-task cost of a
    ``mapInArrow`` over ``spark.range``, measured by ``bench/ingest_spark.py``), since nothing but
    the counts comes back. ``items`` and ``batches_of`` travel in the task closure (PySpark
    broadcasts a large one), so the payloads should be small: a unit plan, a file name. Part names
    must be unique and, like the content, depend on the item only: a task that Spark runs twice
    then leaves one file, the same. ``out_url``: a local or shared path or an fsspec URL the
    executors can write (for Spark's ``s3a://`` spelling, ``s3fs`` answers too). No items still
    leave one empty part, so a reader finds the schema. ``options``: ``ParquetWriter`` keywords.
    """
    from pmd.spark.stages import TaskCounts

    _prepare_parts("write_parts", items, (out_url,))
    if not items:
        return TaskCounts.from_rows(write_part(out_url, "part-00000.parquet", (), schema, by, options))
    task = part_task(out_url, list(items), batches_of, schema, by, options)
    n_tasks = len(items) if tasks is None else max(1, min(tasks, len(items)))
    return TaskCounts.from_rows(spark.sparkContext.parallelize(range(len(items)), n_tasks).mapPartitions(task)
                                .collect())
