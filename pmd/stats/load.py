"""Read a build directory (PMD pairs or interleaved documents) into tables.

One loader for both kinds so that the CLI, the notebooks and the dataset card agree on what a
build contains. Everything is read from the files the builds write (ARCHITECTURE.md); missing
optional files give empty tables, a missing or unknown manifest is a clear ``UserError``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow.parquet as pq

from pmd.counters import CounterBook
from pmd.shard import manifest as shard_manifest
from pmd.shard.tar_writer import read_tar_shard
from pmd.errors import UserError

PAIRS = shard_manifest.PAIRS_KIND
INTERLEAVED = shard_manifest.INTERLEAVED_KIND
KINDS = shard_manifest.KINDS

# Stage order of each build kind, as far as it is known; other stages are placed by their size.
KNOWN_STAGE_ORDER = {
    PAIRS: ["ingest", "filter", "dedup", "download", "dedup_images", "shard"],
    INTERLEAVED: ["read", "extract", "filter", "dedup", "download", "shard",
                  "filter_nodes", "dedup_nodes", "download_nodes"],
}
# Interleaved builds also count paragraphs and images in node-level stages (``filter_nodes``, ...);
# their units are nodes, not documents, so they are kept out of the document funnel.
NODE_SUFFIX = "_nodes"


def is_node_stage(stage: str) -> bool:
    return stage.endswith(NODE_SUFFIX)

MAKE_HINT = ("Create the embedded sample builds with `make demo` (writes build/demo/pmd and "
             "build/demo/interleaved), or point BUILD_DIR at the --out directory of `pmd build` / "
             "`pmd interleaved`.")

REJECT_COLUMNS = ["stage", "source", "outcome", "reason", "message", "input_file", "input_line", "image_url"]


@dataclass
class Build:
    """The tables of one build directory."""

    root: Path
    kind: str
    manifest: dict[str, Any]
    counters: CounterBook
    rejects: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    samples: pd.DataFrame | None = None  # pmd-pairs: stats/samples.parquet (without the caption text)
    documents: pd.DataFrame | None = None  # interleaved-docs: stats/documents.parquet

    @property
    def items(self) -> pd.DataFrame:
        """The per-item table of this kind (pairs or documents)."""
        out = self.samples if self.kind == PAIRS else self.documents
        return out if out is not None else pd.DataFrame()

    @property
    def stage_order(self) -> list[str]:
        """Record-level stages (pairs or documents) in pipeline order."""
        return stage_order(self.counters, self.kind)

    @property
    def node_stage_order(self) -> list[str]:
        """Node-level stages (interleaved paragraphs and images), in pipeline order."""
        return stage_order(self.counters, self.kind, nodes=True)

    def shard_paths(self) -> list[Path]:
        return [self.root / s["path"] for s in self.manifest.get("shards", [])]

    def shard_parquet_paths(self) -> list[Path]:
        out = []
        for s in self.manifest.get("shards", []):
            p = s.get("parquet") or str(Path(s["path"]).with_suffix(".parquet"))
            out.append(self.root / p)
        return out


def resolve_build_dir(path: str | Path) -> Path:
    """``path`` as given, or relative to the repository root (notebooks run from notebooks/)."""
    p = Path(path).expanduser()
    if p.is_dir() or p.is_absolute():
        return p
    from pmd.config import REPO_ROOT

    alt = REPO_ROOT / p
    return alt if alt.is_dir() else p


def read_manifest(build_dir: str | Path) -> dict[str, Any]:
    """The build's manifest (``pmd.shard.read_manifest``, kind checked), saying how to make a build."""
    return shard_manifest.read_manifest(Path(build_dir), kind=KINDS, hint=MAKE_HINT)


def read_counters(build_dir: str | Path, manifest: dict[str, Any] | None = None) -> CounterBook:
    """stats/counters.json, falling back to the copy in the manifest."""
    path = Path(build_dir) / "stats" / "counters.json"
    if path.is_file():
        return CounterBook.from_list(json.loads(path.read_text(encoding="utf-8")))
    return CounterBook.from_list((manifest or {}).get("counters", []))


