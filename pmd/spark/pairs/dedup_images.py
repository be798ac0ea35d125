"""Stage 5, dedup after download, on Spark: one image per content, every caption kept.

Images with the same sha256 of their stored JPEG (or, with ``method: dhash``, equal dHashes or
dHashes within ``max_distance`` bits) are one image; every pair of the group is pointed at the
group's canonical image - the lowest ``(source priority, image_key)`` - so the shards store it
once per pair key but the stats count it once. Nothing is dropped here: ``image_key`` becomes the
canonical key and ``source_image_key`` keeps the pair's own.

Everything is a Spark job; the answer equals ``pmd.download.canonical_images`` (the pure
reference; a test compares them on random data with dHash chains):

* nodes are images with a sha256, named ``lpad(priority, 10) || image_key`` so that the smallest
  node of a group IS its canonical image;
* exact groups (equal sha256, equal dHash) become stars to the group minimum (one groupBy each);
* near duplicates: the distinct dHash values are exploded into ``max_distance + 1`` bit bands
  (two hashes within the distance agree on at least one band), values sharing a band value are
  candidate pairs, kept when their real Hamming distance is within ``max_distance``;
* ``pmd.spark.components.connected_components`` joins it all (chains merge, as in union-find).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmd.pairs.config import BuildConfig
from pmd.pairs.outcomes import PAIR_FIELDS
from pmd.spark.batches import map_batches
from pmd.spark.components import connected_components
from pmd.spark.stages import StageDir, spark_path

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

#: digits of the priority prefix of a node id (priorities are small non-negative ranks)
PRIORITY_DIGITS = 10


def _stars(nodes: "DataFrame", by: str) -> "DataFrame":
    """Edges from every node of a ``by`` group to the group's smallest node."""
    from pyspark.sql import functions as F

    mins = nodes.groupBy(by).agg(F.min("node").alias("m"))
    return (nodes.join(mins, by).where(F.col("node") != F.col("m"))
            .select(F.col("node").alias("src"), F.col("m").alias("dst")))


def _near_edges(nodes: "DataFrame", max_distance: int) -> "DataFrame":
    """Edges between representatives of distinct dHash values within ``max_distance`` bits."""
    from pyspark.sql import functions as F

    from pmd.download.content_dedup import _bands

    reps = nodes.groupBy("phash").agg(F.min("node").alias("rep"))
    bands = F.array(*[F.struct(F.lit(i).alias("band"),
                               (F.shiftrightunsigned("phash", shift).bitwiseAND(F.lit(mask).cast("long")))
                               .alias("value"))
                      for i, (shift, mask) in enumerate(_bands(max_distance))])
    banded = reps.select("phash", "rep", F.explode(bands).alias("b")).select(
        "phash", "rep", F.col("b.band").alias("band"), F.col("b.value").alias("value"))
    a, b = banded.alias("a"), banded.alias("b")
    cand = a.join(b, (F.col("a.band") == F.col("b.band")) & (F.col("a.value") == F.col("b.value"))
                  & (F.col("a.phash") < F.col("b.phash")))
    close = cand.where(F.bit_count(F.col("a.phash").bitwiseXOR(F.col("b.phash"))) <= max_distance)
    return close.select(F.col("a.rep").alias("src"), F.col("b.rep").alias("dst")).distinct()


def canonical_keys(per_image: "DataFrame", use_phash: bool, max_distance: int) -> "DataFrame":
    """``image_key, sha256, phash, priority`` (one row per image) → ``image_key, canonical``.

    Images without sha256 (failed) are left out: they are their own canonical image.
    """
    from pyspark.sql import functions as F

    if not 0 <= max_distance < 32:
        raise ValueError(f"max_distance must be in [0, 31], got {max_distance}")
    use_phash = use_phash or max_distance > 0
    nodes = per_image.where("sha256 IS NOT NULL").select(
        "sha256", "phash",
        F.concat(F.lpad(F.col("priority").cast("string"), PRIORITY_DIGITS, "0"), F.col("image_key")).alias("node"))
    edges = _stars(nodes, "sha256")
    if use_phash:
        hashed = nodes.where("phash IS NOT NULL")
        edges = edges.unionByName(_stars(hashed, "phash"))
        if max_distance:
            edges = edges.unionByName(_near_edges(hashed, max_distance))
    comp = connected_components(edges, nodes.select("node"))
    return comp.select(F.expr(f"substring(node, {PRIORITY_DIGITS + 1})").alias("image_key"),
                       F.expr(f"substring(component, {PRIORITY_DIGITS + 1})").alias("canonical"))


def run_dedup_images(spark: "SparkSession", cfg: BuildConfig, kept_df: "DataFrame", sd: StageDir) -> None:
    from pmd.download import DHASH_SCHEMA, dhash_batch

    prio = cfg.priority()
    case = "CASE source " + " ".join(f"WHEN '{s}' THEN {i}" for s, i in prio.items()) + f" ELSE {len(prio)} END"
    kept_df.createOrReplaceTempView("pmd_di_pairs")
    per_image = spark.sql(f"SELECT image_key, first(sha256) AS sha256, min({case}) AS priority "
                          "FROM pmd_di_pairs GROUP BY image_key")
    results = spark.read.parquet(spark_path(StageDir(sd.out_dir, "download").sub("images")))
    dhash = cfg.dedup_images.method == "dhash"
    if dhash:
        ok = results.where("status = 'success'").select("image_key", "jpg")
        hashes = map_batches(ok, lambda it: (dhash_batch(b) for b in it), DHASH_SCHEMA)
        per_image = per_image.join(hashes, "image_key", "left")
    else:
        per_image = per_image.selectExpr("*", "CAST(NULL AS BIGINT) AS phash")
    mapping = canonical_keys(per_image, dhash, cfg.dedup_images.max_distance if dhash else 0)
    map_path = sd.sub("canonical")
    mapping.write.mode("overwrite").parquet(spark_path(map_path))
    spark.read.parquet(spark_path(map_path)).createOrReplaceTempView("pmd_di_map")
    results.drop("jpg").createOrReplaceTempView("pmd_di_images")
    pair_cols = ", ".join(f"p.{f.name}" for f in PAIR_FIELDS if f.name != "image_key")
    spark.sql(f"""
        SELECT {pair_cols}, coalesce(m.canonical, p.image_key) AS image_key, p.image_key AS source_image_key,
               'kept' AS outcome, CAST(NULL AS STRING) AS reason, CAST(NULL AS STRING) AS message,
               coalesce(i.width, p.width) AS width, coalesce(i.height, p.height) AS height,
               coalesce(i.original_width, p.original_width) AS original_width,
               coalesce(i.original_height, p.original_height) AS original_height,
               coalesce(i.sha256, p.sha256) AS sha256
        FROM pmd_di_pairs p
        LEFT JOIN pmd_di_map m ON p.image_key = m.image_key
        LEFT JOIN pmd_di_images i ON m.canonical = i.image_key
    """).write.mode("overwrite").parquet(spark_path(sd.data))
