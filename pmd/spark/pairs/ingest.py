"""Stage 1, ingest, on Spark: one task per input unit, parsed and written by Python.

The driver plans the units (byte ranges of the raw files: a plan, not records); each executor task
parses one unit (``pmd.pairs.ingest.unit_batches``) and writes its rows, in unit order, as the
Parquet part ``data/part-<unit index>.parquet`` with pyarrow (``pmd.spark.batches.write_parts``):
the rows never enter the JVM, and the task hands back only its outcome counts, which the
``Runner`` books after checking the parts. The name and bytes of a part depend on its unit only,
so a retried or speculative task leaves the same one file. Not partitioned by source: readers
select by column, and a ``source=`` directory name would also have its value type-guessed on read.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pmd.pairs.config import BuildConfig
from pmd.pairs.filtering import source_filters
from pmd.pairs.ingest import planned_ingest_filter_pairs, planned_unit_batches, plan_units, resolve_options
from pmd.pairs.outcomes import PAIR_OUTCOME_SCHEMA, PAIR_PARQUET_OPTIONS
from pmd.spark.batches import write_part_pairs, write_parts

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from pmd.spark.stages import TaskCounts

log = logging.getLogger(__name__)


def ingest_part_name(unit_index: int) -> str:
    """The part file of one unit (zero-padded: the names sort in unit order)."""
    return f"part-{unit_index:05d}.parquet"


def run_ingest(spark: "SparkSession", cfg: BuildConfig, data_path: str) -> "TaskCounts":
    """Parse every unit on Spark and write the outcome rows to ``data_path`` (one Parquet dataset,
    a part per unit); returns the tasks' counts for the ``Runner``."""
    units = plan_units(cfg)
    log.info("ingest: %d sources, %d input units", len(cfg.enabled_sources()), len(units))
    options = {n: resolve_options(s.options, cfg.base_dir) for n, s in cfg.enabled_sources().items()}
    items = [(ingest_part_name(u["unit_index"]), (u["source"], u["unit"])) for u in units]
    return write_parts(spark, data_path, items, planned_unit_batches(options, cfg.ingest.batch_size),
                       PAIR_OUTCOME_SCHEMA, options=PAIR_PARQUET_OPTIONS)


def run_ingest_filter(spark: "SparkSession", cfg: BuildConfig, ingest_path: str,
                      filter_path: str) -> "tuple[TaskCounts, TaskCounts]":
    """Ingest and filter in one Spark job (what a fresh build runs): each unit's task parses it and
    writes its ingest part and, from the same batches in memory, its filter part (the filter stage's
    rule, ``pmd.spark.pairs.filtering``), so no part is read back and the filter pays no job of its
    own. The parts, bytes and counts are those of ``run_ingest`` then ``run_filter`` (tested); a
    build whose ingest is done and whose filter is not runs ``run_filter`` alone."""
    units = plan_units(cfg)
    log.info("ingest + filter: %d sources, %d input units", len(cfg.enabled_sources()), len(units))
    options = {n: resolve_options(s.options, cfg.base_dir) for n, s in cfg.enabled_sources().items()}
    chains = {n: source_filters(s) for n, s in cfg.enabled_sources().items()}
    items = [(ingest_part_name(u["unit_index"]), (u["source"], u["unit"])) for u in units]
    return write_part_pairs(spark, (ingest_path, filter_path), items,
                            planned_ingest_filter_pairs(options, cfg.ingest.batch_size, chains),
                            PAIR_OUTCOME_SCHEMA, options=PAIR_PARQUET_OPTIONS)
