"""Orchestration of the PMD build: run each stage unless its ``_SUCCESS`` marker says it is done.

``build(cfg, out_dir)`` works on any SparkSession (``local[*]`` by default, or whatever
``spark-submit`` set up); ``build_embedded_sample(out_dir)`` generates the embedded sample, serves its
images on loopback, builds it and stops the server. The build directory layout is the contract of
docs/ARCHITECTURE.md ("PMD build directory"); the stage machinery is ``pmd.spark.stages.Runner``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

from pmd.pairs.config import STAGES, BuildConfig, SourceConfig, load_build_config, stage_fingerprint
from pmd.pairs.counting import book_from_outcomes
from pmd.spark.session import spark_session
from pmd.spark.stages import Runner, spark_path

log = logging.getLogger(__name__)

SAMPLE_CONFIG = "pmd_sample"


def spark_for(cfg: BuildConfig) -> "SparkSession":
    """The process's SparkSession (reused), with the config's master and a few partitions."""
    conf = {"spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions), **cfg.spark.conf}
    return spark_session(master=cfg.spark.master, app_name="pmd-build", conf=conf)


def pairs_runner(spark: "SparkSession", cfg: BuildConfig, out_dir: str) -> Runner:
    """The shared stage runner with the PMD build's fingerprints and books."""
    return Runner(spark, out_dir, fingerprint=lambda stage: stage_fingerprint(cfg, stage), book=book_from_outcomes,
                  progress_interval=cfg.progress_interval)


def build(cfg: BuildConfig, out_dir: str | Path, spark: "SparkSession | None" = None) -> Path:
    """Run (or resume) the whole build into ``out_dir``; returns the build directory.

    Reruns skip stages whose marker matches the config; the manifest is written last.
    """
    from pmd.spark.pairs.dedup import run_dedup
    from pmd.spark.pairs.dedup_images import run_dedup_images
    from pmd.spark.pairs.download import run_download
    from pmd.spark.pairs.filtering import run_filter
    from pmd.spark.pairs.ingest import run_ingest_filter
    from pmd.spark.pairs.manifest import finish_build
    from pmd.spark.pairs.shards import run_shards

    from pmd.errors import UserError

    out = str(out_dir)
    if "://" in out:
        # the downloader and the shard writer use POSIX files; object stores are mounted or synced
        raise UserError(f"--out {out}: the build directory must be a local or shared (NFS/FUSE-mounted) "
                        "path; see docs/cluster.md for object storage")
    out = str(Path(out).resolve())
    Path(out).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not cfg.enabled_sources():
        raise UserError("the build config enables no sources")
    spark = spark if spark is not None else spark_for(cfg)
    r = pairs_runner(spark, cfg, out)
    sp = spark_path
    # one pass writes both (the filter reads nothing back); with ingest done, the filter runs alone
    r.stage_pair("ingest", "filter", lambda si, sf: run_ingest_filter(spark, cfg, sp(si.data), sp(sf.data)),
                 lambda sf: run_filter(spark, cfg, sp(r.sd("ingest").data), sp(sf.data)))
    r.stage("dedup", lambda sd: run_dedup(spark, cfg, r.kept("filter"), sp(sd.data)), "filter")
    r.stage("download", lambda sd: run_download(spark, cfg, r.kept("dedup"), sd), "dedup")
    r.stage("dedup_images", lambda sd: run_dedup_images(spark, cfg, r.kept("download"), sd), "download")
    shards: dict[str, Any] = {}
    r.stage("shard", lambda sd: shards.update(run_shards(spark, cfg, r.kept("dedup_images"), sd, out)),
            "dedup_images", extra=lambda: {"shards": shards.get("shards", [])})
    r.check_chain(STAGES)
    finish_build(r, cfg, time.time() - t0)
    return Path(out)


def sample_config(sample_dir: Path, overrides: dict[str, Any] | None = None) -> BuildConfig:
    """``configs/pmd_sample.yaml`` with its sources taken from the generated ``sample.json``."""
    meta = json.loads((sample_dir / "sample.json").read_text(encoding="utf-8"))
    cfg = load_build_config(SAMPLE_CONFIG, overrides)
    from pmd.sources.registry import SOURCES

    sources = dict(cfg.sources)
    for sample_name, spec in sorted(meta["sources"].items()):
        # the sample may spell a source the way facebook/pmd does ("google/wit" for "wit")
        name = sample_name if sample_name in SOURCES else sample_name.rsplit("/", 1)[-1]
        base = sources.get(name, SourceConfig(paths=[]))
        sources[name] = dataclasses.replace(base, paths=list(spec["paths"]),
                                            options={**spec.get("options", {}), **base.options})
    return dataclasses.replace(cfg, sources=sources, base_dir=str(sample_dir.resolve()))


def build_embedded_sample(out_dir: str | Path, seed: int = 0, sample_dir: str | Path | None = None,
                          spark: "SparkSession | None" = None, overrides: dict[str, Any] | None = None) -> Path:
    """Generate the sample (into ``out_dir/sample`` unless given), serve it on loopback, build it.

    A sample directory that already exists is reused. Its URLs name a canonical loopback authority
    whatever port serves them (``serve_sample``), so a rerun (resume) or a second clean build of
    the sample produces byte-identical shards.
    """
    from pmd.sample.generate import ensure_sample
    from pmd.sample.server import serve_sample

    out = Path(out_dir)
    sdir = Path(sample_dir) if sample_dir is not None else out / "sample"
    ensure_sample(sdir, seed=seed)
    cfg = sample_config(sdir, overrides)
    with serve_sample(sdir):
        return build(cfg, out, spark=spark)
