"""The interleaved build: WARC → documents → filters → dedup → image download + join → shards + stats.

``build(cfg, out_dir)`` runs read/extract/filter in Spark (``mapInArrow`` over WARC units), the
global dedup on the driver over the filtered documents, the download with the downloads engine on
the same SparkSession, then writes shards, ``stats/`` and ``manifest.json`` (last, so a build
directory with a manifest is complete). Counters of every stage are reconciled before the manifest
is written: ``read → extract → filter → dedup → download → shard`` (documents) plus the node-level
stages ``filter_nodes``, ``dedup_nodes`` and ``download_nodes`` (paragraphs and images).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pmd.interleaved.config import InterleavedConfig
from pmd.interleaved.dedup import dedup_documents
from pmd.interleaved.images import image_key, join_images
from pmd.interleaved.shards import DOCUMENTS_SCHEMA, write_shards
from pmd.interleaved.stages import UNIT_SCHEMA, expand_inputs, process_batches, split_rows
from pmd.verdict import Dropped

log = logging.getLogger(__name__)

DOC_STAGES = ["read", "extract", "filter", "dedup", "download", "shard"]
REJECTS_SCHEMA = pa.schema([
    pa.field("stage", pa.string()), pa.field("source", pa.string()), pa.field("outcome", pa.string()),
    pa.field("reason", pa.string()), pa.field("message", pa.string()), pa.field("input_file", pa.string()),
    pa.field("input_line", pa.int64()), pa.field("image_url", pa.string()), pa.field("url", pa.string()),
])


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _download(spark: Any, urls: list[str], out: Path, cfg: InterleavedConfig
              ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    from pmd.download.engine import DownloadConfig, download_urls

    opts = {"image_size": cfg.shard.image_max_side, "resize_mode": "keep_ratio", "resize_only_if_bigger": True,
            "encode_quality": cfg.shard.jpeg_quality, **cfg.download}
    dcfg = DownloadConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in opts.items()})
    requests = pa.table({"image_key": [image_key(u) for u in urls], "url": urls})
    res = download_urls(spark, requests, out, dcfg)
    status = {r["image_key"]: r for r in pq.read_table(res.status_path).to_pylist()}
    images = {r["image_key"]: r for r in pq.read_table(res.images_path).to_pylist()}
    return status, images


def build(cfg: InterleavedConfig, out_dir: str | Path, spark: Any = None, root: str | Path | None = None) -> Path:
    """Run the whole build into ``out_dir``; returns the manifest path. ``root`` resolves relative inputs."""
    from pmd.shard.manifest import write_manifest
    from pmd.stats.card import write_dataset_card
    from pmd.spark_adapter import map_batches, spark_session

    t0 = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = out / "manifest.json"
    if done.exists():  # the manifest is written last: its presence means a finished build
        try:
            same = json.loads(done.read_text(encoding="utf-8")).get("config") == json.loads(
                json.dumps(dataclasses.asdict(cfg), default=list))
        except (OSError, ValueError):
            same = False
        if same:
            log.info("interleaved: %s already holds a finished build of this config; skipping", out)
            if not (out / "DATASET_CARD.md").exists():  # killed between manifest and card
                write_dataset_card(out)
            return done
    units = expand_inputs(cfg.inputs, root)
    fcfg = cfg.filters()
    log.info("interleaved: %d WARC unit(s), profile %s", len(units), cfg.profile)
    spark = spark or spark_session(cfg.spark_master, app_name="pmd-interleaved")

    # read → extract → filter (workers)
    table = pa.table({"path": [u.path for u in units], "offset": [u.offset for u in units],
                      "length": [u.length for u in units], "name": [u.name for u in units]}, schema=UNIT_SCHEMA)
    df = spark.createDataFrame(table.to_pandas())
    if len(units) > cfg.partitions:
        df = df.repartition(cfg.partitions)
    from pmd.interleaved.stages import ROW_SCHEMA

    rows = map_batches(df, functools.partial(process_batches, cfg=cfg), ROW_SCHEMA).toArrow()
    docs, rejects, book = split_rows(rows)
    docs.sort(key=lambda d: d.id)

    # dedup (driver: needs global counts over the filtered documents)
    docs, dropped = dedup_documents(docs, cfg.dedup, book, min_images=fcfg.min_images, sink=rejects)
    rejects += [_drop_row("dedup", d) for d in dropped]

    # download + join back
    urls = sorted({u for d in docs for u in d.image_urls})
    status, images = _download(spark, urls, out / "_download", cfg) if urls else ({}, {})
    final = []
    for res in join_images(docs, status, images, fcfg, book, dedup_content=cfg.dedup.image_content, sink=rejects):
        if isinstance(res, Dropped):
            rejects.append(_drop_row("download", res))
        else:
            final.append(res)

    # shards + stats
    sc = book.get("shard")
    sc.add_input(len(final))
    infos, doc_stats = write_shards(out, final, cfg.shard.docs_per_shard)
    sc.add_kept(sum(i.samples for i in infos))
    book.check_reconciled()
    for up, down in zip(DOC_STAGES, DOC_STAGES[1:]):
        book.check_chain(up, down)
    _write_json(book.to_list(), out / "stats" / "counters.json")
    _write_parquet(pa.Table.from_pylist(doc_stats, schema=DOCUMENTS_SCHEMA), out / "stats" / "documents.parquet")
    _write_parquet(pa.Table.from_pylist([{**{k: r.get(k) for k in REJECTS_SCHEMA.names}, "source": "interleaved"}
                                         for r in rejects], schema=REJECTS_SCHEMA), out / "stats" / "rejects.parquet")
    _write_json({"documents": len(final), "images": sum(len(b) for _, b in final),
                 "stages": {s: book.total(s).to_dict() for s in book.stages()},
                 "wall_seconds": round(time.monotonic() - t0, 2)}, out / "stats" / "summary.json")
    path = write_manifest(out, "interleaved-docs", infos, dataclasses.asdict(cfg), book)
    write_dataset_card(out)
    log.info("interleaved: %d documents, %d images in %d shard(s) → %s", len(final),
             sum(len(b) for _, b in final), len(infos), out)
    return path


def _drop_row(stage: str, d: Dropped) -> dict[str, Any]:
    return {"stage": stage, "outcome": "dropped", "reason": d.reason, "message": None, "input_file": d.input_file,
            "url": d.detail}


def sample_config(sample_json: Path, overrides: dict[str, Any] | None = None) -> InterleavedConfig:
    """The config of the embedded sample: its WARC files, loopback downloads allowed, small shards."""
    from pmd.config import load

    meta = json.loads(sample_json.read_text(encoding="utf-8"))
    inputs = list(meta.get("warc") or [])
    damaged = ((meta.get("expected") or {}).get("warc") or {}).get("damaged") or {}
    if damaged.get("path") and damaged["path"] not in inputs:
        inputs.append(damaged["path"])
    data: dict[str, Any] = {"inputs": inputs, "partitions": 2,
                            "download": {"allow_loopback": True, "thread_count": 8, "timeout": 5,
                                         "samples_per_shard": 1000},
                            "shard": {"docs_per_shard": 50},
                            # the sample's pages draw sentences from a small filler pool, so their
                            # document-level repetition is high by construction
                            "filter_overrides": {"doc_max_word_rep": None, "doc_max_char_rep": None}}
    for k, v in (overrides or {}).items():  # mappings merge key by key, so a config adds to the sample's
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    return load(InterleavedConfig, data)


def build_embedded_sample(out_dir: str | Path, seed: int = 0, spark: Any = None,
                          overrides: dict[str, Any] | None = None) -> Path:
    """Generate the embedded sample (free port), serve its images on loopback, build its WARCs into
    ``out_dir``; returns ``out_dir``."""
    from pmd.config import load
    from pmd.sample.generate import ensure_sample
    from pmd.sample.server import ImageServer

    load(InterleavedConfig, dict(overrides or {})).filters()  # a bad override fails before any work
    out = Path(out_dir)
    sdir = out / "sample"
    port = ensure_sample(sdir, seed=seed)
    cfg = sample_config(sdir / "sample.json", overrides)
    with ImageServer(sdir, port=port):
        build(cfg, out, spark=spark, root=sdir)
    return out
