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
    rows = [(name, s, o, r, n) for (s, o, r), n in sorted(groups.items(), key=lambda kv: tuple(x or "" for x in kv[0]))]
    return rows or [(name, None, None, None, 0)]


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
    from pmd.spark.stages import TaskCounts, fs_and_path

    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError("write_parts: part names must be unique")
    fs, p = fs_and_path(out_url)
    fs.makedirs(p, exist_ok=True)
    if not items:
        return TaskCounts.from_rows(write_part(out_url, "part-00000.parquet", (), schema, by, options))
    task = part_task(out_url, list(items), batches_of, schema, by, options)
    n_tasks = len(items) if tasks is None else max(1, min(tasks, len(items)))
    return TaskCounts.from_rows(spark.sparkContext.parallelize(range(len(items)), n_tasks).mapPartitions(task)
                                .collect())
