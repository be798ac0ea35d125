"""Connected components of an edge DataFrame, in Spark, without collecting anything to the driver.

The *large-star / small-star* iteration (Kiveris et al., "Connected Components in MapReduce and
Beyond", SoCC 2014): alternately point every node's larger neighbours at the smallest node of its
neighbourhood (large-star) and every node plus its smaller neighbours at the smallest of those
(small-star). Both keep the components and only ever lower labels; when every edge ``(v, m)`` ends
at a node ``m`` that is not itself the start of an edge, the edges form one star per component
with the component's minimum at its centre. Each round is a couple of shuffles of the edge set;
real dedup graphs converge in a few rounds (O(log n)). Lineage is cut every round (checkpoint when
a checkpoint directory is set, else a local checkpoint) so plans stay small.

Node ids may be any orderable Spark type (strings, longs); the component label is the smallest
node id, so encoding an order into the id (``lpad(priority) || key``) picks a deterministic
representative with no extra pass.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

DEFAULT_MAX_ROUNDS = 64


class ComponentsDidNotConverge(RuntimeError):
    """The iteration hit its round bound (a pathological graph, or the bound is too small)."""


def _cut(df: "DataFrame") -> "DataFrame":
    """Materialise ``df`` and drop its lineage (reliable checkpoint if configured, else local)."""
    sc = df.sparkSession.sparkContext
    if sc.getCheckpointDir():
        return df.checkpoint(eager=True)
    return df.localCheckpoint(eager=True)


def _large_star(edges: "DataFrame") -> "DataFrame":
    from pyspark.sql import functions as F

    both = edges.unionByName(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    mins = both.groupBy("src").agg(F.min("dst").alias("m")).select("src", F.least("m", "src").alias("m"))
    return (both.join(mins, "src").where(F.col("dst") > F.col("src"))
            .select(F.col("dst").alias("src"), F.col("m").alias("dst")).distinct())


def _small_star(edges: "DataFrame") -> "DataFrame":
    from pyspark.sql import functions as F

    oriented = (edges.select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst"))
                .where(F.col("src") != F.col("dst")).distinct())
    mins = oriented.groupBy("src").agg(F.min("dst").alias("m"))
    leaves = (oriented.join(mins, "src").where(F.col("dst") != F.col("m"))
              .select(F.col("dst").alias("src"), F.col("m").alias("dst")))
    return leaves.unionByName(mins.select("src", F.col("m").alias("dst"))).distinct()


def _unfinished(edges: "DataFrame") -> bool:
    """True until the edges are a star forest: each node has at most one edge ``(node, centre)``
    and no centre has an edge of its own (one Spark job)."""
    from pyspark.sql import functions as F

    starts = edges.groupBy("src").agg(F.count("*").alias("n"))
    centre_with_edge = edges.select(F.col("dst").alias("src")).join(starts, "src", "left_semi")
    two_edges = starts.where(F.col("n") > 1).select("src")
    return centre_with_edge.unionByName(two_edges).limit(1).count() > 0


def connected_components(edges: "DataFrame", nodes: "DataFrame | None" = None,
                         max_rounds: int = DEFAULT_MAX_ROUNDS) -> "DataFrame":
    """``(node, component)`` for every node of ``edges`` (columns ``src``, ``dst``) and of ``nodes``.

    ``component`` is the smallest node id of the node's component. ``nodes`` (column ``node``)
    adds isolated nodes, which are their own component. Edges are undirected; self-loops and
    duplicates are harmless. Raises ``ComponentsDidNotConverge`` after ``max_rounds`` rounds.
    """
    from pyspark.sql import functions as F

    e = (edges.select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst"))
         .where(F.col("src").isNotNull() & F.col("dst").isNotNull() & (F.col("src") != F.col("dst")))
         .distinct())
    e = _cut(e)
    rounds = 0
    while _unfinished(e):
        if rounds >= max_rounds:
            raise ComponentsDidNotConverge(f"connected components: no convergence after {max_rounds} rounds")
        e = _cut(_small_star(_large_star(e)))
        rounds += 1
    log.info("connected components: converged after %d round(s)", rounds)
    # the star forest: every edge is (member, centre), the centre being the component's minimum
    labels = e.select(F.col("src").alias("node"), F.col("dst").alias("component"))
    centres = e.select(F.col("dst").alias("node"), F.col("dst").alias("component"))
    out = labels.unionByName(centres)
    if nodes is not None:
        alone = nodes.select("node").distinct().join(out.select("node"), "node", "left_anti")
        out = out.unionByName(alone.select("node", F.col("node").alias("component")))
    return out.distinct()
