"""Stage 2, filter, on Spark: ``pmd.pairs.filtering.filter_fn`` over the ingest stage's kept rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmd.pairs.config import BuildConfig
from pmd.pairs.filtering import filter_fn, source_filters
from pmd.pairs.outcomes import PAIR_OUTCOME_SCHEMA
from pmd.spark.batches import map_batches

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession


def run_filter(spark: "SparkSession", cfg: BuildConfig, kept_df: "DataFrame", data_path: str) -> None:
    chains = {n: source_filters(s) for n, s in cfg.enabled_sources().items()}
    cols = [f.name for f in PAIR_OUTCOME_SCHEMA]
    out = map_batches(kept_df.select(*cols), filter_fn(chains, cfg.ingest.batch_size), PAIR_OUTCOME_SCHEMA)
    out.write.mode("overwrite").parquet(data_path)
