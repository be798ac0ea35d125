"""``download_urls``: fetch the images of a request DataFrame with img2dataset, every step a Spark job.

The driver plans, counts and commits; no per-record data passes through it:

1. the request (``image_key, url``) is collapsed by key and written to ``out/_work/requests``
   (``pmd.download.request_set``), checked for conflicts and fingerprinted by Spark aggregates;
2. the URL guard runs on the executors (``pmd.download.guard.guard_partition``, host verdicts cached
   per task) → ``_work/checked``; the connect-time peer check in every fetch still defends against
   DNS rebinding (``pmd.download.fetch_hooks``);
3. the distinct allowed URLs, each with all its keys, are written by Spark as a Parquet dataset
   (``_work/urls``) that img2dataset reads (``input_format="parquet"``, one file ≤ 16 shards);
4. img2dataset downloads on this SparkSession (``pmd.download.img2dataset_adapter``); each task turns
   its finished shard into ``images/part-NNNNN.parquet`` (``pmd.download.raw_shards``);
5. img2dataset's per-shard metadata and the images parts are read back with ``spark.read.parquet``
   and joined to the checked requests by key (``pmd.download.status_table``) → ``status/``, exactly
   one ``download_status`` row per requested key;
6. ``_SUCCESS`` (JSON: fingerprint and counts) is written last. A rerun of the same request finds it
   and returns at once; a rerun after a crash reuses the work folder and img2dataset's finished shards.

``out`` must be on storage every executor shares (local disk in local mode), as img2dataset's own
output must be. Scripts calling this guard their entry point with ``if __name__ == "__main__":``
(img2dataset spawns its logger process).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmd.download.config import DownloadConfig
from pmd.download.img2dataset_adapter import run_img2dataset
from pmd.download.raw_shards import IMAGES_SCHEMA, finished_raw_shards, normalise_shard, part_path, write_empty_part
from pmd.download.request_set import as_request_frame, inspect_request_set, spark_path, write_request_set
from pmd.download.status_table import (STATUS_COLUMNS, allowed_urls, assemble_status, error_counts, raw_status,
                                       status_counts, write_checked, write_status, write_url_list)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

__all__ = ["IMAGES_SCHEMA", "DownloadConfig", "DownloadResult", "download_urls", "status_counts"]

STATUS_DIR = "status"
IMAGES_DIR = "images"
SUCCESS_FILE = "_SUCCESS"
RAW_DIR = "_img2dataset"
WORK_DIR = "_work"


@dataclass(frozen=True)
class DownloadResult:
    """Where the outputs are (Parquet datasets, directories) and their counts (``errors``: error class
    → failed keys). ``status_df``/``images_df``/``results_df`` read them as Spark DataFrames."""

    status_path: Path
    images_path: Path
    n_requested: int = 0
    n_success: int = 0
    n_failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    resumed: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def n_downloaded(self) -> int:
        return self.n_success

    def status_df(self, spark: "SparkSession") -> "DataFrame":
        return spark.read.parquet(spark_path(self.status_path))

    def images_df(self, spark: "SparkSession") -> "DataFrame":
        return spark.read.parquet(spark_path(self.images_path))

    def results_df(self, spark: "SparkSession") -> "DataFrame":
        """Status rows with their image: the ``download_status`` columns + ``jpg`` (null when failed),
        the column order of ``pmd.download.LOCAL_OUTPUT_SCHEMA``."""
        status = self.status_df(spark).alias("s")
        images = self.images_df(spark).select("image_key", "jpg").alias("i")
        return (status.join(images, status["image_key"] == images["image_key"], "left")
                .select(*[f"s.{c}" for c in STATUS_COLUMNS], "i.jpg"))


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _finished_result(out: Path, fp: str) -> DownloadResult | None:
    marker_path = out / SUCCESS_FILE
    if not marker_path.exists():
        return None
    try:
        marker = json.loads(marker_path.read_text())
    except (OSError, json.JSONDecodeError):
        marker = {}
    if marker.get("fingerprint") == fp and (out / STATUS_DIR).is_dir() and (out / IMAGES_DIR).is_dir():
        return DownloadResult(out / STATUS_DIR, out / IMAGES_DIR, marker["n_requested"], marker["n_success"],
                              marker["n_failed"], dict(marker.get("errors", {})), resumed=True)
    marker_path.unlink()
    return None


def _done(path: Path) -> bool:
    """A Spark output committed (Spark writes ``_SUCCESS`` after the data)."""
    return (path / "_SUCCESS").exists()


def _normalise_missing(spark: "SparkSession", raw: Path, names: list[str], images: Path) -> None:
    """Images parts for finished shards whose task did not make one, made on the executors."""
    import pyarrow as pa

    from pmd.spark.batches import map_batches

    schema = pa.schema([("name", pa.string())])
    raw_s, images_s = str(raw), str(images)

    def make(batches):  # type: ignore[no-untyped-def]
        for b in batches:
            for name in b.column("name").to_pylist():
                normalise_shard(Path(raw_s), name, Path(images_s))
            yield b

    df = spark.createDataFrame([(n,) for n in names], "name string").repartition(len(names))
    map_batches(df, make, schema).collect()  # one shard name per row back: nothing per record


def download_urls(spark: "SparkSession", requests: "DataFrame | Any", out_dir: str | os.PathLike[str],
                  cfg: DownloadConfig = DownloadConfig()) -> DownloadResult:
    """Download the images of ``requests`` (columns ``image_key`` string, ``url`` string) into ``out_dir``.

    ``requests`` is a Spark DataFrame (also accepted: a pyarrow Table, a Parquet file or directory).
    Identical repeated rows collapse; a key with two URLs, or a null key, is a ``UserError``.
    ``spark`` is the caller's live SparkSession: the guard, img2dataset and the status join run on it.
    Returns the ``status/`` dataset (one row per distinct requested key, schema ``download_status``)
    and the ``images/`` dataset (``IMAGES_SCHEMA``, one row per successful key), both directories
    read with ``spark.read.parquet`` (or ``pq.read_table``). Refused URLs fail as ``url_refused_*``,
    ``bad_url`` or ``unresolvable_host`` without a fetch (``attempts`` 0); duplicate URLs are fetched
    once; keys img2dataset lost fail as ``missing_from_downloader``; budgets fail as
    ``image_too_large``, ``response_too_large`` and ``download_deadline``.
    Idempotent: an ``out_dir`` holding a finished result for the same request is returned as is.
    """
    if spark is None:
        raise ValueError("download_urls needs a SparkSession (the URL guard runs on its executors)")
    out = Path(out_dir)
    work, raw, images, status_dir = out / WORK_DIR, out / RAW_DIR, out / IMAGES_DIR, out / STATUS_DIR
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    req_path = work / "requests"
    write_request_set(as_request_frame(spark, requests), req_path)
    fp, n_keys = inspect_request_set(spark, req_path, cfg)  # raises UserError for a conflicting request
    finished = _finished_result(out, fp)
    if finished is not None:
        log.info("download: %s already holds this result; skipping", out)
        return finished

    fp_file, checked, url_dir = work / "request.sha256", work / "checked", work / "urls"
    if not fp_file.exists() or fp_file.read_text().strip() != fp:
        if raw.exists() or images.exists():
            log.info("download: %s holds a different request; starting it over", out)
        for d in (checked, url_dir, raw, images, status_dir):
            shutil.rmtree(d, ignore_errors=True)  # images parts are only valid beside their raw shards
        fp_file.write_text(fp + "\n")
    if not _done(checked):
        write_checked(spark, req_path, cfg.policy, checked)
    t1 = time.perf_counter()
    if not _done(url_dir):
        urls = allowed_urls(spark, checked)
        n_urls = urls.count()
        write_url_list(urls, n_urls, cfg.samples_per_shard, url_dir)
    else:  # a rerun after a crash: the list of that run (same shards for img2dataset to reuse)
        n_urls = spark.read.parquet(spark_path(url_dir)).count()
    log.info("download: %d keys, %d distinct URLs allowed by the guard", n_keys, n_urls)
    images.mkdir(parents=True, exist_ok=True)
    if n_urls:
        run_img2dataset(spark, url_dir, raw, images, cfg)
    t2 = time.perf_counter()

    metas = finished_raw_shards(raw) if raw.exists() else []
    missing = [p.stem for p in metas if not part_path(images, p.stem).exists()]
    if missing:
        _normalise_missing(spark, raw, missing, images)
    write_empty_part(images)
    write_status(assemble_status(spark, checked, raw_status(spark, metas), images), status_dir)
    counts = error_counts(spark, status_dir)
    n_success = counts.pop("success", 0)
    n_requested = n_success + sum(counts.values())
    if n_requested != n_keys:  # the books must balance: one status row per requested key
        raise RuntimeError(f"download status has {n_requested} rows for {n_keys} requested keys")
    marker = {"fingerprint": fp, "n_requested": n_requested, "n_success": n_success,
              "n_failed": n_requested - n_success, "errors": counts}
    _write_json_atomic(out / SUCCESS_FILE, marker)
    if not cfg.keep_raw:
        shutil.rmtree(raw, ignore_errors=True)
        for d in (checked, url_dir, req_path):
            shutil.rmtree(d, ignore_errors=True)
        fp_file.unlink(missing_ok=True)
    timings = {"plan_guard_s": round(t1 - t0, 3), "img2dataset_s": round(t2 - t1, 3),
               "status_s": round(time.perf_counter() - t2, 3)}
    log.info("download: %d ok, %d failed %s; %s", n_success, n_requested - n_success,
             dict(sorted(counts.items(), key=lambda kv: -kv[1])[:8]), timings)
    return DownloadResult(status_dir, images, n_requested, n_success, n_requested - n_success, counts,
                          resumed=False, timings=timings)
