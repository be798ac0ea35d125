"""Stage 2, filter, on Spark: ``pmd.pairs.filtering.filter_batch`` over the ingest stage's kept rows.

Given the ingest stage's ``data/`` directory, Spark tasks (a few per core) read each ingest part's
kept rows with pyarrow, filter them and write ``data/<the same part name>`` themselves
(``pmd.spark.batches.write_parts``), handing back only its counts: the rows never go through the
JVM. (A fresh build does not run this: ``pmd.spark.pairs.ingest.run_ingest_filter`` writes the
filter parts from the ingest tasks' batches in memory; this runs when ingest is done and the filter
is not.) Given a DataFrame of kept rows instead (any other producer), the rows go through
``mapInArrow`` and Spark's writer, and the ``Runner`` counts what was written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmd.pairs.config import BuildConfig
from pmd.pairs.filtering import filter_fn, filter_part_fn, source_filters
from pmd.pairs.outcomes import PAIR_OUTCOME_SCHEMA, PAIR_PARQUET_OPTIONS
from pmd.spark.batches import map_batches, write_parts

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from pmd.spark.stages import TaskCounts


def run_filter(spark: "SparkSession", cfg: BuildConfig, kept: "str | DataFrame", data_path: str) -> "TaskCounts | None":
    """Filter the kept rows of ``kept`` (the ingest stage's data directory, or a DataFrame of kept
    rows) into ``data_path``; returns the tasks' counts when the tasks wrote the parts."""
    from pmd.spark.stages import join, part_names

    chains = {n: source_filters(s) for n, s in cfg.enabled_sources().items()}
    if isinstance(kept, str):
        items = [(name, join(kept, name)) for name in part_names(kept)]
        # a part filters in a fraction of the time its unit took to parse: a few tasks per core,
        # not one per part, so that Spark's per-task cost does not rival the work
        tasks = 2 * spark.sparkContext.defaultParallelism
        return write_parts(spark, data_path, items, filter_part_fn(chains, cfg.ingest.batch_size),
                           PAIR_OUTCOME_SCHEMA, options=PAIR_PARQUET_OPTIONS, tasks=tasks)
    cols = [f.name for f in PAIR_OUTCOME_SCHEMA]
    out = map_batches(kept.select(*cols), filter_fn(chains, cfg.ingest.batch_size), PAIR_OUTCOME_SCHEMA)
    out.write.mode("overwrite").parquet(data_path)
    return None
