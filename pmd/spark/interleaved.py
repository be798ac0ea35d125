"""The interleaved build's DataFrame stages: WARC → documents → dedup → download + join → shards.

Stages (``DIR/stages/<stage>/``, committed by ``pmd.spark.stages`` with ``_SUCCESS`` last):

* ``extract``  - read, extract, filter each WARC unit on the executors (``process_batches``);
  counters ``read``, ``extract``, ``filter``, ``filter_nodes``;
* ``dedup``    - every global dedup as Spark jobs (``pmd.spark.interleaved_dedup``); ``dedup``,
  ``dedup_nodes``;
* ``download`` - the distinct image URLs as a request DataFrame for ``pmd.download.download_urls``
  (the PMD build's engine), its status/images joined back per document (``join_batches``);
  ``download``, ``download_nodes``;
* ``shard``    - dense, deterministic shard assignment (global order by id → index //
  ``docs_per_shard``), JPEG bytes joined in, one task writes each shard whole (``shard_batches``,
  temp name + rename); ``shard``.

Each stage's ``data/`` holds one row per document it kept (``kind = doc``), one per thing it
dropped (``kind = reject``: documents, paragraphs, images, each with a reason) and one per task
(``kind = counters``, the task's counter book). The counters are counted by Spark from those rows,
checked against the tasks' books and against what the previous stage kept, so nothing vanishes.
A stage that keeps nothing stops the build with a ``UserError`` (after committing, so a rerun
with more input starts from there). The driver plans, counts and commits: it collects one row per
task and one per shard, never per document. ``stats/`` and ``manifest.json`` are written last.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pmd.counters import CounterBook, ReconciliationError, StageCounters
from pmd.errors import UserError
from pmd.interleaved.config import InterleavedConfig
from pmd.interleaved.images import FACT_FIELDS, JOINED_SCHEMA, REQUEST_SCHEMA, SINGLE_COLOUR_SCHEMA, join_batches, \
    request_batches, single_colour_batches
from pmd.interleaved.shards import DOCUMENTS_SCHEMA, SHARD_OUT_SCHEMA, shard_batches
from pmd.interleaved.stages import ROW_SCHEMA, UNIT_SCHEMA, WarcUnit, process_batches
from pmd.shard.tar_writer import ShardInfo
from pmd.spark.batches import map_batches
from pmd.spark.stages import Runner, StageDir, on_executor, spark_path

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Stage directories in order, each with the document-level counter stage its rows decide.
STAGES = ("extract", "dedup", "download", "shard")
PRIMARY = {"extract": "filter", "dedup": "dedup", "download": "download", "shard": "shard"}
#: The document-level counter chain (each takes in what the one before kept).
DOC_STAGES = ("read", "extract", "filter", "dedup", "download", "shard")
REJECT_COLUMNS = ("stage", "source", "outcome", "reason", "message", "input_file", "input_line", "image_url", "url")
DOWNLOAD_DIR = "_download"


# -- fingerprints --------------------------------------------------------------------------

def _stage_parts(cfg: InterleavedConfig, stage: str) -> dict[str, Any]:
    c = dataclasses.asdict(cfg)
    if stage == "extract":
        return {k: c[k] for k in ("inputs", "profile", "filter_overrides", "main_content")}
    if stage == "dedup":
        return {"dedup": c["dedup"], "min_images": cfg.filters().min_images}
    if stage == "download":
        return {"download": c["download"], "shard": {k: c["shard"][k] for k in ("image_max_side", "jpeg_quality")},
                "image_content": cfg.dedup.image_content, "filters": dataclasses.asdict(cfg.filters())}
    if stage == "shard":
        return {"docs_per_shard": cfg.shard.docs_per_shard}
    raise ValueError(f"unknown interleaved stage {stage!r}")


def stage_fingerprint(cfg: InterleavedConfig, stage: str) -> str:
    """Hash of what ``stage`` and every stage before it depend on (a change reruns from there)."""
    h = hashlib.sha256()
    for s in STAGES[:STAGES.index(stage) + 1]:
        h.update(json.dumps({s: _stage_parts(cfg, s)}, sort_keys=True, default=list).encode("utf-8"))
    return h.hexdigest()[:32]


# -- counting -------------------------------------------------------------------------------

def _book_from_counts(stage: str, counts: list[tuple[str, str, str | None, int]],
                      inputs: dict[str, int] | None) -> CounterBook:
    """The primary counter stage of ``stage`` from ``(stage, outcome, reason, n)`` row counts."""
    primary = PRIMARY[stage]
    c = StageCounters(primary)
    for row_stage, outcome, reason, n in counts:
        if outcome == "kept":
            c.add_kept(n)
        elif row_stage == primary and outcome == "dropped":
            c.add_dropped(reason or "unknown", n)
        elif row_stage == primary and outcome == "failed":
            c.add_failed(reason or "unknown", n)
    c.add_input(inputs.get("*", 0) if inputs is not None else c.n_out)
    return CounterBook([c])


class InterleavedRunner(Runner):
    """The shared ``Runner`` with the interleaved stages' counting: document outcomes counted from
    the stage's rows, node-level and read-level counters taken from the tasks' books (rows exist
    only for what was removed), and the two must agree on the primary stage."""

    def count_book(self, stage: str, out_df: "DataFrame", inputs: "dict[str, int] | DataFrame | None") -> CounterBook:
        from pyspark.sql import functions as F

        task = CounterBook()
        if "message" in out_df.columns:  # the shard stage's rows carry no task books
            for r in out_df.where("kind = 'counters'").select("message").collect():  # one row per task
                task = task.merge(CounterBook.from_list(json.loads(r["message"])))
        outcome = F.when(F.col("kind") == "doc", F.lit("kept")).otherwise(F.col("outcome"))
        counts = [(r["stage"], r["outcome"], r["reason"], int(r["count"])) for r in
                  out_df.where("kind IN ('doc', 'reject')").select("stage", outcome.alias("outcome"), "reason")
                  .groupBy("stage", "outcome", "reason").count().collect()]
        if inputs is not None and not isinstance(inputs, dict):
            raise TypeError("interleaved stages take their inputs from the previous stage's book")
        book = self.book_fn(stage, counts, inputs)
        primary = PRIMARY[stage]
        if any(c.stage == primary for c in task):
            t, r = task.total(primary), book.total(primary)
            if (t.kept, t.dropped, t.failed) != (r.kept, r.dropped, r.failed):
                raise ReconciliationError(f"{stage}: the tasks counted {t.to_dict()} for {primary} but its rows "
                                          f"say {r.to_dict()}")
            if inputs is None:  # the first stage: its input is what its tasks read
                book = CounterBook([c for c in task if c.stage == primary])
        book = CounterBook([c for c in task if c.stage != primary] + list(book))
        book.check_reconciled()
        return book


# -- stages ---------------------------------------------------------------------------------

def _units_df(spark: "SparkSession", units: Sequence[WarcUnit], partitions: int) -> "DataFrame":
    from pyspark.sql.pandas.types import from_arrow_schema

    rows = [(u.path, u.offset, u.length, u.name) for u in units]
    df = spark.createDataFrame(rows, from_arrow_schema(UNIT_SCHEMA))
    n = max(1, min(partitions, len(units)))
    return df.repartition(n) if len(units) > 1 else df


def run_extract(spark: "SparkSession", cfg: InterleavedConfig, units: Sequence[WarcUnit], sd: StageDir) -> None:
    out = map_batches(_units_df(spark, units, cfg.partitions), functools.partial(process_batches, cfg=cfg),
                      ROW_SCHEMA)
    out.write.mode("overwrite").parquet(spark_path(sd.data))


def download_config(cfg: InterleavedConfig) -> Any:
    """The download engine's config for this build (shard image size and quality, then ``download:``)."""
    from pmd.download import DownloadConfig

    opts = {"image_size": cfg.shard.image_max_side, "resize_mode": "keep_ratio", "resize_only_if_bigger": True,
            "encode_quality": cfg.shard.jpeg_quality, **cfg.download}
    return DownloadConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in opts.items()})


