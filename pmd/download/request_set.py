"""The request set of one download: distinct ``image_key → url`` rows, checked and fingerprinted in Spark.

A request arrives as a Spark DataFrame (or, until every caller is a DataFrame, a pyarrow Table or a
Parquet path). It is collapsed by key on the executors - identical repeats are one request, a key
asked for with two different URLs is a user error - and written once to the download's work folder,
so every later step (guard, URL list, status table) reads the same small Parquet dataset instead of
recomputing the caller's plan. The fingerprint that decides whether a finished result or an
interrupted run's work can be reused is an order-independent aggregate computed by Spark: the
driver sees three numbers, never the rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pmd.download.config import DownloadConfig
from pmd.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

REQUEST_COLUMNS = ("image_key", "url")

#: Config fields that change only speed or housekeeping, not what is downloaded: not fingerprinted.
NOT_FINGERPRINTED = frozenset({"thread_count", "processes_count", "subjob_size", "max_shard_retry", "keep_raw"})


def spark_path(path: str | os.PathLike[str]) -> str:
    """A local path as Spark reads and writes it (absolute); URLs pass unchanged."""
    s = os.fspath(path)
    return s if "://" in s else os.path.abspath(s)


def as_request_frame(spark: "SparkSession", requests: Any) -> "DataFrame":
    """``requests`` (DataFrame, pyarrow Table, or Parquet file/directory) as a DataFrame of string
    columns ``image_key, url``; other columns are dropped. Missing columns are a ``UserError``."""
    if isinstance(requests, pa.Table):
        missing = [c for c in REQUEST_COLUMNS if c not in requests.column_names]
        if missing:
            raise UserError(f"download request lacks columns {missing} (needs image_key, url)")
        table = requests.select(list(REQUEST_COLUMNS)).cast(
            pa.schema([("image_key", pa.string()), ("url", pa.string())]))
        df = spark.createDataFrame(table) if table.num_rows else spark.createDataFrame(
            [], "image_key string, url string")
    elif hasattr(requests, "sparkSession") and hasattr(requests, "select"):
        df = requests
    else:
        path = Path(requests)
        if not path.exists():
            raise UserError(f"download request {path} does not exist")
        df = spark.read.parquet(spark_path(path))
    missing = [c for c in REQUEST_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"download request lacks columns {missing} (needs image_key, url)")
    return df.selectExpr("CAST(image_key AS STRING) AS image_key", "CAST(url AS STRING) AS url")


def write_request_set(df: "DataFrame", path: Path) -> None:
    """One row per key (``image_key, url, n_urls, has_null``) → Parquet at ``path`` (overwritten).
    ``n_urls`` counts the key's distinct non-null URLs and ``has_null`` says whether it was also
    requested without one, so ``request_conflict`` can name a key asked for two ways."""
    from pyspark.sql import functions as F

    (df.groupBy("image_key")
       .agg(F.min("url").alias("url"), F.countDistinct("url").cast("int").alias("n_urls"),
            F.max(F.col("url").isNull().cast("int")).alias("has_null"))
       .sortWithinPartitions("image_key")
       .write.mode("overwrite").parquet(spark_path(path)))


def inspect_request_set(spark: "SparkSession", path: Path, cfg: DownloadConfig) -> tuple[str, int]:
    """(fingerprint, number of keys) of the request set at ``path`` under the config fields that shape
    the result, in one Spark aggregate; a ``UserError`` for a row without key or a key requested with
    two URLs (or with and without one). The rows enter the fingerprint as an order-independent sum of
    their sha256 values: the driver sees a few numbers, never the rows."""
    df = spark.read.parquet(spark_path(path))
    h = "sha2(concat(image_key, '\\t', coalesce(url, '\\u0000')), 256)"
    agg = df.selectExpr("image_key", f"{h} AS h", "n_urls > 1 OR (n_urls = 1 AND has_null = 1) AS conflict").selectExpr(
        "count(*) AS n",
        "CAST(sum(CAST(conv(substr(h, 1, 15), 16, 10) AS DECIMAL(38, 0))) AS STRING) AS a",
        "CAST(sum(CAST(conv(substr(h, 16, 15), 16, 10) AS DECIMAL(38, 0))) AS STRING) AS b",
        "CAST(sum(CAST(conv(substr(h, 31, 15), 16, 10) AS DECIMAL(38, 0))) AS STRING) AS c",
        "count_if(image_key IS NULL) AS null_keys",
        "min(CASE WHEN conflict THEN image_key END) AS conflict_key",
    ).collect()[0]
    if agg["null_keys"]:
        raise UserError("download request has rows without image_key")
    if agg["conflict_key"] is not None:
        row = df.where(df.image_key == agg["conflict_key"]).first()
        raise UserError(f"image_key {row['image_key']} is requested with two URLs "
                        f"({row['n_urls'] + row['has_null']} distinct, one of them {row['url']!r})")
    fields = {k: v for k, v in asdict(cfg).items() if k not in NOT_FINGERPRINTED}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode())
    digest.update(f"{agg['n']}:{agg['a']}:{agg['b']}:{agg['c']}".encode())
    return digest.hexdigest(), int(agg["n"])
