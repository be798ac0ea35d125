"""The interleaved build's global dedup as Spark jobs (the steps of ``pmd.interleaved.dedup``).

Every step that needs a global fact is a distributed job; what happens to one document given
those facts is the pure code of ``pmd.interleaved.dedup`` (``dedup_nodes`` via ``node_batches``),
so the answer equals the in-memory ``dedup_documents``:

1. document URL: a window per URL keeps the latest crawl (``crawl_key`` descending, then the
   smallest id, as the in-memory loop over id-sorted documents does);
2. image URL document frequency: ``explode`` + ``count`` per URL, the frequent ones joined back
   to the documents that hold them;
3. in-document duplicate images: per document, in ``node_batches``;
4. domain paragraph counts: ``(domain, paragraph hash)`` document counts, joined back likewise;
5. identical image sets: a window per sorted image-URL set keeps the latest crawl;
6. MinHash LSH: signatures and band keys per document (``signature_batches``); each band bucket
   links its members to its best-ranked member (a star); the candidate edges are verified
   (signature agreement ≥ threshold) and grouped by connected components
   (``pmd.spark.components``); each component keeps its best-ranked document (latest crawl, then
   largest id: the order of the in-memory ``near_duplicates``).

Intermediate results are written under the stage's ``work/`` folder so each step starts from a
short plan; nothing per record reaches the driver.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from pmd.interleaved.config import DedupConfig
from pmd.interleaved.dedup import FACTS_SCHEMA, KEYED_SCHEMA, SIGNATURE_SCHEMA, key_batches, node_batches, \
    signature_batches
from pmd.interleaved.stages import ROW_SCHEMA
from pmd.spark.batches import map_batches
from pmd.spark.stages import StageDir, spark_path

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

ROW_COLUMNS = ROW_SCHEMA.names


def _latest_first(*extra: "object") -> list:
    from pyspark.sql import functions as F

    return [F.col("crawl_date").desc(), F.col("crawl_file").desc(), F.col("crawl_offset").desc(), *extra]


def _checkpoint(spark: "SparkSession", df: "DataFrame", sd: StageDir, name: str) -> "DataFrame":
    path = spark_path(sd.sub(f"work/{name}"))
    df.write.mode("overwrite").parquet(path)
    return spark.read.parquet(path)


def _doc_drops(df: "DataFrame", reason: str, url: "object | None" = None) -> "DataFrame":
    """Reject rows (``ROW_SCHEMA``) of documents the dedup drops: ``input_file`` is the document id."""
    from pyspark.sql import functions as F

    lit_null = {c: F.lit(None).cast(t) for c, t in (("texts", "array<string>"), ("images", "array<string>"))}
    cols = []
    for c in ROW_COLUMNS:
        if c == "kind":
            cols.append(F.lit("reject").alias(c))
        elif c == "stage":
            cols.append(F.lit("dedup").alias(c))
        elif c == "outcome":
            cols.append(F.lit("dropped").alias(c))
        elif c == "reason":
            cols.append(F.lit(reason).alias(c))
        elif c == "input_file":
            cols.append(F.col("id").alias(c))
        elif c == "url":
            cols.append((url if url is not None else F.col("url")).alias(c))
        elif c == "id":
            cols.append(F.lit(None).cast("string").alias(c))
        elif c in lit_null:
            cols.append(lit_null[c].alias(c))
        elif c == "input_line":
            cols.append(F.lit(None).cast("long").alias(c))
        else:
            cols.append(F.lit(None).cast("string").alias(c))
    return df.select(*cols)


def _rows(df: "DataFrame") -> "DataFrame":
    return df.select(*ROW_COLUMNS)


def run_dedup(spark: "SparkSession", docs: "DataFrame", cfg: DedupConfig, min_images: int, sd: StageDir) -> None:
    """Dedup ``docs`` (``kind = doc`` rows of the extract stage) into ``sd.data``: kept documents,
    one reject row per dropped document / removed image / removed paragraph, counters rows."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keyed = _checkpoint(spark, map_batches(docs.select(*ROW_COLUMNS), functools.partial(key_batches, cfg=cfg),
                                           KEYED_SCHEMA), sd, "keyed")
    rejects: list["DataFrame"] = []

    # 1. document URL
    if cfg.url:
        w = Window.partitionBy("url").orderBy(*_latest_first(F.col("id").asc()))
        ranked = _checkpoint(spark, keyed.withColumn("_rn", F.row_number().over(w)), sd, "url")
        rejects.append(_doc_drops(ranked.where("_rn > 1"), "dup_url"))
        keyed = ranked.where("_rn = 1").drop("_rn")

    # 2-4. node level: facts per document, then the pure rebuild
    facts = keyed
    if cfg.max_image_url_docs is not None:
        pairs = keyed.select("id", F.explode("image_urls").alias("u"))
        frequent = pairs.groupBy("u").count().where(F.col("count") > cfg.max_image_url_docs).select("u")
        per_doc = pairs.join(frequent, "u").groupBy("id").agg(F.collect_list("u").alias("frequent_images"))
        facts = facts.join(per_doc, "id", "left")
    else:
        facts = facts.withColumn("frequent_images", F.lit(None).cast("array<string>"))
    if cfg.domain_paragraph_min_count:
        paras = keyed.select("id", "domain", F.explode("para_hashes").alias("h"))
        repeated = (paras.groupBy("domain", "h").count().where(F.col("count") >= cfg.domain_paragraph_min_count)
                    .select("domain", "h"))
        per_doc = paras.join(repeated, ["domain", "h"]).groupBy("id").agg(F.collect_list("h").alias("drop_paras"))
        facts = facts.join(per_doc, "id", "left")
    else:
        facts = facts.withColumn("drop_paras", F.lit(None).cast("array<string>"))
    nodes = _checkpoint(spark, map_batches(facts.select(*FACTS_SCHEMA.names),
                                           functools.partial(node_batches, cfg=cfg, min_images=min_images),
                                           KEYED_SCHEMA), sd, "nodes")
    rejects.append(_rows(nodes.where("kind != 'doc'")))
    kept = nodes.where("kind = 'doc'")

    # 5. identical image sets
    if cfg.image_set:
        w = Window.partitionBy("image_set").orderBy(*_latest_first(F.col("id").asc()))
        ranked = _checkpoint(spark, kept.withColumn("_rn", F.row_number().over(w)), sd, "image_set")
        rejects.append(_doc_drops(ranked.where("_rn > 1 AND image_set != ''"), "dup_image_set"))
        kept = ranked.where("_rn = 1 OR image_set = ''").drop("_rn")

    # 6. near duplicates
    if cfg.minhash:
        dups = _near_duplicates(spark, kept, cfg, sd)
        rejects.append(_doc_drops(dups, "near_duplicate", F.concat(F.col("url"), F.lit(" ~ "), F.col("rep_id"))))
        kept = kept.join(dups.select("id"), "id", "left_anti")

    out = _rows(kept)
    for r in rejects:
        out = out.unionByName(r)
    out.write.mode("overwrite").parquet(spark_path(sd.data))