def _download_results(spark: "SparkSession", requests: "DataFrame", out_dir: str, cfg: InterleavedConfig
                      ) -> tuple["DataFrame", "DataFrame"]:
    """``(status, images)`` DataFrames of the download of ``requests`` (read back from Parquet)."""
    from pmd.download import download_urls

    res = download_urls(spark, requests, Path(out_dir) / DOWNLOAD_DIR, download_config(cfg))
    status = spark.read.parquet(spark_path(str(res.status_path)))
    images = spark.read.parquet(spark_path(str(res.images_path)))
    return status, images


def _empty(spark: "SparkSession", schema: Any) -> "DataFrame":
    from pyspark.sql.pandas.types import from_arrow_schema

    return spark.createDataFrame([], from_arrow_schema(schema))


def run_download(spark: "SparkSession", cfg: InterleavedConfig, docs: "DataFrame", sd: StageDir, out_dir: str) -> None:
    from pyspark.sql import functions as F

    from pmd.download import IMAGES_SCHEMA

    fcfg = cfg.filters()
    urls = docs.select(F.explode("images").alias("url")).where(F.col("url").isNotNull()).distinct()
    req_path = spark_path(sd.sub("requests"))
    map_batches(urls, request_batches, REQUEST_SCHEMA).write.mode("overwrite").parquet(req_path)
    requests = spark.read.parquet(req_path)
    if requests.limit(1).count():
        status, images = _download_results(spark, requests, out_dir, cfg)
    else:
        status, images = _empty(spark, REQUEST_SCHEMA).select("image_key"), _empty(spark, IMAGES_SCHEMA)
        status = status.select("image_key", *[F.lit(None).cast("string").alias(c)
                                              for c in ("status", "error", "error_message")])
    facts = status.select("image_key", "status", "error", "error_message").join(
        images.select("image_key", "width", "height", "original_width", "original_height", "sha256"),
        "image_key", "left")
    if fcfg.drop_single_colour:
        flags = map_batches(images.select("image_key", "jpg"), single_colour_batches, SINGLE_COLOUR_SCHEMA)
        facts = facts.join(flags, "image_key", "left")
    else:
        facts = facts.withColumn("single_colour", F.lit(None).cast("boolean"))
    per_doc = (docs.select("id", F.explode(F.array_distinct(F.filter("images", lambda x: x.isNotNull()))).alias("url"))
               .join(requests, "url").join(facts, "image_key", "left")
               .groupBy("id").agg(F.collect_list(F.struct(*FACT_FIELDS)).alias("facts")))
    joined = docs.select(*ROW_SCHEMA.names).join(per_doc, "id", "left")
    out = map_batches(joined, functools.partial(join_batches, cfg=fcfg, dedup_content=cfg.dedup.image_content),
                      JOINED_SCHEMA)
    out.write.mode("overwrite").parquet(spark_path(sd.data))


