"""Stage 1, ingest, on Spark: one task per input unit, parsed with ``mapInArrow``.

The driver plans the units (byte ranges of the raw files: a plan, not records); executors parse
them with ``pmd.pairs.ingest.parse_units_fn`` and each task writes its rows as they come, in unit
order. Not ``partitionBy("source")``: that makes every task sort its rows by source before writing
(a full sort of the stage's widest rows for nothing; readers select by column, and a ``source=``
directory name would also have its value type-guessed on read).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pmd.pairs.config import BuildConfig
from pmd.pairs.ingest import UNIT_DDL, parse_units_fn, plan_units, resolve_options
from pmd.pairs.outcomes import PAIR_OUTCOME_SCHEMA
from pmd.spark.batches import map_batches

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def run_ingest(spark: "SparkSession", cfg: BuildConfig, data_path: str) -> None:
    """Parse every unit on Spark and write the outcome rows to ``data_path`` (one Parquet dataset)."""
    units = plan_units(cfg)
    log.info("ingest: %d sources, %d input units", len(cfg.enabled_sources()), len(units))
    options = {n: resolve_options(s.options, cfg.base_dir) for n, s in cfg.enabled_sources().items()}
    # exactly one unit per task: parsing, not shuffling, is the cost
    rows = [(u["source"], u["unit_index"], bytearray(u["unit"])) for u in units]
    rdd = spark.sparkContext.parallelize(rows, max(1, len(rows)))
    df = spark.createDataFrame(rdd, UNIT_DDL)
    out = map_batches(df, parse_units_fn(options, cfg.ingest.batch_size), PAIR_OUTCOME_SCHEMA)
    out.write.mode("overwrite").parquet(data_path)
