"""Stage 4, download: fetch or read every unique image once, then join the results back to the pairs.

* URL images: ``pmd.download.download_urls`` (img2dataset's pyspark distributor on this session,
  URL guard, honest User-Agent, noai-style directives). A Visual Genome region given by URL is
  fetched once uncropped (key of the bare URL) and cut with ``process_crop_batch`` on Spark.
* Local paths and archive members: ``pmd.download.local_batches`` on Spark (no network).

Every unique image key ends with one result row (``download_status`` columns + ``jpg``) in
``stages/download/images``; every pair then leaves the stage ``kept`` (downloaded) or ``failed``
with the image's error class. img2dataset's own folder lives in ``DIR/cache/download`` which
survives a killed run, so a rerun reuses its finished shards.
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from pmd.pairs.config import BuildConfig
from pmd.pairs.outcomes import IMAGE_FIELDS, PAIR_FIELDS, PAIR_OUTCOME_SCHEMA
from pmd.pairs.stage_io import StageDir, join, spark_path
from pmd.config import load as load_config
from pmd.records import ImageRef

log = logging.getLogger(__name__)

DOWNLOAD_SCHEMA = pa.schema(list(PAIR_OUTCOME_SCHEMA) + IMAGE_FIELDS)
RESULT_COLUMNS = ("image_key", "url", "status", "error", "error_message", "width", "height",
                  "original_width", "original_height", "sha256", "attempts", "jpg")
CROP_COLS = ("crop_x", "crop_y", "crop_width", "crop_height")


def download_config(cfg: BuildConfig) -> Any:
    from pmd.download import DownloadConfig

    return load_config(DownloadConfig, dict(cfg.download))


def fetch_key(url: str) -> str:
    """Key under which a URL is fetched (uncropped): the image key of the bare URL."""
    return ImageRef(url=url).key()


def url_requests(images: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Unique URL images → (fetch requests ``image_key, url``, crop jobs ``image_key, fetch_key, url, crop...``)."""
    d = images.to_pydict()
    fetch: dict[str, str] = {}
    crops: dict[str, list[Any]] = {k: [] for k in ("image_key", "fetch_key", "url", *CROP_COLS)}
    for i, url in enumerate(d["image_url"]):
        if d["crop_width"][i] is None:
            fetch[d["image_key"][i]] = url
        else:
            fk = fetch_key(url)
            fetch[fk] = url
            for k, v in (("image_key", d["image_key"][i]), ("fetch_key", fk), ("url", url)):
                crops[k].append(v)
            for c in CROP_COLS:
                crops[c].append(d[c][i])
    keys = sorted(fetch)
    req = pa.table({"image_key": pa.array(keys, pa.string()), "url": pa.array([fetch[k] for k in keys], pa.string())})
    return req, pa.table(crops, schema=pa.schema([("image_key", pa.string()), ("fetch_key", pa.string()),
                                                  ("url", pa.string())] + [(c, pa.int32()) for c in CROP_COLS]))


def _results_sql(select_from: str) -> str:
    return ", ".join(RESULT_COLUMNS) + f" FROM {select_from}"


def run_download(spark: Any, cfg: BuildConfig, kept_df: Any, sd: StageDir) -> None:
    from pmd.download import LOCAL_OUTPUT_SCHEMA, download_urls, local_batches, process_crop_batch
    from pmd.spark_adapter import map_batches

    dl = download_config(cfg)
    images = kept_df.select("image_key", "image_url", "image_path", *CROP_COLS).dropDuplicates(["image_key"])
    images.cache()
    parts = []
    # local paths and archive members: read, crop, resize, encode on the executors
    local = images.where("image_path IS NOT NULL").select("image_key", "image_path", *CROP_COLS)
    root = cfg.base_dir if cfg.base_dir and "://" not in cfg.base_dir else None
    parts.append(map_batches(local, local_batches(dl, root=root), LOCAL_OUTPUT_SCHEMA).selectExpr(*RESULT_COLUMNS))
    # URLs: img2dataset on this session
    url_images = images.where("image_url IS NOT NULL").orderBy("image_key").toArrow()
    if url_images.num_rows:
        req, crops = url_requests(url_images)
        fetch_dir = join(sd.out_dir, "cache", "download")
        res = download_urls(spark, req, fetch_dir, dl)
        status = spark.read.parquet(spark_path(str(res.status_path)))
        imgs = spark.read.parquet(spark_path(str(res.images_path)))
        status.createOrReplaceTempView("pmd_dl_status")
        imgs.createOrReplaceTempView("pmd_dl_images")
        fetched = spark.sql("SELECT s.image_key, s.url, s.status, s.error, s.error_message, s.width, s.height, "
                            "s.original_width, s.original_height, s.sha256, s.attempts, i.jpg "
                            "FROM pmd_dl_status s LEFT JOIN pmd_dl_images i ON s.image_key = i.image_key")
        fetched.createOrReplaceTempView("pmd_dl_fetched")
        plain = url_images.filter(pa.compute.is_null(url_images.column("crop_width"))).select(["image_key"])
        if plain.num_rows:
            spark.createDataFrame(plain.to_pandas()).createOrReplaceTempView("pmd_dl_plain")
            parts.append(spark.sql("SELECT f.* FROM pmd_dl_fetched f JOIN pmd_dl_plain p ON f.image_key = p.image_key")
                         .selectExpr(*RESULT_COLUMNS))
        if crops.num_rows:
            spark.createDataFrame(crops.to_pandas()).createOrReplaceTempView("pmd_dl_crops")
            joined = spark.sql(
                "SELECT c.image_key, c.url, f.status AS fetch_status, f.error AS fetch_error, "
                "f.error_message AS fetch_message, f.attempts AS fetch_attempts, f.jpg, f.original_width, "
                "f.original_height, c.crop_x, c.crop_y, c.crop_width, c.crop_height "
                "FROM pmd_dl_crops c JOIN pmd_dl_fetched f ON c.fetch_key = f.image_key")
            joined.createOrReplaceTempView("pmd_dl_crop_joined")
            failed = spark.sql("SELECT image_key, url, 'failed' AS status, fetch_error AS error, "
                               "fetch_message AS error_message, CAST(NULL AS INT) AS width, CAST(NULL AS INT) AS height, "
                               "original_width, original_height, CAST(NULL AS STRING) AS sha256, fetch_attempts AS attempts, "
                               "CAST(NULL AS BINARY) AS jpg FROM pmd_dl_crop_joined WHERE fetch_status <> 'success'")
            ok = joined.where("fetch_status = 'success'").select("image_key", "url", "jpg", "original_width",
                                                                 "original_height", *CROP_COLS)
            cropped = map_batches(ok, lambda it: (process_crop_batch(b, dl) for b in it), LOCAL_OUTPUT_SCHEMA)
            parts += [failed.selectExpr(*RESULT_COLUMNS), cropped.selectExpr(*RESULT_COLUMNS)]
    results = None
    for p in parts:
        if p is not None:
            results = p if results is None else results.unionByName(p)
    results.write.mode("overwrite").parquet(spark_path(sd.sub("images")))
    images.unpersist()
    join_back(spark, kept_df, spark.read.parquet(spark_path(sd.sub("images"))), sd.data)


def join_back(spark: Any, kept_df: Any, results: Any, data_path: str) -> None:
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
