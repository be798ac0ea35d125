"""Stage 3, dedup before download: Karpathy eval leakage, then exact duplicates across sources.

A pair's identity is its image (URL, or path + crop: ``image_key``) plus its normalised caption.
Among duplicates the winner is the one whose source comes first in ``dedup.source_priority`` (then
by source name), then the smallest id: the same regardless of partitioning or run. Losers are
``dropped`` with reason ``duplicate_pair`` and the winner's id as message. Leaks (VG and LN-COCO
images whose COCO id is in Karpathy val/test) are dropped as ``karpathy_eval_leak`` first.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

import pyarrow as pa

from pmd.pairs.config import BuildConfig, resolve_path
from pmd.pairs.outcomes import DROPPED, KEPT, PAIR_OUTCOME_SCHEMA, to_batch

DEDUP_SCHEMA = pa.schema(list(PAIR_OUTCOME_SCHEMA) + [pa.field("dedup_key", pa.string()),
                                                      pa.field("priority", pa.int32())])


def normalise_caption(text: str) -> str:
    """Case- and whitespace-insensitive form of a caption, for exact duplicate detection."""
    return " ".join(text.lower().split())


def dedup_key(row: dict[str, Any]) -> str:
    return f"{row['image_key']}\x1f{normalise_caption(row['text'] or '')}"


def coco_id_of(source: str, meta: dict[str, Any]) -> int | None:
    """The COCO image id a Visual Genome or LN-COCO record is about, if any."""
    value = meta.get("coco_id") if source == "visual_genome" else meta.get("image_id")
    if value in (None, "", "null"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def mark_leaks(rows: Iterable[dict[str, Any]], eval_ids: frozenset[int], sources: frozenset[str],
               priority: dict[str, int]) -> Iterator[dict[str, Any]]:
    """Drop rows about a Karpathy val/test COCO image; add ``dedup_key`` and ``priority`` to all."""
    for row in rows:
        row = dict(row, outcome=KEPT, reason=None, message=None)
        row["dedup_key"] = dedup_key(row)
        row["priority"] = priority.get(row["source"], len(priority))
        if eval_ids and row["source"] in sources:
            cid = coco_id_of(row["source"], json.loads(row["meta"] or "{}"))
            if cid is not None and cid in eval_ids:
                row.update(outcome=DROPPED, reason="karpathy_eval_leak", message=f"coco_id {cid}")
        yield row


def pick_winners(rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Pure reference of the Spark window below: dedup_key → the winning id."""
    best: dict[str, tuple[int, str]] = {}
    for r in rows:
        cand = (r["priority"], r["id"])  # ties on equal ids: any one of them wins, they are the same pair
        if r["dedup_key"] not in best or cand < best[r["dedup_key"]]:
            best[r["dedup_key"]] = cand
    return {k: v[1] for k, v in best.items()}


def leak_fn(eval_ids: frozenset[int], sources: frozenset[str], priority: dict[str, int]):
    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield to_batch(mark_leaks(batch.to_pylist(), eval_ids, sources, priority), DEDUP_SCHEMA)

    return fn


def load_eval_ids(cfg: BuildConfig) -> frozenset[int]:
    if not cfg.dedup.karpathy_file:
        return frozenset()
    from pmd.sources.karpathy import eval_coco_ids

    return frozenset(int(i) for i in eval_coco_ids(resolve_path(cfg.dedup.karpathy_file, cfg.base_dir)))
