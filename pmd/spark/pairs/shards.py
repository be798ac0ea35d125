"""Stage 6, shard, on Spark: deterministic positions, one task per shard writes its tar and sidecar.

Samples are sorted by key (= pair id) over the whole build and cut into runs of
``samples_per_shard``: shard N holds sorted positions ``[N*k, (N+1)*k)`` (``zipWithIndex`` over the
sorted ids: exact and partition-independent). Rows are range-partitioned by shard index (one
shard per task, never split) and streamed into ``pmd.pairs.shards.write_shards_fn``, which writes
through ``pmd.shard``'s tar writer (temp name, then rename). The driver only collects one metadata
row per shard, for the manifest. A pair whose image bytes are missing fails with ``image_missing``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmd.pairs.config import BuildConfig
from pmd.pairs.outcomes import FAILED
from pmd.pairs.shards import SHARD_OUT_SCHEMA, write_shards_fn
from pmd.spark.batches import map_batches
from pmd.spark.stages import StageDir, spark_path

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession


def shard_positions(spark: "SparkSession", ids: "DataFrame", samples_per_shard: int) -> "DataFrame":
    """``pos_id, shard_index`` for every id: its rank in key order, divided by the shard size."""
    k = samples_per_shard
    ranked = ids.select("id").orderBy("id").rdd.map(lambda r: r[0]).zipWithIndex()
    return spark.createDataFrame(ranked.map(lambda t: (t[0], t[1] // k)), "pos_id string, shard_index long")


def shard_list(written: "DataFrame") -> list[dict[str, Any]]:
    """The manifest's shard entries: one small row per shard (never per sample), in index order."""
    rows = (written.where("shard IS NOT NULL")
            .select("shard_index", "shard", "shard_samples", "shard_bytes", "shard_sha256").distinct().collect())
    shards = [{"path": r["shard"], "parquet": r["shard"][:-len(".tar")] + ".parquet", "samples": int(r["shard_samples"]),
               "bytes": int(r["shard_bytes"]), "sha256": r["shard_sha256"]}
              for r in sorted(rows, key=lambda r: r["shard_index"])]
    if len({s["path"] for s in shards}) != len(shards):
        raise RuntimeError("a shard was written twice with different contents (non-deterministic input?)")
    return shards


def run_shards(spark: "SparkSession", cfg: BuildConfig, kept_df: "DataFrame", sd: StageDir,
               out_dir: str) -> dict[str, Any]:
    """Assign sorted positions, write the shards on the executors, return the manifest's shard list."""
    if "://" in out_dir:
        from pmd.errors import UserError

        raise UserError("shards are written with local file APIs: use a local or mounted (NFS/FUSE) --out "
                        "directory, then sync it to object storage (docs/cluster.md)")
    shard_dir = str(Path(out_dir) / "shards")
    shutil.rmtree(shard_dir, ignore_errors=True)  # leftovers of a killed or differently-configured run
    Path(shard_dir).mkdir(parents=True, exist_ok=True)
    k = cfg.shard.samples_per_shard
    images = spark.read.parquet(spark_path(StageDir(out_dir, "download").sub("images")))
    kept_df.createOrReplaceTempView("pmd_shard_in")
    images.createOrReplaceTempView("pmd_shard_images")
    joined = spark.sql("SELECT p.*, i.jpg FROM pmd_shard_in p LEFT JOIN pmd_shard_images i "
                       "ON p.image_key = i.image_key")
    missing = joined.where("jpg IS NULL").selectExpr(
        "id", "source", f"'{FAILED}' AS outcome", "'image_missing' AS reason",
        "concat('no image bytes for ', image_key) AS message", "CAST(NULL AS STRING) AS shard",
        "CAST(NULL AS BIGINT) AS shard_index", "CAST(NULL AS BIGINT) AS shard_samples",
        "CAST(NULL AS BIGINT) AS shard_bytes", "CAST(NULL AS STRING) AS shard_sha256")
    good = joined.where("jpg IS NOT NULL")
    pos = shard_positions(spark, good, k)
    n_shards = max(1, -(-pos.count() // k))  # a count, planned on the driver
    ordered = (good.join(pos, good["id"] == pos["pos_id"]).drop("pos_id")
               .repartitionByRange(n_shards, "shard_index")
               .sortWithinPartitions("shard_index", "id"))
    written = map_batches(ordered, write_shards_fn(shard_dir, cfg.shard.prefix), SHARD_OUT_SCHEMA)
    written.unionByName(missing).write.mode("overwrite").parquet(spark_path(sd.data))
    return {"shards": shard_list(spark.read.parquet(spark_path(sd.data)))}