def _near_duplicates(spark: "SparkSession", kept: "DataFrame", cfg: DedupConfig, sd: StageDir) -> "DataFrame":
    """``(id, url, rep_id)`` of the documents that are near duplicates of a better-ranked one."""
    from pyspark.sql import functions as F

    from pmd.spark.components import connected_components

    # rank: latest crawl first, then the largest id (a total order; the sort is distributed and
    # monotonically_increasing_id follows it: partition index in the high bits, row in the low)
    ranked = kept.select("id", "url", "texts", "crawl_date", "crawl_file", "crawl_offset") \
        .orderBy(*_latest_first(F.col("id").desc())).withColumn("rank", F.monotonically_increasing_id())
    ranked = _checkpoint(spark, ranked.drop("texts", "crawl_date", "crawl_file", "crawl_offset")
                         .join(map_batches(ranked.select("id", "texts"),
                                           functools.partial(signature_batches, cfg=cfg), SIGNATURE_SCHEMA), "id"),
                         sd, "signatures")
    bands = ranked.select("rank", F.explode("bands").alias("band"))
    heads = bands.groupBy("band").agg(F.min("rank").alias("head"))
    cand = (bands.join(heads, "band").where(F.col("rank") != F.col("head"))
            .select(F.col("rank").alias("src"), F.col("head").alias("dst")).distinct())
    sig = ranked.select("rank", "sig")
    matches = F.aggregate(F.zip_with(F.col("a.sig"), F.col("b.sig"), lambda x, y: (x == y).cast("int")),
                          F.lit(0), lambda acc, v: acc + v)
    verified = (cand.join(sig.alias("a"), F.col("src") == F.col("a.rank"))
                .join(sig.alias("b"), F.col("dst") == F.col("b.rank"))
                .where(matches / F.size(F.col("a.sig")) >= F.lit(float(cfg.minhash_threshold)))
                .select("src", "dst"))
    verified = _checkpoint(spark, verified, sd, "edges")
    comps = connected_components(verified)
    dup = comps.where(F.col("node") != F.col("component"))
    names = ranked.select("rank", "id", "url")
    return (dup.join(names, dup["node"] == names["rank"])
            .join(names.select(F.col("rank").alias("component"), F.col("id").alias("rep_id")), "component")
            .select("id", "url", "rep_id"))
