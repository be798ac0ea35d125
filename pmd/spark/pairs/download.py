"""Stage 4, download, on Spark: requests, fetch, crops and the join back are all DataFrame jobs.

The unique images of the kept pairs are split in Spark: local paths/archive members are read on
the executors (``pmd.download.local_batches``); URL images get their fetch key on the executors
(``pmd.pairs.download.fetch_keys_fn``) and their distinct ``(image_key, url)`` requests go to
``pmd.download.download_urls`` as a DataFrame. Its status and image datasets are joined back in
Spark, crops of fetched images are cut with ``process_crop_batch`` in ``mapInArrow``, and every
pair gets its image's outcome. img2dataset's own folder lives in ``DIR/cache/download``, which
survives a killed run, so a rerun reuses its finished shards.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pmd.pairs.config import BuildConfig
from pmd.pairs.download import CROP_COLS, FETCH_SCHEMA, RESULT_COLUMNS, download_config, fetch_keys_fn
from pmd.pairs.outcomes import PAIR_FIELDS
from pmd.spark.batches import map_batches
from pmd.spark.stages import StageDir, join, spark_path

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def url_images_df(images: "DataFrame") -> "DataFrame":
    """URL images (``image_key, image_url, crop_*``) → ``FETCH_SCHEMA`` rows (fetch key per image)."""
    cols = ["image_key", "image_url", *CROP_COLS]
    return map_batches(images.where("image_url IS NOT NULL").select(*cols), fetch_keys_fn, FETCH_SCHEMA)


def url_requests_df(fetch: "DataFrame") -> "DataFrame":
    """The download requests: one ``(image_key, url)`` per distinct fetch key."""
    return (fetch.selectExpr("fetch_key AS image_key", "url").dropDuplicates(["image_key"]))


def fetched_df(spark: "SparkSession", res: Any) -> "DataFrame":
    """img2dataset's status rows joined with their image bytes (``RESULT_COLUMNS``)."""
    status = spark.read.parquet(spark_path(str(res.status_path)))
    imgs = spark.read.parquet(spark_path(str(res.images_path))).select("image_key", "jpg")
    return status.join(imgs, "image_key", "left").selectExpr(*RESULT_COLUMNS)


def crop_results(fetched: "DataFrame", crops: "DataFrame", dl: Any) -> "DataFrame":
    """Results of cropped URL images: the fetch's failure, or the crop cut on the executors."""
    from pmd.download import LOCAL_OUTPUT_SCHEMA, process_crop_batch

    f = fetched.selectExpr("image_key AS fetch_key", "status AS fetch_status", "error AS fetch_error",
                           "error_message AS fetch_message", "attempts AS fetch_attempts", "jpg",
                           "original_width", "original_height")
    joined = crops.join(f, "fetch_key")
    failed = joined.where("fetch_status <> 'success'").selectExpr(
        "image_key", "url", "'failed' AS status", "fetch_error AS error", "fetch_message AS error_message",
        "CAST(NULL AS INT) AS width", "CAST(NULL AS INT) AS height", "original_width", "original_height",
        "CAST(NULL AS STRING) AS sha256", "fetch_attempts AS attempts", "CAST(NULL AS BINARY) AS jpg")
    ok = joined.where("fetch_status = 'success'").select("image_key", "url", "jpg", "original_width",
                                                         "original_height", *CROP_COLS)
    cropped = map_batches(ok, lambda it: (process_crop_batch(b, dl) for b in it), LOCAL_OUTPUT_SCHEMA)
    return failed.selectExpr(*RESULT_COLUMNS).unionByName(cropped.selectExpr(*RESULT_COLUMNS))


def url_results(spark: "SparkSession", fetch: "DataFrame", res: Any, dl: Any) -> "DataFrame":
    """Result rows of every URL image: plain ones straight from the fetch, crops cut from it."""
    fetched = fetched_df(spark, res)
    plain = fetch.where("crop_width IS NULL").select("image_key")
    crops = fetch.where("crop_width IS NOT NULL").select("image_key", "fetch_key", "url", *CROP_COLS)
    return fetched.join(plain, "image_key", "left_semi").unionByName(crop_results(fetched, crops, dl))


def run_download(spark: "SparkSession", cfg: BuildConfig, kept_df: "DataFrame", sd: StageDir) -> None:
    from pmd.download import LOCAL_OUTPUT_SCHEMA, download_urls, local_batches

    dl = download_config(cfg)
    images = kept_df.select("image_key", "image_url", "image_path", *CROP_COLS).dropDuplicates(["image_key"])
    # local paths and archive members: read, crop, resize, encode on the executors
    local = images.where("image_path IS NOT NULL").select("image_key", "image_path", *CROP_COLS)
    root = cfg.base_dir if cfg.base_dir and "://" not in cfg.base_dir else None
    results = map_batches(local, local_batches(dl, root=root), LOCAL_OUTPUT_SCHEMA).selectExpr(*RESULT_COLUMNS)
    # URLs: requests as a dataset (never a driver dict), fetched by img2dataset on this session
    fetch_path = sd.sub("fetch")
    url_images_df(images).write.mode("overwrite").parquet(spark_path(fetch_path))
    fetch = spark.read.parquet(spark_path(fetch_path))
    if fetch.limit(1).count():
        res = download_urls(spark, url_requests_df(fetch), join(sd.out_dir, "cache", "download"), dl)
        results = results.unionByName(url_results(spark, fetch, res, dl))
    results.write.mode("overwrite").parquet(spark_path(sd.sub("images")))
    join_back(spark, kept_df, spark.read.parquet(spark_path(sd.sub("images"))), sd.data)


def join_back(spark: "SparkSession", kept_df: "DataFrame", results: "DataFrame", data_path: str) -> None:
    """Every pair gets its image's outcome: kept when the image is there, else failed with its error."""
    kept_df.select(*[f.name for f in PAIR_FIELDS]).createOrReplaceTempView("pmd_jb_pairs")
    results.drop("jpg").createOrReplaceTempView("pmd_jb_status")
    pair_cols = ", ".join(f"p.{f.name}" for f in PAIR_FIELDS)
    spark.sql(f"""
        SELECT {pair_cols},
               CASE WHEN s.status = 'success' THEN 'kept' ELSE 'failed' END AS outcome,
               CASE WHEN s.status = 'success' THEN NULL
                    WHEN s.image_key IS NULL THEN 'missing_status'
                    ELSE coalesce(s.error, 'download_error') END AS reason,
               CASE WHEN s.status = 'success' THEN NULL ELSE s.error_message END AS message,
               s.width, s.height, s.original_width, s.original_height, s.sha256
        FROM pmd_jb_pairs p LEFT JOIN pmd_jb_status s ON p.image_key = s.image_key
    """).write.mode("overwrite").parquet(spark_path(data_path))
