"""``pmd retry-failed DIR``: fetch a finished build's failed URL images again and merge successes in.

Retryable error classes are ``pmd.download.is_transient``'s (timeouts, 5xx, resets, truncated bodies,
generic download errors); with ``all_errors`` every failed URL image is retried (404, not_an_image,
noai...), though the URL guard still refuses what it refused before. Successful retries replace
their rows in ``stages/download/images``; the pairs are joined back again, ``dedup_images`` and
``shard`` are rerun, and stats and a new manifest are written. The download stage's input count is
unchanged, so the books still reconcile: failures simply move to kept.

Every step is a Spark job (the failed images, the requests, the merge); the driver only looks at
the distinct error classes (a handful) to decide which are retryable.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmd.config import from_dict
from pmd.errors import UserError
from pmd.pairs.config import STAGES, BuildConfig, stage_fingerprint
from pmd.pairs.download import RESULT_COLUMNS, download_config
from pmd.spark.pairs.download import fetched_df, join_back, url_images_df, url_requests_df, url_results
from pmd.spark.stages import StageDir, remove, spark_path

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def retryable(error: str | None, all_errors: bool) -> bool:
    from pmd.download import is_transient

    if not error:
        return False
    return all_errors or is_transient(error)


def load_config(out_dir: Path) -> BuildConfig:
    from pmd.shard import read_manifest

    return from_dict(BuildConfig, read_manifest(out_dir)["config"])


def retry_failed(out_dir: str | Path, all_errors: bool = False, timeout: int | None = None,
                 spark: "SparkSession | None" = None) -> dict[str, Any]:
    """Retry, merge, re-shard; returns ``{"retried", "recovered", "still_failed"}``."""
    from pmd.spark.pairs.run import spark_for

    out = Path(out_dir).resolve()
    cfg = load_config(out)
    server = _sample_server(out)
    try:
        spark = spark if spark is not None else spark_for(cfg)
        return _retry(spark, cfg, out, all_errors, timeout)
    finally:
        if server is not None:
            server.stop()


def _sample_server(out: Path) -> Any:
    """A build of the embedded sample fetches from its loopback server: serve it again (on a free
    port, as the base URL its URLs name)."""
    meta = out / "sample" / "sample.json"
    if not meta.exists():
        return None
    from pmd.sample.server import serve_sample

    return serve_sample(out / "sample").start()


def merge_results(old: "DataFrame", new: "DataFrame", fetch_attempts: "DataFrame") -> "DataFrame":
    """Old result rows with the retried ones merged in (``RESULT_COLUMNS``).

    A success replaces the row; a new failure keeps the row with the new error. Attempts add up:
    the old count plus the fetch's (1 when the downloader reports none)."""
    n = new.select(*[new[c].alias(f"n_{c}") for c in RESULT_COLUMNS])
    fa = fetch_attempts.withColumnRenamed("image_key", "n_image_key")
    from pyspark.sql import functions as F

    j = old.join(n.join(fa, "n_image_key", "left"), F.col("image_key") == F.col("n_image_key"), "left")
    exprs = []
    for c in RESULT_COLUMNS:
        if c == "attempts":
            e = ("CASE WHEN n_image_key IS NULL THEN attempts "
                 "ELSE coalesce(attempts, 0) + coalesce(fetch_attempts, 1) END")
        elif c in ("error", "error_message"):
            e = f"CASE WHEN n_image_key IS NULL THEN {c} ELSE n_{c} END"
        else:
            e = f"CASE WHEN n_status = 'success' THEN n_{c} ELSE {c} END"
        exprs.append(f"{e} AS {c}")
    return j.selectExpr(*exprs)