def _dense_index(spark: "SparkSession", ids: "DataFrame", sd: StageDir) -> "DataFrame":
    """``(id, idx)``: each id's position in the global id order, 0..n-1, without a one-partition window.

    The ids are range-partitioned and sorted (a distributed sort), numbered within their partition
    (``monotonically_increasing_id``: partition in the high bits, row in the low 33), and each
    partition's offset is the count of the partitions before it: one row per partition to the driver."""
    from pyspark.sql import functions as F

    parts = int(spark.conf.get("spark.sql.shuffle.partitions", "8"))
    path = spark_path(sd.sub("work/order"))
    (ids.repartitionByRange(parts, "id").sortWithinPartitions("id")
     .withColumn("mid", F.monotonically_increasing_id()).write.mode("overwrite").parquet(path))
    order = spark.read.parquet(path).withColumn("p", F.shiftright("mid", 33))
    counts = sorted((int(r["p"]), int(r["count"])) for r in order.groupBy("p").count().collect())
    offsets, total = [], 0
    for p, n in counts:
        offsets.append((p, total))
        total += n
    off = spark.createDataFrame(offsets or [(0, 0)], "p long, offset long")
    return (order.join(F.broadcast(off), "p")
            .select("id", (F.col("offset") + F.col("mid").bitwiseAND(F.lit((1 << 33) - 1))).alias("idx")))


