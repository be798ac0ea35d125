"""Stage 3, dedup on Spark: Karpathy leaks (``mapInArrow``), then exact duplicate pairs by a window.

The winner of a ``dedup_key`` group is the lowest ``(priority, id, input_file, input_line)``:
the same whatever the partitioning (``pmd.pairs.dedup.pick_winners`` is its pure reference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmd.pairs.config import BuildConfig
from pmd.pairs.dedup import DEDUP_SCHEMA, leak_fn, load_eval_ids
from pmd.pairs.outcomes import PAIR_OUTCOME_SCHEMA
from pmd.spark.batches import map_batches

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession


def run_dedup(spark: "SparkSession", cfg: BuildConfig, kept_df: "DataFrame", data_path: str) -> None:
    cols = [f.name for f in PAIR_OUTCOME_SCHEMA]
    marked = map_batches(kept_df.select(*cols),
                         leak_fn(load_eval_ids(cfg), frozenset(cfg.dedup.karpathy_sources), cfg.priority()),
                         DEDUP_SCHEMA)
    if not cfg.dedup.exact:
        marked.select(*cols).write.mode("overwrite").parquet(data_path)
        return
    view = "pmd_dedup_input"
    marked.createOrReplaceTempView(view)
    # rows already dropped (leaks) take no part in choosing winners; rn breaks ties between rows
    # with the same id (the same pair twice in one source) by input position, deterministically
    w = "PARTITION BY dedup_key, outcome ORDER BY priority, id, input_file, input_line"
    ranked = spark.sql(f"""
        SELECT *, CASE WHEN outcome = 'kept' THEN row_number() OVER ({w}) END AS rn,
                  CASE WHEN outcome = 'kept' THEN first_value(id) OVER ({w}) END AS winner
        FROM {view}""")
    exprs = [c for c in cols if c not in ("outcome", "reason", "message")] + [
        "CASE WHEN rn IS NULL OR rn = 1 THEN outcome ELSE 'dropped' END AS outcome",
        "CASE WHEN rn IS NULL OR rn = 1 THEN reason ELSE 'duplicate_pair' END AS reason",
        "CASE WHEN rn IS NULL OR rn = 1 THEN message ELSE concat('duplicate of ', winner) END AS message",
    ]
    ranked.selectExpr(*exprs).write.mode("overwrite").parquet(data_path)