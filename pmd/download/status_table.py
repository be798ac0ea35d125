"""The status table of a download, built in Spark: exactly one ``download_status`` row per requested key.

Three Parquet datasets meet here, joined by ``image_key`` on the executors:

* the guard's verdicts (``guard_partition`` over the request set: a refused URL, or a null one, ends
  here with its reason and ``attempts = 0``);
* img2dataset's metadata of the finished shards, one row per key (``raw_status_batch``);
* the images parts (a key with an image row is a success, with the stored image's sizes and sha256).

A key allowed by the guard that no finished shard mentions failed as ``missing_from_downloader``
(its shard never finished); that is how a lost shard stays counted instead of vanishing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pmd import schemas
from pmd.download.guard import CHECKED_SCHEMA, UrlPolicy, guard_partition
from pmd.download.raw_shards import RAW_STATUS_SCHEMA, raw_status_batch
from pmd.download.request_set import spark_path
from pmd.spark.batches import map_batches

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

STATUS_COLUMNS = tuple(f.name for f in schemas.load_schema("download_status"))


def write_checked(spark: "SparkSession", request_path: Path, policy: UrlPolicy, out: Path) -> None:
    """The guard's verdict on every request, computed on the executors → Parquet at ``out``."""
    req = spark.read.parquet(spark_path(request_path)).select("image_key", "url")
    map_batches(req, guard_partition(policy), CHECKED_SCHEMA).write.mode("overwrite").parquet(spark_path(out))


def allowed_urls(spark: "SparkSession", checked_path: Path) -> "DataFrame":
    """Distinct allowed URLs, each with all its keys (sorted, space separated): img2dataset's input,
    so a URL asked for by several keys is fetched once."""
    spark.read.parquet(spark_path(checked_path)).createOrReplaceTempView("pmd_dl_checked")
    return spark.sql("SELECT url, concat_ws(' ', array_sort(collect_list(image_key))) AS image_key "
                     "FROM pmd_dl_checked WHERE refused IS NULL AND url IS NOT NULL GROUP BY url")


#: Shards per URL-list file: img2dataset cuts each file into shards of ``samples_per_shard`` URLs and
#: reads one file at a time on the driver, so a file holds at most this many shards' URLs.
SHARDS_PER_FILE = 16


def write_url_list(df: "DataFrame", n_urls: int, samples_per_shard: int, out: Path) -> None:
    """The URL list as a Parquet dataset sorted by URL, in files of up to ``SHARDS_PER_FILE`` shards:
    img2dataset reads one file at a time on the driver (a file bounds its memory), and every shard but
    the last of each file is full (few files, so few short shards)."""
    per_file = samples_per_shard * SHARDS_PER_FILE
    parts = max(1, -(-n_urls // per_file))
    (df.repartitionByRange(parts, "url").sortWithinPartitions("url")
       .write.mode("overwrite").option("maxRecordsPerFile", per_file).parquet(spark_path(out)))


def raw_status(spark: "SparkSession", meta_paths: list[Path]) -> "DataFrame":
    """One row per key of the finished shards' metadata (``RAW_STATUS_SCHEMA``)."""
    if not meta_paths:
        from pyspark.sql.pandas.types import from_arrow_schema

        return spark.createDataFrame([], from_arrow_schema(RAW_STATUS_SCHEMA))
    meta = spark.read.parquet(*[spark_path(p) for p in meta_paths]).select("image_key", "status", "error_message")
    return map_batches(meta, lambda batches: (raw_status_batch(b) for b in batches), RAW_STATUS_SCHEMA)


def assemble_status(spark: "SparkSession", checked_path: Path, raw: "DataFrame", images_path: Path) -> "DataFrame":
    """The ``download_status`` rows: guard verdict, else image present, else img2dataset's error,
    else ``missing_from_downloader``."""
    spark.read.parquet(spark_path(checked_path)).createOrReplaceTempView("pmd_dl_checked")
    raw.createOrReplaceTempView("pmd_dl_raw")
    spark.read.parquet(spark_path(images_path)).createOrReplaceTempView("pmd_dl_images")
    return spark.sql("""
        SELECT c.image_key, c.url,
               CASE WHEN c.refused IS NULL AND i.image_key IS NOT NULL THEN 'success' ELSE 'failed' END AS status,
               CASE WHEN c.refused IS NOT NULL THEN c.refused
                    WHEN i.image_key IS NOT NULL THEN NULL
                    WHEN r.image_key IS NOT NULL THEN r.error
                    ELSE 'missing_from_downloader' END AS error,
               CASE WHEN c.url IS NULL THEN 'no URL'
                    WHEN c.refused IS NOT NULL THEN concat('refused by the URL guard: ', c.refused)
                    WHEN i.image_key IS NOT NULL THEN NULL
                    WHEN r.image_key IS NOT NULL THEN r.error_message
                    ELSE 'img2dataset returned no row for this URL (its shard failed)' END AS error_message,
               CAST(i.width AS INT) AS width, CAST(i.height AS INT) AS height,
               CAST(i.original_width AS INT) AS original_width, CAST(i.original_height AS INT) AS original_height,
               i.sha256,
               CAST(CASE WHEN c.refused IS NOT NULL THEN 0 ELSE 1 END AS INT) AS attempts
        FROM pmd_dl_checked c
        LEFT JOIN pmd_dl_raw r ON c.image_key = r.image_key
        LEFT JOIN (SELECT image_key, width, height, original_width, original_height, sha256 FROM pmd_dl_images) i
               ON c.refused IS NULL AND c.image_key = i.image_key
    """)


def write_status(df: "DataFrame", out: Path) -> None:
    """The status table → Parquet dataset ``out``, globally sorted by ``image_key`` (part order = key order)."""
    df.select(*STATUS_COLUMNS).orderBy("image_key").write.mode("overwrite").parquet(spark_path(out))


def error_counts(spark: "SparkSession", status_path: Path) -> dict[str, int]:
    """error class → keys, ``success`` under ``success``: a Spark aggregate (one row per class)."""
    rows = (spark.read.parquet(spark_path(status_path)).selectExpr("coalesce(error, 'success') AS e")
            .groupBy("e").count().collect())
    return {r["e"]: int(r["count"]) for r in sorted(rows, key=lambda r: r["e"])}


def status_counts(status: pa.Table) -> dict[str, int]:
    """error class → number of keys in a status table held as pyarrow (``success`` counted under ``success``)."""
    import pyarrow.compute as pc

    errors = pc.fill_null(status.column("error"), "success")
    vc = pc.value_counts(errors).to_pylist()
    return {d["values"]: d["counts"] for d in sorted(vc, key=lambda d: d["values"])}
