"""Stage 5, dedup after download: one image per content, every caption kept.

Images with the same sha256 of their stored JPEG (or, with ``method: dhash``, dHashes within
``max_distance`` bits) are one image; every pair of the group is pointed at the group's canonical
image — the lowest (source priority, image_key), chosen by ``pmd.download.canonical_images`` — so
the shards store it once per pair key but the stats count it once. Nothing is dropped here:
``image_key`` becomes the canonical key and ``source_image_key`` keeps the pair's own.
"""

from __future__ import annotations

from typing import Any, Iterator

import pyarrow as pa

from pmd.pairs.config import BuildConfig
from pmd.pairs.outcomes import PAIR_FIELDS
from pmd.pairs.stage_io import StageDir, spark_path

DHASH_SCHEMA = pa.schema([pa.field("image_key", pa.string()), pa.field("phash", pa.int64())])


def dhash_fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``image_key, jpg`` → ``image_key, phash`` (64-bit dHash as a signed int64)."""
    from pmd.download import dhash64

    for b in batches:
        d = b.to_pydict()
        hashes = []
        for jpg in d["jpg"]:
            try:
                h = dhash64(jpg)
                hashes.append(h - (1 << 64) if h >= 1 << 63 else h)
            except Exception:  # noqa: BLE001 - an undecodable image just has no perceptual hash
                hashes.append(None)
        yield pa.RecordBatch.from_pydict({"image_key": d["image_key"], "phash": hashes}, schema=DHASH_SCHEMA)


def canonical_map(rows: list[tuple[str, str | None, int | None, int]], method: str, max_distance: int) -> dict[str, str]:
    from pmd.download import canonical_images

    return canonical_images(rows, max_distance=max_distance if method == "dhash" else 0,
                            use_phash=method == "dhash")


def run_dedup_images(spark: Any, cfg: BuildConfig, kept_df: Any, sd: StageDir) -> None:
    from pmd.spark_adapter import map_batches

    prio = cfg.priority()
    case = "CASE source " + " ".join(f"WHEN '{s}' THEN {i}" for s, i in prio.items()) + f" ELSE {len(prio)} END"
    kept_df.createOrReplaceTempView("pmd_di_pairs")
    per_image = spark.sql(f"SELECT image_key, first(sha256) AS sha256, min({case}) AS priority "
                          "FROM pmd_di_pairs GROUP BY image_key")
    results = spark.read.parquet(spark_path(StageDir(sd.out_dir, "download").sub("images")))
    if cfg.dedup_images.method == "dhash":
        ok = results.where("status = 'success'").select("image_key", "jpg")
        hashes = map_batches(ok, dhash_fn, DHASH_SCHEMA)
        per_image = per_image.join(hashes, "image_key", "left")
    else:
        per_image = per_image.selectExpr("*", "CAST(NULL AS BIGINT) AS phash")
    rows = [(r["image_key"], r["sha256"], None if r["phash"] is None else int(r["phash"]) & ((1 << 64) - 1),
             int(r["priority"])) for r in per_image.orderBy("image_key").collect()]
    mapping = canonical_map(rows, cfg.dedup_images.method, cfg.dedup_images.max_distance)
    schema = "image_key string, canonical string"
    spark.createDataFrame(sorted(mapping.items()), schema).createOrReplaceTempView("pmd_di_map")
    results.drop("jpg").createOrReplaceTempView("pmd_di_images")
    pair_cols = ", ".join(f"p.{f.name}" for f in PAIR_FIELDS if f.name != "image_key")
    spark.sql(f"""
        SELECT {pair_cols}, coalesce(m.canonical, p.image_key) AS image_key, p.image_key AS source_image_key,
               'kept' AS outcome, CAST(NULL AS STRING) AS reason, CAST(NULL AS STRING) AS message,
               coalesce(i.width, p.width) AS width, coalesce(i.height, p.height) AS height,
               coalesce(i.original_width, p.original_width) AS original_width,
               coalesce(i.original_height, p.original_height) AS original_height,
               coalesce(i.sha256, p.sha256) AS sha256
        FROM pmd_di_pairs p
        LEFT JOIN pmd_di_map m ON p.image_key = m.image_key
        LEFT JOIN pmd_di_images i ON m.canonical = i.image_key
    """).write.mode("overwrite").parquet(spark_path(sd.data))
