"""``pmd retry-failed DIR``: fetch a finished build's failed URL images again and merge successes in.

Retryable error classes are ``pmd.download.is_transient``'s (timeouts, 5xx, resets, truncated bodies,
generic download errors); with ``all_errors`` every failed URL image is retried (404, not_an_image,
noai...), though the URL guard still refuses what it refused before. Successful retries replace
their rows in ``stages/download/images``; the pairs are joined back again, ``dedup_images`` and
``shard`` are rerun, and stats and a new manifest are written. The download stage's input count is
unchanged, so the books still reconcile: failures simply move to kept.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pmd.pairs import stage_io
from pmd.pairs.config import STAGES, BuildConfig, stage_fingerprint
from pmd.pairs.counting import check_books, stage_book
from pmd.pairs.download import CROP_COLS, RESULT_COLUMNS, download_config, fetch_key, join_back
from pmd.pairs.stage_io import StageDir, spark_path
from pmd.config import from_dict
from pmd.errors import UserError

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
                 spark: Any = None) -> dict[str, Any]:
    """Retry, merge, re-shard; returns ``{"retried", "recovered", "still_failed"}``."""
    from pmd.pairs.run import Runner, spark_for

    out = Path(out_dir).resolve()
    cfg = load_config(out)
    server = _sample_server(out)
    try:
        spark = spark if spark is not None else spark_for(cfg)
        return _retry(spark, cfg, out, all_errors, timeout, Runner)
    finally:
        if server is not None:
            server.stop()


def _sample_server(out: Path) -> Any:
    """A build of the embedded sample fetches from its loopback server: serve it again on its port."""
    meta = out / "sample" / "sample.json"
    if not meta.exists():
        return None
    from pmd.sample.server import ImageServer

    base_url = json.loads(meta.read_text(encoding="utf-8"))["base_url"]
    return ImageServer(out / "sample", port=int(base_url.rsplit(":", 1)[1].split("/")[0])).start()


def _retry(spark: Any, cfg: BuildConfig, out: Path, all_errors: bool, timeout: int | None, runner_cls: Any) -> dict[str, Any]:
    from pmd.download import LOCAL_OUTPUT_SCHEMA, download_urls, process_crop_batch

    t0 = time.time()
    dl_sd = StageDir(str(out), "download")
    if not dl_sd.is_done(stage_fingerprint(cfg, "download")):
        raise UserError(f"{out}: the download stage has not finished; run `pmd build` first")
    images_path = dl_sd.sub("images")
    results = pq.read_table(images_path)
    rows = results.to_pylist()
    # URL images only: local files do not get better by asking again
    pairs_df = spark.read.parquet(spark_path(dl_sd.data))
    url_keys = {r["image_key"]: r for r in pairs_df.where("image_url IS NOT NULL")
                .select("image_key", "image_url", *CROP_COLS).dropDuplicates(["image_key"]).collect()}
    todo = [r for r in rows if r["status"] != "success" and r["image_key"] in url_keys
            and retryable(r["error"], all_errors)]
    log.info("retry-failed: %d failed images, %d to retry", sum(r["status"] != "success" for r in rows), len(todo))
    if not todo:
        return {"retried": 0, "recovered": 0, "still_failed": sum(r["status"] != "success" for r in rows)}
    dl = download_config(cfg)
    if timeout is not None:
        dl = dataclasses.replace(dl, timeout=timeout)
    fetch: dict[str, str] = {}
    for r in todo:
        u = url_keys[r["image_key"]]
        fetch[r["image_key"] if u["crop_width"] is None else fetch_key(u["image_url"])] = u["image_url"]
    req = pa.table({"image_key": sorted(fetch), "url": [fetch[k] for k in sorted(fetch)]})
    attempt_dir = out / "cache" / f"retry-{int(time.time())}"
    res = download_urls(spark, req, attempt_dir, dl)
    status = {r["image_key"]: r for r in pq.read_table(res.status_path).to_pylist()}
    jpgs = {r["image_key"]: r for r in pq.read_table(res.images_path).to_pylist()}
    new: dict[str, dict[str, Any]] = {}
    for r in todo:
        u = url_keys[r["image_key"]]
        fk = r["image_key"] if u["crop_width"] is None else fetch_key(u["image_url"])
        s = status[fk]
        attempts = (r.get("attempts") or 0) + (s.get("attempts") or 1)
        if s["status"] != "success":
            new[r["image_key"]] = {**r, "error": s["error"], "error_message": s["error_message"], "attempts": attempts}
            continue
        img = jpgs[fk]
        row = {**s, "image_key": r["image_key"], "url": u["image_url"], "attempts": attempts, "jpg": img["jpg"]}
        if u["crop_width"] is not None:
            batch = pa.RecordBatch.from_pylist([{"image_key": r["image_key"], "url": u["image_url"], "jpg": img["jpg"],
                                                 "original_width": img["original_width"],
                                                 "original_height": img["original_height"],
                                                 **{c: u[c] for c in CROP_COLS}}])
            row = {**process_crop_batch(batch, dl).to_pylist()[0], "attempts": attempts}
        new[r["image_key"]] = row
    merged = [new.get(r["image_key"], r) for r in rows]
    schema = pa.schema([LOCAL_OUTPUT_SCHEMA.field(c) for c in RESULT_COLUMNS])
    table = pa.Table.from_pylist([{c: r.get(c) for c in RESULT_COLUMNS} for r in merged], schema=schema)
    # swap the results in: write beside, then replace the directory
    tmp = Path(images_path + ".retry")
    stage_io.remove(str(tmp))
    tmp.mkdir(parents=True)
    pq.write_table(table, tmp / "part-00000-retry.parquet")
    stage_io.remove(images_path)
    tmp.rename(images_path)
    recovered = sum(1 for k, r in new.items() if r.get("status") == "success")
    _rejoin_and_reshard(spark, cfg, out, runner_cls, time.time() - t0)
    return {"retried": len(todo), "recovered": recovered, "still_failed": len(new) - recovered}


def _rejoin_and_reshard(spark: Any, cfg: BuildConfig, out: Path, runner_cls: Any, seconds: float) -> None:
    from pmd.pairs.dedup_images import run_dedup_images
    from pmd.pairs.manifest import finish_build
    from pmd.pairs.shards import run_shards
    from pmd.shard import read_manifest

    r = runner_cls(spark, cfg, str(out))
    for stage in STAGES[:3]:
        r.book = r.book.merge(r.sd(stage).counters())
    dl = r.sd("download")
    old_marker = dl.info()
    (Path(dl.marker)).unlink()  # the stage is being rewritten: no marker until it is consistent again
    new_data = dl.sub("data.retry")
    join_back(spark, r.kept("dedup"), spark.read.parquet(spark_path(dl.sub("images"))), new_data)
    stage_io.remove(dl.data)
    Path(new_data).rename(dl.data)
    book = stage_book("download", r.read("download"), r.kept("dedup"))
    dl.commit(stage_fingerprint(cfg, "download"), book, {k: v for k, v in old_marker.items()
                                                       if k not in ("stage", "fingerprint")})
    r.book = r.book.merge(book)
    for stage in ("dedup_images", "shard"):
        stage_io.remove(r.sd(stage).marker)
    shards: dict[str, Any] = {}
    r.stage("dedup_images", lambda sd: run_dedup_images(spark, cfg, r.kept("download"), sd), "download")
    r.stage("shard", lambda sd: shards.update(run_shards(spark, cfg, r.kept("dedup_images"), sd, str(out))),
            "dedup_images", extra=lambda: {"shards": shards.get("shards", [])})
    check_books(r.book, list(STAGES))
    previous = read_manifest(out)
    finish_build(r, seconds)
    log.info("retry-failed: %d → %d samples", previous.get("total_samples", 0), read_manifest(out)["total_samples"])
