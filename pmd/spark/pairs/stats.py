"""Stage 7, stats, on Spark: ``DIR/stats/`` (counters.json, samples.parquet, rejects.parquet, summary.json).

Everything is counted by Spark from the stage outputs (aggregates: a few rows per source reach the
driver); the two tables are written by Spark and their part files merged into single files.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmd.counters import CounterBook
from pmd.pairs.config import STAGES
from pmd.pairs.outcomes import KEPT
from pmd.pairs.stats import REJECTS_COLUMNS, WORD_BUCKETS, merge_parts, ordered_counters
from pmd.spark.stages import StageDir, on_executor, spark_path, write_json_atomic

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def _single_parquet(spark: "SparkSession", df: "DataFrame", dst: str, work: str) -> None:
    """``df`` as ONE Parquet file: parts written by Spark, merged in order by one executor task
    (through the driver the merge raised the driver's peak with the number of rows)."""
    tmpdir = f"{work}/{Path(dst).name}.parts"
    df.write.mode("overwrite").parquet(spark_path(tmpdir))
    on_executor(spark, merge_parts, tmpdir, dst)
    shutil.rmtree(tmpdir, ignore_errors=True)


def samples_df(spark: "SparkSession", out_dir: str) -> "DataFrame":
    final = spark.read.parquet(spark_path(StageDir(out_dir, "dedup_images").data)).where(f"outcome = '{KEPT}'")
    sharded = spark.read.parquet(spark_path(StageDir(out_dir, "shard").data)).where(f"outcome = '{KEPT}'")
    final.createOrReplaceTempView("pmd_stats_final")
    sharded.createOrReplaceTempView("pmd_stats_shard")
    return spark.sql("""
        SELECT f.id, f.source, f.text, size(split(trim(f.text), '\\\\s+')) AS caption_words, f.lang,
               f.lang_score, f.width, f.height, f.original_width, f.original_height, f.image_key, f.sha256,
               s.shard
        FROM pmd_stats_final f JOIN pmd_stats_shard s ON f.id = s.id
        ORDER BY f.id""")


def rejects_df(spark: "SparkSession", out_dir: str) -> "DataFrame":
    parts = []
    for stage in STAGES:
        df = spark.read.parquet(spark_path(StageDir(out_dir, stage).data)).where(f"outcome <> '{KEPT}'")
        cols = set(df.columns)
        exprs = [f"'{stage}' AS stage"] + [
            c if c in cols else f"CAST(NULL AS {'BIGINT' if c == 'input_line' else 'STRING'}) AS {c}"
            for c in REJECTS_COLUMNS[1:]]
        parts.append(df.selectExpr(*exprs))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.orderBy("stage", "source", "input_file", "input_line", "reason", "message", "image_url")


def summary(spark: "SparkSession", samples: "DataFrame", book: CounterBook, wall_seconds: float, shards: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-source totals, per-stage books, caption-length histogram, language scores, image sizes."""
    samples.createOrReplaceTempView("pmd_stats_samples")
    agg = {r["source"]: r.asDict() for r in spark.sql("""
        SELECT source, count(*) AS pairs, count(DISTINCT image_key) AS images, avg(caption_words) AS avg_words,
               percentile_approx(lang_score, array(0.1, 0.5, 0.9)) AS lang_q,
               avg(width) AS avg_width, avg(height) AS avg_height,
               avg(original_width) AS avg_original_width, avg(original_height) AS avg_original_height
        FROM pmd_stats_samples GROUP BY source""").collect()}
    bucket_case = "CASE " + " ".join(f"WHEN caption_words <= {b} THEN '<={b}'" for b in WORD_BUCKETS) + \
        f" ELSE '>{WORD_BUCKETS[-1]}' END"
    hist: dict[str, dict[str, int]] = {}
    for r in spark.sql(f"SELECT source, {bucket_case} AS bucket, count(*) AS n FROM pmd_stats_samples "
                       "GROUP BY source, bucket").collect():
        hist.setdefault(r["source"], {})[r["bucket"]] = int(r["n"])
    order = [f"<={b}" for b in WORD_BUCKETS] + [f">{WORD_BUCKETS[-1]}"]
    sources: dict[str, Any] = {}
    for src in sorted({c.source for c in book}):
        stages = {c.stage: c.to_dict() for c in book if c.source == src}
        a = agg.get(src, {})
        q = a.get("lang_q") or [None, None, None]
        sources[src] = {
            "ingested": stages.get("ingest", {}).get("input", 0),
            "pairs": int(a.get("pairs") or 0),
            "images": int(a.get("images") or 0),
            "avg_caption_words": None if a.get("avg_words") is None else round(float(a["avg_words"]), 3),
            "caption_words_histogram": {b: hist.get(src, {}).get(b, 0) for b in order},
            "lang_score_quantiles": {"p10": q[0], "p50": q[1], "p90": q[2]},
            "image_size": {k: None if a.get(f"avg_{k}") is None else round(float(a[f"avg_{k}"]), 2)
                           for k in ("width", "height", "original_width", "original_height")},
            "stages": {s: {k: v for k, v in d.items() if k not in ("stage", "source")} for s, d in
                       sorted(stages.items(), key=lambda kv: STAGES.index(kv[0]))},
        }
    return {
        "sources": sources,
        "total_pairs": sum(s["pairs"] for s in sources.values()),
        "total_images": int(spark.sql("SELECT count(DISTINCT image_key) AS n FROM pmd_stats_samples").collect()[0]["n"]),
        "shards": len(shards),
        "wall_seconds": round(wall_seconds, 3),
    }


def write_stats(spark: "SparkSession", out_dir: str, book: CounterBook, wall_seconds: float, shards: list[dict[str, Any]]) -> None:
    stats = Path(out_dir) / "stats"
    stats.mkdir(parents=True, exist_ok=True)
    work = str(Path(out_dir) / "stages" / "_stats_tmp")
    write_json_atomic(str(stats / "counters.json"), ordered_counters(book))
    samples = samples_df(spark, out_dir)
    _single_parquet(spark, samples, str(stats / "samples.parquet"), work)
    _single_parquet(spark, rejects_df(spark, out_dir), str(stats / "rejects.parquet"), work)
    samples_written = spark.read.parquet(spark_path(str(stats / "samples.parquet")))
    write_json_atomic(str(stats / "summary.json"), summary(spark, samples_written, book, wall_seconds, shards))
    shutil.rmtree(work, ignore_errors=True)