# Columns the stats never use (caption text: the heaviest column of samples.parquet) and
# low-cardinality strings held as categoricals, so that per-source grouping stays fast on millions of rows.
_SKIP_COLUMNS = {"text"}
_CATEGORICAL = ("source", "lang", "shard", "domain")


def _read_parquet(path: Path, skip: set[str] = frozenset()) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    names = pq.read_schema(path).names
    df = pq.read_table(path, columns=[c for c in names if c not in skip]).to_pandas()
    for c in _CATEGORICAL:
        if c in df and df[c].dtype == object:
            df[c] = df[c].astype("category")
    return df


def load_build(build_dir: str | Path) -> Build:
    """Read a finished build (``pmd-pairs`` or ``interleaved-docs``) into a ``Build``."""
    root = resolve_build_dir(build_dir)
    manifest = read_manifest(root)
    stats = root / "stats"
    rejects = _read_parquet(stats / "rejects.parquet")
    if rejects is None:
        rejects = pd.DataFrame({c: pd.Series(dtype="object") for c in REJECT_COLUMNS})
    summary_path = stats / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    build = Build(root=root, kind=manifest["kind"], manifest=manifest, counters=read_counters(root, manifest),
                  rejects=rejects, summary=summary)
    if build.kind == PAIRS:
        build.samples = _read_parquet(stats / "samples.parquet", skip=_SKIP_COLUMNS)
    else:
        build.documents = _read_parquet(stats / "documents.parquet")
    return build


def as_build(build: "Build | str | Path") -> Build:
    """A ``Build`` from a ``Build`` or a build directory path (so callers may pass either)."""
    return build if isinstance(build, Build) else load_build(build)


def stage_order(book: CounterBook, kind: str, nodes: bool = False) -> list[str]:
    """Stages in pipeline order: known stages in their documented order, others by falling input.

    ``counters.json`` may be sorted by name, so the order is reconstructed; a funnel only ever
    shrinks, so an unknown stage with more input comes earlier. ``nodes`` selects the node-level
    stages instead of the record-level ones.
    """
    known = KNOWN_STAGE_ORDER.get(kind, [])
    totals = {s: book.total(s) for s in book.stages() if is_node_stage(s) == nodes}

    def key(s: str) -> tuple[int, int, int, str]:
        pos = known.index(s) if s in known else len(known)
        return (-totals[s].input, -totals[s].kept, pos, s)

    if all(s in known for s in totals):
        return sorted(totals, key=known.index)
    return sorted(totals, key=key)


# ---------------------------------------------------------------- shard readers


def iter_shard_samples(build: Build, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Pair samples from the tar shards: ``{"key", "json" (dict), "text", "image" (bytes), "ext"}``."""
    n = 0
    for path in build.shard_paths():
        for key, group in read_tar_shard(path):
            meta = json.loads(group.get("json", b"{}") or b"{}")
            ext = next((e for e in ("jpg", "jpeg", "png", "webp") if e in group), None)
            text = group["txt"].decode("utf-8") if "txt" in group else meta.get("text", "")
            yield {"key": key, "json": meta, "text": text, "image": group.get(ext) if ext else None, "ext": ext}
            n += 1
            if limit is not None and n >= limit:
                return


def iter_shard_documents(build: Build, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Interleaved documents from the tar shards: the sample JSON plus ``"image_bytes"`` per position."""
    n = 0
    for path in build.shard_paths():
        for key, group in read_tar_shard(path):
            if "json" not in group:
                continue
            doc = json.loads(group["json"])
            doc["key"] = key
            doc["image_bytes"] = [group.get(m) if m else None for m in doc.get("images", [])]
            yield doc
            n += 1
            if limit is not None and n >= limit:
                return


def find_document(build: Build, doc_id: str | None = None, index: int = 0) -> dict[str, Any]:
    """One document from the shards, by id (or key) or by position."""
    for i, doc in enumerate(iter_shard_documents(build)):
        if (doc_id is not None and doc_id in (doc.get("id"), doc.get("key"))) or (doc_id is None and i == index):
            return doc
    raise UserError(f"document {doc_id if doc_id is not None else f'#{index}'} not found in {build.root}/shards")


def decode_image(data: bytes):
    """PIL image from encoded bytes (imported lazily)."""
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    return img
