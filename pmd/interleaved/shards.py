"""Interleaved shards: WebDataset tars (one JSON per document, each image a separate member) + Parquet.

Tar sample ``{key}.json`` = ``{"id", "url", "texts", "images": [null | "000.jpg", ...], "metadata",
"general_metadata"}`` and members ``{key}.000.jpg``, ``{key}.001.jpg``... (never base64 in JSON).
The Parquet sidecar has ``id, url, texts, images`` (original URLs), ``metadata``,
``general_metadata`` (JSON strings) and ``image_members`` (the member extension per position).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence
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


def write_shards(out_dir: Path, docs: list[tuple[InterleavedDocument, list[bytes]]],
                 docs_per_shard: int) -> tuple[list[ShardInfo], list[dict[str, Any]]]:
    """Write ``shards/docs-NNNNNN.tar`` + ``.parquet`` (documents in the given order); returns the shard
    infos and one stats row per document."""
    infos, stats = [], []
    for s, start in enumerate(range(0, len(docs), docs_per_shard)):
        chunk = docs[start:start + docs_per_shard]
        name = shard_name("docs", s)
        tar = out_dir / "shards" / f"{name}.tar"
        info = write_tar_shard(tar, (sample_of(d, b) for d, b in chunk), ext_order=["json"])
        rows = []
        for d, _ in chunk:
            row = d.to_row()
            row["image_members"] = member_names(d)
            row["shard"] = f"shards/{name}.tar"
            rows.append(row)
            words = sum(len(t.split()) for t in d.texts if t)
            tokens = sum(len(_TOKEN.findall(t)) for t in d.texts if t)
            ls = (d.general_metadata.get("metrics") or {}).get("lang_score")
            stats.append({"id": d.id, "url": d.url, "domain": urlsplit(d.url).netloc.lower(),
                          "n_texts": sum(1 for t in d.texts if t is not None), "n_images": len(d.image_urls),
                          "n_words": words, "n_tokens": tokens, "lang_score": ls, "shard": f"shards/{name}.tar"})
        pq_path = out_dir / "shards" / f"{name}.parquet"
        write_parquet_sidecar(pq_path, rows, SIDECAR_SCHEMA)
        infos.append(ShardInfo(info.path, info.samples, info.bytes, info.sha256, str(pq_path)))
    return infos, stats