def run_shard(spark: "SparkSession", cfg: InterleavedConfig, docs: "DataFrame", images: "DataFrame", sd: StageDir,
              out_dir: str) -> None:
    from pyspark.sql import functions as F

    per = cfg.shard.docs_per_shard
    plan = _dense_index(spark, docs.select("id"), sd).withColumn("shard", (F.col("idx") / per).cast("long").cast("int"))
    n_docs = docs.count()
    n_shards = max(1, math.ceil(n_docs / per))
    blobs = (docs.select("id", F.posexplode("image_keys").alias("pos", "image_key"))
             .join(images.select("image_key", "jpg"), "image_key")
             .groupBy("id").agg(F.collect_list(F.struct("pos", "jpg")).alias("blobs")))
    joined = (docs.select(*JOINED_SCHEMA.names).join(plan.select("id", "shard"), "id").join(blobs, "id", "left")
              .repartition(n_shards, "shard").sortWithinPartitions("shard", "id"))
    out = map_batches(joined, functools.partial(shard_batches, out_dir=out_dir), SHARD_OUT_SCHEMA)
    (out.withColumn("outcome", F.when(F.col("kind") == "doc", F.lit("kept")))
     .withColumn("stage", F.lit("shard")).withColumn("reason", F.lit(None).cast("string"))
     .write.mode("overwrite").parquet(spark_path(sd.data)))


# -- stats and manifest ---------------------------------------------------------------------

def _write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _single_parquet(df: "DataFrame", dst: Path, work: Path) -> None:
    """A Spark DataFrame as ONE Parquet file (parts written by the executors, merged in order by one
    executor task: through the driver the merge raised its peak with the number of rows)."""
    from pmd.pairs.stats import merge_parts

    parts = work / f"{dst.name}.parts"
    # small row groups: the merge streams one row group at a time, so this bounds the merging task's
    # memory whatever the number of rows
    df.write.mode("overwrite").option("parquet.block.size", 4 << 20).parquet(spark_path(str(parts)))
    dst.parent.mkdir(parents=True, exist_ok=True)
    on_executor(df.sparkSession, merge_parts, str(parts), str(dst))
    shutil.rmtree(parts, ignore_errors=True)


def _rejects(r: Runner) -> "DataFrame":
    from pyspark.sql import functions as F

    out = None
    for stage in STAGES[:-1]:
        df = r.read(stage).where("kind = 'reject'").select(
            *[F.lit("interleaved").alias(c) if c == "source" else F.col(c) for c in REJECT_COLUMNS])
        out = df if out is None else out.unionByName(df)
    return out


def write_stats(r: Runner, out: Path, wall_seconds: float) -> tuple[list[ShardInfo], int, int]:
    """``stats/`` from the stage datasets; returns the shard infos (one row per shard collected),
    the document and the image totals."""
    from pyspark.sql import functions as F

    data = r.read("shard")
    infos = [ShardInfo(x["path"], int(x["samples"]), int(x["bytes"]), x["sha256"], x["parquet"])
             for x in data.where("kind = 'shard'").orderBy("index").collect()]
    docs = data.where("kind = 'doc'").select(*DOCUMENTS_SCHEMA.names)
    agg = docs.agg(F.count("*").alias("n"), F.sum("n_images").alias("images")).collect()[0]
    n_docs, n_images = int(agg["n"]), int(agg["images"] or 0)
    work = out / "stages" / "_stats_tmp"
    _write_json(r.book.to_list(), out / "stats" / "counters.json")
    _single_parquet(docs.orderBy("id"), out / "stats" / "documents.parquet", work)
    _single_parquet(_rejects(r), out / "stats" / "rejects.parquet", work)
    _write_json({"documents": n_docs, "images": n_images,
                 "stages": {s: r.book.total(s).to_dict() for s in r.book.stages()},
                 "wall_seconds": round(wall_seconds, 2)}, out / "stats" / "summary.json")
    shutil.rmtree(work, ignore_errors=True)
    return infos, n_docs, n_images


