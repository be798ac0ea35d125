"""The end of a build: stats files, then ``manifest.json`` (the commit point), then the dataset card."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pmd.config import to_dict
from pmd.pairs.config import BuildConfig
from pmd.pairs.stats import ordered_counters
from pmd.spark.pairs.stats import write_stats
from pmd.spark.stages import Runner, on_executor

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

KIND = "pmd-pairs"


def finish_build(runner: Runner, cfg: BuildConfig, wall_seconds: float) -> None:
    from pmd.shard import write_manifest

    out = runner.out_dir
    shards = runner.sd("shard").info().get("shards", [])
    write_stats(runner.spark, out, runner.book, wall_seconds, shards)
    path = write_manifest(out, KIND, shards, to_dict(cfg), ordered_counters(runner.book))
    log.info("build finished: %d shards, %d samples, manifest %s", len(shards),
             sum(s["samples"] for s in shards), path)
    write_card(out, runner.spark)


def write_card(out: str, spark: "SparkSession | None" = None) -> None:
    """``DATASET_CARD.md`` by the stats package, when it is installed (it lands separately). Given
    ``spark``, the card is written by one executor task: it reads rejects.parquet, per-record data
    the driver does not hold."""
    try:
        from pmd.stats.card import write_dataset_card
    except ImportError:
        log.warning("pmd.stats.card is not available: DATASET_CARD.md not written")
        return
    if spark is None:
        write_dataset_card(out)
    else:
        on_executor(spark, write_dataset_card, out)
