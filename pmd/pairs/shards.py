"""Stage 6, shard: the final pairs as reproducible WebDataset tars plus Parquet sidecars.

Order and keys are deterministic: samples are sorted by key (= pair id) over the whole build and
cut into runs of ``samples_per_shard``; shard N holds sorted positions ``[N*k, (N+1)*k)``. So the
same pairs give the same shards whatever the partitioning (local or cluster). Each Spark task
streams its rows (sorted by shard, key) into ``pmd.shard.write_tar_shard`` and writes the sidecar;
a pair whose image bytes are missing fails with ``image_missing`` and takes no position.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from pmd.pairs.config import BuildConfig
from pmd.pairs.outcomes import FAILED, KEPT
from pmd.pairs.stage_io import StageDir, spark_path
from pmd.ids import shard_name

SIDE_SCHEMA = pa.schema([
    pa.field("key", pa.string()), pa.field("shard", pa.string()), pa.field("id", pa.string()),
    pa.field("source", pa.string()), pa.field("text", pa.string()), pa.field("image_key", pa.string()),
    pa.field("image_url", pa.string()), pa.field("image_path", pa.string()),
    pa.field("crop", pa.struct([pa.field("x", pa.int32()), pa.field("y", pa.int32()),
                                pa.field("width", pa.int32()), pa.field("height", pa.int32())])),
    pa.field("width", pa.int32()), pa.field("height", pa.int32()),
    pa.field("original_width", pa.int32()), pa.field("original_height", pa.int32()),
    pa.field("sha256", pa.string()), pa.field("lang", pa.string()), pa.field("lang_score", pa.float32()),
    pa.field("meta", pa.string()),
])

# one row per sample of the stage: what went where, plus its shard's facts (repeated per row)
SHARD_OUT_SCHEMA = pa.schema([
    pa.field("id", pa.string()), pa.field("source", pa.string()), pa.field("outcome", pa.string()),
    pa.field("reason", pa.string()), pa.field("message", pa.string()), pa.field("shard", pa.string()),
    pa.field("shard_index", pa.int64()), pa.field("shard_samples", pa.int64()),
    pa.field("shard_bytes", pa.int64()), pa.field("shard_sha256", pa.string()),
])

JSON_FIELDS = ("id", "source", "text", "image_key", "image_url", "image_path", "crop", "width", "height",
               "original_width", "original_height", "sha256", "lang", "lang_score", "meta")


def sample_json(row: dict[str, Any]) -> dict[str, Any]:
    """The ``{key}.json`` member: the pair's fields (meta as an object; crop as a box or null)."""
    crop = None
    if row.get("crop_width") is not None:
        crop = {"x": row["crop_x"], "y": row["crop_y"], "width": row["crop_width"], "height": row["crop_height"]}
    d = {k: row.get(k) for k in JSON_FIELDS if k not in ("crop", "meta")}
    d["crop"] = crop
    d["meta"] = json.loads(row.get("meta") or "{}")
    if d.get("image_url") is None:
        d.pop("image_url")
    else:
        d.pop("image_path")
    return d


def sidecar_row(row: dict[str, Any], shard: str) -> dict[str, Any]:
    j = sample_json(row)
    return {**{f.name: row.get(f.name) for f in SIDE_SCHEMA}, "key": row["id"], "shard": shard,
            "crop": j["crop"], "meta": row.get("meta") or "{}"}


def sample_members(row: dict[str, Any]) -> dict[str, bytes]:
    return {
        "jpg": bytes(row["jpg"]),
        "txt": row["text"].encode("utf-8"),
        "json": json.dumps(sample_json(row), ensure_ascii=False, sort_keys=True).encode("utf-8"),
    }


def write_shards_fn(shard_dir: str, prefix: str):
    """``mapInArrow`` function: rows sorted by (shard_index, id) → tars + sidecars, one out row per sample."""

    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pmd.shard import write_parquet_sidecar, write_tar_shard

        def rows() -> Iterator[dict[str, Any]]:
            for b in batches:
                yield from b.to_pylist()

        it = rows()
        pending = next(it, None)
        while pending is not None:
            idx = pending["shard_index"]
            name = shard_name(prefix, idx)
            group: list[dict[str, Any]] = []

            def samples() -> Iterator[tuple[str, dict[str, bytes]]]:
                nonlocal pending
                while pending is not None and pending["shard_index"] == idx:
                    row = pending
                    group.append({k: v for k, v in row.items() if k != "jpg"})
                    yield row["id"], sample_members(row)
                    pending = next(it, None)

            info = write_tar_shard(Path(shard_dir) / f"{name}.tar", samples(), ext_order=("jpg", "txt", "json"))
            write_parquet_sidecar(Path(shard_dir) / f"{name}.parquet",
                                  [sidecar_row(r, f"shards/{name}.tar") for r in group], SIDE_SCHEMA)
            out = [{"id": r["id"], "source": r["source"], "outcome": KEPT, "reason": None, "message": None,
                    "shard": f"shards/{name}.tar", "shard_index": idx, "shard_samples": info.samples,
                    "shard_bytes": info.bytes, "shard_sha256": info.sha256} for r in group]
            yield pa.RecordBatch.from_pylist(out, schema=SHARD_OUT_SCHEMA)

    return fn


def run_shards(spark: Any, cfg: BuildConfig, kept_df: Any, sd: StageDir, out_dir: str) -> dict[str, Any]:
    """Assign sorted positions, write the shards on the executors, return the manifest's shard list."""
    from pmd.spark_adapter import map_batches

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
    # global sorted positions: zipWithIndex over the ids sorted by key (exact, partition-independent)
    ids = good.select("id").orderBy("id").rdd.map(lambda r: r[0]).zipWithIndex()
    pos = spark.createDataFrame(ids.map(lambda t: (t[0], t[1] // k)), "pos_id string, shard_index long")
    ordered = (good.join(pos, good["id"] == pos["pos_id"]).drop("pos_id")
               .repartition(max(1, min(64, cfg.spark.shuffle_partitions)), "shard_index")
               .sortWithinPartitions("shard_index", "id"))
    written = map_batches(ordered, write_shards_fn(shard_dir, cfg.shard.prefix), SHARD_OUT_SCHEMA)
    written.unionByName(missing).write.mode("overwrite").parquet(spark_path(sd.data))
    rows = (spark.read.parquet(spark_path(sd.data)).where("shard IS NOT NULL")
            .select("shard_index", "shard", "shard_samples", "shard_bytes", "shard_sha256").distinct().collect())
    shards = [{"path": r["shard"], "parquet": r["shard"][:-len(".tar")] + ".parquet", "samples": int(r["shard_samples"]),
               "bytes": int(r["shard_bytes"]), "sha256": r["shard_sha256"]}
              for r in sorted(rows, key=lambda r: r["shard_index"])]
    if len({s["path"] for s in shards}) != len(shards):
        raise RuntimeError("a shard was written twice with different contents (non-deterministic input?)")
    return {"shards": shards}
