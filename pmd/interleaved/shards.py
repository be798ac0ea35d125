"""Interleaved shards: WebDataset tars (one JSON per document, each image a separate member) + Parquet.

Tar sample ``{key}.json`` = ``{"id", "url", "texts", "images": [null | "000.jpg", ...], "metadata",
"general_metadata"}`` and members ``{key}.000.jpg``, ``{key}.001.jpg``... (never base64 in JSON).
The Parquet sidecar has ``id, url, texts, images`` (original URLs), ``metadata``,
``general_metadata`` (JSON strings) and ``image_members`` (the member extension per position).
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import urlsplit

import pyarrow as pa

from pmd.ids import shard_name
from pmd.records import InterleavedDocument
from pmd.shard.tar_writer import ShardInfo, write_parquet_sidecar, write_tar_shard

SIDECAR_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("texts", pa.list_(pa.string())),
    pa.field("images", pa.list_(pa.string())),
    pa.field("metadata", pa.string()),
    pa.field("general_metadata", pa.string()),
    pa.field("image_members", pa.list_(pa.string())),
    pa.field("shard", pa.string()),
])
DOCUMENTS_SCHEMA = pa.schema([
    pa.field("id", pa.string()), pa.field("url", pa.string()), pa.field("domain", pa.string()),
    pa.field("n_texts", pa.int32()), pa.field("n_images", pa.int32()), pa.field("n_words", pa.int64()),
    pa.field("n_tokens", pa.int64()), pa.field("lang_score", pa.float32()), pa.field("shard", pa.string()),
])
_TOKEN = re.compile(r"\w+|[^\w\s]")


def member_names(doc: InterleavedDocument) -> list[str | None]:
    """``000.jpg``, ``001.jpg``... at image positions, None at text positions."""
    out: list[str | None] = []
    n = 0
    for im in doc.images:
        if im is None:
            out.append(None)
        else:
            out.append(f"{n:03d}.jpg")
            n += 1
    return out


def sample_of(doc: InterleavedDocument, blobs: Sequence[bytes]) -> tuple[str, dict[str, bytes]]:
    members = member_names(doc)
    body = {"id": doc.id, "url": doc.url, "texts": doc.texts, "images": members, "metadata": doc.metadata,
            "general_metadata": doc.general_metadata}
    out: dict[str, bytes] = {"json": json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")}
    for name, blob in zip([m for m in members if m], blobs):
        out[name] = blob
    return doc.id, out


def write_shard(out_dir: Path, index: int, chunk: Iterable[tuple[InterleavedDocument, Sequence[bytes]]]
                ) -> tuple[ShardInfo, list[dict[str, Any]]]:
    """Write shard ``index`` (``shards/docs-NNNNNN.tar`` + ``.parquet``, each atomically) from its
    documents in order; returns its info and one stats row per document. Documents stream through:
    only the current document's images are in memory."""
    name = shard_name("docs", index)
    tar = Path(out_dir) / "shards" / f"{name}.tar"
    rows: list[dict[str, Any]] = []
    stats: list[dict[str, Any]] = []

    def samples() -> Iterator[tuple[str, dict[str, bytes]]]:
        for d, b in chunk:
            row = d.to_row()
            row["image_members"] = member_names(d)
            row["shard"] = f"shards/{name}.tar"
            rows.append(row)
            stats.append(doc_stats(d, f"shards/{name}.tar"))
            yield sample_of(d, b)

    info = write_tar_shard(tar, samples(), ext_order=["json"])
    pq_path = Path(out_dir) / "shards" / f"{name}.parquet"
    write_parquet_sidecar(pq_path, rows, SIDECAR_SCHEMA)
    return ShardInfo(info.path, info.samples, info.bytes, info.sha256, str(pq_path)), stats


def doc_stats(d: InterleavedDocument, shard: str) -> dict[str, Any]:
    """The ``stats/documents.parquet`` row of a sharded document."""
    words = sum(len(t.split()) for t in d.texts if t)
    tokens = sum(len(_TOKEN.findall(t)) for t in d.texts if t)
    ls = (d.general_metadata.get("metrics") or {}).get("lang_score")
    return {"id": d.id, "url": d.url, "domain": urlsplit(d.url).netloc.lower(),
            "n_texts": sum(1 for t in d.texts if t is not None), "n_images": len(d.image_urls),
            "n_words": words, "n_tokens": tokens, "lang_score": ls, "shard": shard}


def write_shards(out_dir: Path, docs: list[tuple[InterleavedDocument, list[bytes]]],
                 docs_per_shard: int) -> tuple[list[ShardInfo], list[dict[str, Any]]]:
    """Write ``shards/docs-NNNNNN.tar`` + ``.parquet`` (documents in the given order, ``docs_per_shard``
    each); returns the shard infos and one stats row per document."""
    infos, stats = [], []
    for s, start in enumerate(range(0, len(docs), docs_per_shard)):
        info, rows = write_shard(out_dir, s, docs[start:start + docs_per_shard])
        infos.append(info)
        stats += rows
    return infos, stats


# ---------------------------------------------------------------------------------------------
# Per-batch body of the distributed shard writer (``pmd.spark.interleaved``): one task writes the
# shards whose documents it holds, each shard whole (rows arrive sorted by shard, then id).

SHARD_OUT_SCHEMA = pa.schema([
    pa.field("kind", pa.string()),  # shard | doc
    pa.field("index", pa.int64()), pa.field("path", pa.string()), pa.field("samples", pa.int64()),
    pa.field("bytes", pa.int64()), pa.field("sha256", pa.string()), pa.field("parquet", pa.string()),
] + [f for f in DOCUMENTS_SCHEMA if f.name not in ("shard",)] + [pa.field("shard", pa.string())])


def _docs_with_blobs(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[InterleavedDocument, list[bytes]]]:
    for r in rows:
        blobs = sorted(r["blobs"] or (), key=lambda b: b["pos"])
        if [b["pos"] for b in blobs] != list(range(len(r["image_keys"] or ()))):
            raise RuntimeError(f"document {r['id']}: images {len(blobs)} of {len(r['image_keys'] or ())} joined")
        yield InterleavedDocument.from_row(r), [b["jpg"] for b in blobs]


def shard_batches(batches: Iterator[pa.RecordBatch], out_dir: str) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: joined documents with ``shard`` (index) and ``blobs`` (``[{pos, jpg}]``), sorted
    by ``(shard, id)``, in; one ``shard`` row per written shard and one ``doc`` stats row per document out."""
    rows = (r for batch in batches for r in batch.to_pylist())
    for index, same_shard in itertools.groupby(rows, key=operator.itemgetter("shard")):
        info, stats = write_shard(Path(out_dir), index, _docs_with_blobs(same_shard))
        out = [{"kind": "shard", "index": index, **info.to_dict()}] + [{"kind": "doc", **s} for s in stats]
        yield pa.RecordBatch.from_pylist([{k: r.get(k) for k in SHARD_OUT_SCHEMA.names} for r in out],
                                         schema=SHARD_OUT_SCHEMA)
