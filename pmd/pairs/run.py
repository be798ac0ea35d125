"""Orchestration of the PMD build: run each stage unless its ``_SUCCESS`` marker says it is done.

``build(cfg, out_dir)`` works on any SparkSession (``local[*]`` by default, or whatever
``spark-submit`` set up); ``build_embedded_sample(out_dir)`` generates the embedded sample, serves its
images on loopback, builds it and stops the server. The build directory layout is the contract of
docs/ARCHITECTURE.md ("PMD build directory").
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from pmd.pairs import stage_io
from pmd.pairs.config import STAGES, BuildConfig, SourceConfig, load_build_config, stage_fingerprint
from pmd.pairs.counting import check_books, stage_book
from pmd.pairs.outcomes import DROPPED, FAILED, KEPT
from pmd.pairs.spark_progress import SparkStageProgress, report_done
from pmd.pairs.stage_io import StageDir
from pmd.counters import CounterBook

log = logging.getLogger(__name__)

SAMPLE_CONFIG = "pmd_sample"


def spark_for(cfg: BuildConfig) -> Any:
    """The process's SparkSession (reused), with the config's master and a few partitions."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from pmd.spark_adapter import spark_session

    conf = {"spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions), **cfg.spark.conf}
    return spark_session(master=cfg.spark.master, app_name="pmd-build", conf=conf)


class Runner:
    """Runs stages in order; each stage commits data, counters and its marker, in that order."""

    def __init__(self, spark: Any, cfg: BuildConfig, out_dir: str) -> None:
        self.spark, self.cfg, self.out_dir = spark, cfg, out_dir
        self.book = CounterBook()
        self.timings: dict[str, float] = {}

    def sd(self, stage: str) -> StageDir:
        return StageDir(self.out_dir, stage)

    def read(self, stage: str, sub: str = "data") -> Any:
        return self.spark.read.parquet(stage_io.spark_path(self.sd(stage).sub(sub)))

    def kept(self, stage: str) -> Any:
        return self.read(stage).where(f"outcome = '{KEPT}'")

    def stage(self, name: str, work: Callable[[StageDir], None], input_stage: str | None,
              extra: Callable[[], dict[str, Any]] | None = None) -> None:
        sd = self.sd(name)
        fp = stage_fingerprint(self.cfg, name)
        if sd.is_done(fp):
            log.info("%s: already done (marker %s), skipping", name, sd.marker)
            self.book = self.book.merge(sd.counters())
            return
        sd.reset()
        t0 = time.monotonic()
        log.info("%s: starting", name)
        with SparkStageProgress(self.spark, name, self.cfg.progress_interval):
            work(sd)
        # input = what the previous stage kept (its own books, counted from its rows); the outputs are
        # counted from this stage's rows: a join that loses or duplicates rows cannot balance
        inputs = None if input_stage is None else {c.source: c.kept for c in self.book if c.stage == input_stage}
        book = stage_book(name, self.read(name), inputs)
        secs = time.monotonic() - t0
        tot = book.total(name)
        report_done(name, tot.input, tot.kept, tot.n_dropped, tot.n_failed, secs)
        sd.commit(fp, book, {"seconds": round(secs, 3), **(extra() if extra else {})})
        self.timings[name] = secs
        self.book = self.book.merge(book)


def build(cfg: BuildConfig, out_dir: str | Path, spark: Any = None) -> Path:
    """Run (or resume) the whole build into ``out_dir``; returns the build directory.

    Reruns skip stages whose marker matches the config; the manifest is written last.
    """
    from pmd.pairs.dedup import run_dedup
    from pmd.pairs.dedup_images import run_dedup_images
    from pmd.pairs.download import run_download
    from pmd.pairs.filtering import run_filter
    from pmd.pairs.ingest import run_ingest
    from pmd.pairs.manifest import finish_build
    from pmd.pairs.shards import run_shards

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
    r = Runner(spark, cfg, out)
    sp = stage_io.spark_path
    r.stage("ingest", lambda sd: run_ingest(spark, cfg, sp(sd.data)), None)
    r.stage("filter", lambda sd: run_filter(spark, cfg, r.kept("ingest"), sp(sd.data)), "ingest")
    r.stage("dedup", lambda sd: run_dedup(spark, cfg, r.kept("filter"), sp(sd.data)), "filter")
    r.stage("download", lambda sd: run_download(spark, cfg, r.kept("dedup"), sd), "dedup")
    r.stage("dedup_images", lambda sd: run_dedup_images(spark, cfg, r.kept("download"), sd), "download")
    shards: dict[str, Any] = {}
    r.stage("shard", lambda sd: shards.update(run_shards(spark, cfg, r.kept("dedup_images"), sd, out)),
            "dedup_images", extra=lambda: {"shards": shards.get("shards", [])})
    check_books(r.book, list(STAGES))
    finish_build(r, time.time() - t0)
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
                          spark: Any = None, overrides: dict[str, Any] | None = None) -> Path:
    """Generate the sample (into ``out_dir/sample`` unless given), serve it on loopback, build it.

    A sample directory that already exists is reused with the port its URLs name, so that a rerun
    (resume) or a second build of the same sample produces byte-identical shards.
    """
    from pmd.sample.generate import ensure_sample
    from pmd.sample.server import ImageServer

    out = Path(out_dir)
    sdir = Path(sample_dir) if sample_dir is not None else out / "sample"
    port = ensure_sample(sdir, seed=seed)
    cfg = sample_config(sdir, overrides)
    with ImageServer(sdir, port=port):
        return build(cfg, out, spark=spark)