def _retry(spark: "SparkSession", cfg: BuildConfig, out: Path, all_errors: bool, timeout: int | None) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from pmd.download import download_urls

    t0 = time.time()
    dl_sd = StageDir(str(out), "download")
    if not dl_sd.is_done(stage_fingerprint(cfg, "download")):
        raise UserError(f"{out}: the download stage has not finished; run `pmd build` first")
    images_path = dl_sd.sub("images")
    results = spark.read.parquet(spark_path(images_path))
    failed = results.where("status <> 'success'")
    errors = [r["error"] for r in failed.select("error").distinct().collect()]  # error classes, not records
    again = sorted(e for e in errors if retryable(e, all_errors))
    # URL images only: local files do not get better by asking again
    url_images = spark.read.parquet(spark_path(dl_sd.data)).where("image_url IS NOT NULL").select(
        "image_key", "image_url", "crop_x", "crop_y", "crop_width", "crop_height").dropDuplicates(["image_key"])
    todo_keys = failed.where(F.col("error").isin(again)).select("image_key") if again else None
    n_failed = failed.count()
    if todo_keys is None:
        log.info("retry-failed: %d failed images, none retryable", n_failed)
        return {"retried": 0, "recovered": 0, "still_failed": n_failed}
    todo_path = str(out / "cache" / "retry-todo")
    url_images_df(url_images.join(todo_keys, "image_key", "left_semi")).write.mode("overwrite").parquet(
        spark_path(todo_path))
    todo = spark.read.parquet(spark_path(todo_path))
    n_todo = todo.count()
    log.info("retry-failed: %d failed images, %d to retry", n_failed, n_todo)
    if not n_todo:
        return {"retried": 0, "recovered": 0, "still_failed": n_failed}
    dl = download_config(cfg)
    if timeout is not None:
        dl = dataclasses.replace(dl, timeout=timeout)
    attempt_dir = out / "cache" / f"retry-{int(time.time())}"
    res = download_urls(spark, url_requests_df(todo), attempt_dir, dl)
    new = url_results(spark, todo, res, dl)
    fa = todo.join(fetched_df(spark, res).selectExpr("image_key AS fetch_key", "attempts AS fetch_attempts"),
                   "fetch_key").select("image_key", "fetch_attempts")
    # swap the results in: write beside, then replace the directory
    tmp = images_path + ".retry"
    remove(tmp)
    merge_results(results, new, fa).write.parquet(spark_path(tmp))
    recovered = spark.read.parquet(spark_path(tmp)).join(todo.select("image_key"), "image_key", "left_semi") \
        .where("status = 'success'").count()
    remove(images_path)
    Path(tmp).rename(images_path)
    remove(todo_path)
    _rejoin_and_reshard(spark, cfg, out, time.time() - t0)
    return {"retried": n_todo, "recovered": recovered, "still_failed": n_failed - recovered}


def _rejoin_and_reshard(spark: "SparkSession", cfg: BuildConfig, out: Path, seconds: float) -> None:
    from pmd.shard import read_manifest
    from pmd.spark.pairs.dedup_images import run_dedup_images
    from pmd.spark.pairs.manifest import finish_build
    from pmd.spark.pairs.run import pairs_runner
    from pmd.spark.pairs.shards import run_shards

    r = pairs_runner(spark, cfg, str(out))
    for stage in STAGES[:3]:
        r.book = r.book.merge(r.sd(stage).counters())
    dl = r.sd("download")
    old_marker = dl.info()
    (Path(dl.marker)).unlink()  # the stage is being rewritten: no marker until it is consistent again
    new_data = dl.sub("data.retry")
    join_back(spark, r.kept("dedup"), spark.read.parquet(spark_path(dl.sub("images"))), new_data)
    remove(dl.data)
    Path(new_data).rename(dl.data)
    book = r.count_book("download", r.read("download"), r.kept("dedup"))
    dl.commit(stage_fingerprint(cfg, "download"), book, {k: v for k, v in old_marker.items()
                                                       if k not in ("stage", "fingerprint")})
    r.book = r.book.merge(book)
    for stage in ("dedup_images", "shard"):
        remove(r.sd(stage).marker)
    shards: dict[str, Any] = {}
    r.stage("dedup_images", lambda sd: run_dedup_images(spark, cfg, r.kept("download"), sd), "download")
    r.stage("shard", lambda sd: shards.update(run_shards(spark, cfg, r.kept("dedup_images"), sd, str(out))),
            "dedup_images", extra=lambda: {"shards": shards.get("shards", [])})
    r.check_chain(STAGES)
    previous = read_manifest(out)
    finish_build(r, cfg, seconds)
    log.info("retry-failed: %d → %d samples", previous.get("total_samples", 0), read_manifest(out)["total_samples"])
