"""The interleaved build: WARC → documents → filters → dedup → image download + join → shards + stats.

``build(cfg, out_dir)`` runs the stages of ``pmd.spark.interleaved`` on the executors (each stage
committed under ``DIR/stages/<stage>/`` with its marker last, so a killed build resumes at the
first unfinished stage), then writes ``stats/`` and ``manifest.json`` (last, so a build directory
with a manifest is complete). Counters of every stage are reconciled before the manifest is
written: ``read → extract → filter → dedup → download → shard`` (documents) plus the node-level
stages ``filter_nodes``, ``dedup_nodes`` and ``download_nodes`` (paragraphs and images).
This module holds the entry points and the embedded sample's config; the Spark code is in
``pmd.spark.interleaved``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pmd.interleaved.config import InterleavedConfig


def build(cfg: InterleavedConfig, out_dir: str | Path, spark: Any = None, root: str | Path | None = None) -> Path:
    """Run (or resume) the whole build into ``out_dir``; returns the manifest path. ``root`` resolves
    relative inputs."""
    from pmd.spark.interleaved import build as spark_build

    return spark_build(cfg, out_dir, spark=spark, root=root)


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
    """Generate the embedded sample, serve its images on loopback (a free port, mapped from the
    canonical base URL its pages name), build its WARCs into ``out_dir``; returns ``out_dir``."""
    from pmd.config import load
    from pmd.sample.generate import ensure_sample
    from pmd.sample.server import serve_sample

    load(InterleavedConfig, dict(overrides or {})).filters()  # a bad override fails before any work
    out = Path(out_dir)
    sdir = out / "sample"
    ensure_sample(sdir, seed=seed)
    cfg = sample_config(sdir / "sample.json", overrides)
    with serve_sample(sdir):
        build(cfg, out, spark=spark, root=sdir)
    return out