# -- the build ------------------------------------------------------------------------------

def _require_kept(r: Runner, stage: str) -> None:
    """A stage that keeps nothing ends the build as a user error (issue 15): nothing to build on."""
    tot = r.book.total(PRIMARY[stage])
    if tot.kept == 0:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted({**tot.dropped, **tot.failed}.items(),
                                                          key=lambda kv: -kv[1])[:5]) or "no input"
        raise UserError(f"interleaved: stage {stage} kept no document of {tot.input} ({reasons}); "
                        f"see {StageDir(r.out_dir, stage).path}")


def run_stages(spark: "SparkSession", cfg: InterleavedConfig, units: Sequence[WarcUnit], out_dir: str,
               until: str = "shard") -> InterleavedRunner:
    """Run (or resume) the stages up to and including ``until``; returns the runner (book, timings)."""
    from pmd.spark.interleaved_dedup import run_dedup

    r = InterleavedRunner(spark, out_dir, functools.partial(stage_fingerprint, cfg), _book_from_counts)
    docs = lambda stage: r.read(stage).where("kind = 'doc'")  # noqa: E731
    last = STAGES.index(until)
    r.stage("extract", lambda sd: run_extract(spark, cfg, units, sd), None)
    _require_kept(r, "extract")
    if last >= 1:
        r.stage("dedup", lambda sd: run_dedup(spark, docs("extract"), cfg.dedup, cfg.filters().min_images, sd),
                "filter")
        _require_kept(r, "dedup")
    if last >= 2:
        r.stage("download", lambda sd: run_download(spark, cfg, docs("dedup"), sd, out_dir), "dedup")
        _require_kept(r, "download")
    if last >= 3:
        def shard(sd: StageDir) -> None:
            images = spark.read.parquet(spark_path(str(Path(out_dir) / DOWNLOAD_DIR / "images")))
            run_shard(spark, cfg, docs("download"), images, sd, out_dir)

        r.stage("shard", shard, "download")
    present = [s for s in DOC_STAGES if any(c.stage == s for c in r.book)]
    r.check_chain(present)
    return r


def build(cfg: InterleavedConfig, out_dir: str | Path, spark: "SparkSession | None" = None,
          root: str | Path | None = None) -> Path:
    """Run (or resume) the whole build into ``out_dir``; returns the manifest path."""
    from pmd.interleaved.stages import expand_inputs
    from pmd.shard.manifest import write_manifest
    from pmd.spark.session import spark_session
    from pmd.stats.card import write_dataset_card

    t0 = time.monotonic()
    out = Path(out_dir).resolve()
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
    log.info("interleaved: %d WARC unit(s), profile %s", len(units), cfg.profile)
    spark = spark or spark_session(cfg.spark_master, app_name="pmd-interleaved")
    r = run_stages(spark, cfg, units, str(out))
    infos, n_docs, n_images = write_stats(r, out, time.monotonic() - t0)
    path = write_manifest(out, "interleaved-docs", infos, dataclasses.asdict(cfg), r.book)
    on_executor(spark, write_dataset_card, out)  # it reads rejects.parquet: per-record, off the driver
    log.info("interleaved: %d documents, %d images in %d shard(s) → %s", n_docs, n_images, len(infos), out)
    return path
