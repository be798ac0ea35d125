"""Stage 6, shard: the final pairs as reproducible WebDataset tars plus Parquet sidecars (the
per-shard writer; ``pmd.spark.pairs.shards`` assigns positions and runs it on the executors).

Order and keys are deterministic: samples are sorted by key (= pair id) over the whole build and
cut into runs of ``samples_per_shard``; shard N holds sorted positions ``[N*k, (N+1)*k)``. So the
same pairs give the same shards whatever the partitioning (local or cluster). Each Spark task
streams its rows (sorted by shard, key) into ``pmd.shard.write_tar_shard`` and writes the sidecar;
a pair whose image bytes are missing fails with ``image_missing`` and takes no position.
"""

from __future__ import annotations

import itertools
import json
import operator
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from pmd.pairs.outcomes import KEPT
from pmd.ids import shard_name

SIDE_SCHEMA = pa.schema([
    pa.field("key", pa.string()), pa.field("shard", pa.string()), pa.field("id", pa.string()),
    pa.field("source", pa.string()), pa.field("text", pa.string()), pa.field("image_key", pa.string()),
    pa.field("image_url", pa.string()), pa.field("image_path", pa.string()),
    pa.field("crop", pa.struct([pa.field("x", pa.int32()), pa.field("y", pa.int32()),
                                pa.field("width", pa.int32()), pa.field("height", pa.int32())])),
    pa.field("width", pa.int32()), pa.field("height", pa.int32()),
    pa.field("original_width", pa.int32()), pa.field("original_height", pa.int32()),
    pa.field("sha256", pa.string()), pa.field("lang", pa.string()), pa.field("lang_score", pa.float32()),
    pa.field("meta", pa.string()),
])

# one row per sample of the stage: what went where, plus its shard's facts (repeated per row)
SHARD_OUT_SCHEMA = pa.schema([
    pa.field("id", pa.string()), pa.field("source", pa.string()), pa.field("outcome", pa.string()),
    pa.field("reason", pa.string()), pa.field("message", pa.string()), pa.field("shard", pa.string()),
    pa.field("shard_index", pa.int64()), pa.field("shard_samples", pa.int64()),
    pa.field("shard_bytes", pa.int64()), pa.field("shard_sha256", pa.string()),
])

JSON_FIELDS = ("id", "source", "text", "image_key", "image_url", "image_path", "crop", "width", "height",
               "original_width", "original_height", "sha256", "lang", "lang_score", "meta")


def sample_json(row: dict[str, Any]) -> dict[str, Any]:
    """The ``{key}.json`` member: the pair's fields (meta as an object; crop as a box or null)."""
    crop = None
    if row.get("crop_width") is not None:
        crop = {"x": row["crop_x"], "y": row["crop_y"], "width": row["crop_width"], "height": row["crop_height"]}
    d = {k: row.get(k) for k in JSON_FIELDS if k not in ("crop", "meta")}
    d["crop"] = crop
    d["meta"] = json.loads(row.get("meta") or "{}")
    if d.get("image_url") is None:
        d.pop("image_url")
    else:
        d.pop("image_path")
    return d


def sidecar_row(row: dict[str, Any], shard: str) -> dict[str, Any]:
    j = sample_json(row)
    return {**{f.name: row.get(f.name) for f in SIDE_SCHEMA}, "key": row["id"], "shard": shard,
            "crop": j["crop"], "meta": row.get("meta") or "{}"}


def sample_members(row: dict[str, Any]) -> dict[str, bytes]:
    return {
        "jpg": bytes(row["jpg"]),
        "txt": row["text"].encode("utf-8"),
        "json": json.dumps(sample_json(row), ensure_ascii=False, sort_keys=True).encode("utf-8"),
    }


def write_shards_fn(shard_dir: str, prefix: str):
    """``mapInArrow`` function: rows sorted by (shard_index, id) → tars + sidecars, one out row per sample."""

    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pmd.shard import write_parquet_sidecar, write_tar_shard

        rows = (r for b in batches for r in b.to_pylist())
        for idx, same_shard in itertools.groupby(rows, key=operator.itemgetter("shard_index")):
            name = shard_name(prefix, idx)
            group: list[dict[str, Any]] = []

            def samples() -> Iterator[tuple[str, dict[str, bytes]]]:
                for row in same_shard:
                    group.append({k: v for k, v in row.items() if k != "jpg"})
                    yield row["id"], sample_members(row)

            info = write_tar_shard(Path(shard_dir) / f"{name}.tar", samples(), ext_order=("jpg", "txt", "json"))
            write_parquet_sidecar(Path(shard_dir) / f"{name}.parquet",
                                  [sidecar_row(r, f"shards/{name}.tar") for r in group], SIDE_SCHEMA)
            out = [{"id": r["id"], "source": r["source"], "outcome": KEPT, "reason": None, "message": None,
                    "shard": f"shards/{name}.tar", "shard_index": idx, "shard_samples": info.samples,
                    "shard_bytes": info.bytes, "shard_sha256": info.sha256} for r in group]
            yield pa.RecordBatch.from_pylist(out, schema=SHARD_OUT_SCHEMA)

    return fn
