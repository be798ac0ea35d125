"""Trainer-test fixtures without Spark: small pair builds from source records, and copies of a build with
captions moved (shuffled within a source, swapped between random pairs). Shards, sidecars and the manifest
are written with ``pmd.shard`` (the one tar writer and manifest writer), so the loaders' checks apply."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from pmd.ids import stable_id
from pmd.records import PairRecord
from pmd.shard.manifest import read_manifest, write_manifest
from pmd.shard.tar_writer import read_tar_shard, write_parquet_sidecar, write_tar_shard


def resized_jpeg(path: str | Path, short_side: int = 256, quality: int = 90) -> bytes:
    with Image.open(path) as im:
        im.draft("RGB", (short_side, short_side))
        im = im.convert("RGB")
        s = short_side / min(im.size)
        if s < 1:
            im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=quality)
        return buf.getvalue()


def write_pairs(out: Path, samples: list[dict[str, Any]], shard_size: int) -> Path:
    """``samples`` (``key, jpg, text, source`` + metadata) as a pairs build: tars, sidecars, manifest last."""
    shards = []
    for n, lo in enumerate(range(0, len(samples), shard_size)):
        chunk = samples[lo:lo + shard_size]
        rel = f"shards/pairs-{n:06d}"
        rows = [{k: v for k, v in s.items() if k != "jpg"} for s in chunk]
        info = write_tar_shard(out / f"{rel}.tar", [
            (s["key"], {"jpg": s["jpg"], "txt": s["text"], "json": json.dumps(r, sort_keys=True)})
            for s, r in zip(chunk, rows)])
        write_parquet_sidecar(out / f"{rel}.parquet", rows)
        shards.append({**info.to_dict(), "parquet": str(out / f"{rel}.parquet")})
    write_manifest(out, "pmd-pairs", shards, {"made_by": "tests/train_helpers.py"}, [])
    return out


def folder_build(out: Path, folders: Iterable[str | Path], shard_size: int = 100) -> Path:
    """The ``image_folder`` source's records of ``folders`` as a build (what ``pmd build`` makes of them,
    without Spark): images resized to a 256 px short side, JPEG q90."""
    from pmd.sources.registry import get_source

    src = get_source("image_folder")
    cache: dict[str, bytes] = {}
    samples = []
    for rec in src.parse_all([str(f) for f in folders]):
        if not isinstance(rec, PairRecord):
            continue
        path = rec.image.path
        if path not in cache:
            cache[path] = resized_jpeg(path)
        key = stable_id(rec.source, rec.input_file, rec.input_line, rec.text)
        samples.append({"key": key, "jpg": cache[path], "text": rec.text, "id": key,
                        "source": rec.meta.get("dataset", rec.source), "image_path": path})
    return write_pairs(out, samples, shard_size)


def rewrite_captions(src: Path, dst: Path, new_text: Callable[[list[dict[str, Any]]], dict[str, str]]) -> dict[str, str]:
    """Copy build ``src`` to ``dst`` with captions replaced by ``new_text(rows)`` → {key: caption} (rows: every
    sample's ``key, text, source``); returns the changed keys' new captions."""
    shutil.copytree(src, dst)
    manifest = read_manifest(dst)
    rows = []
    for entry in manifest["shards"]:
        for key, members in read_tar_shard(dst / entry["path"]):
            meta = json.loads(members["json"]) if "json" in members else {}
            rows.append({"key": key, "text": members["txt"].decode("utf-8"), "source": meta.get("source", "unknown")})
    mapping = new_text(rows)
    shards = []
    for entry in manifest["shards"]:
        samples = []
        for key, members in read_tar_shard(dst / entry["path"]):
            if key in mapping:
                members = dict(members)
                members["txt"] = mapping[key].encode("utf-8")
                if "json" in members:
                    meta = json.loads(members["json"])
                    meta["text"] = mapping[key]
                    members["json"] = json.dumps(meta, sort_keys=True).encode()
            samples.append((key, members))
        info = write_tar_shard(dst / entry["path"], samples)
        row = {**entry, **info.to_dict(), "path": entry["path"]}
        side = entry.get("parquet")
        if side and (dst / side).is_file():
            table = pq.read_table(dst / side)
            if "key" in table.column_names and "text" in table.column_names:
                texts = [mapping.get(k, t) for k, t in zip(table.column("key").to_pylist(), table.column("text").to_pylist())]
                table = table.set_column(table.schema.get_field_index("text"), "text", [texts])
                write_parquet_sidecar(dst / side, table)
            row["parquet"] = side
        shards.append(row)
    extra = {k: v for k, v in manifest.items() if k not in ("kind", "format_version", "shards", "total_samples", "config",
                                                             "versions", "counters", "created")}
    write_manifest(dst, manifest["kind"], shards, manifest.get("config", {}), manifest.get("counters", []), extra)
    return mapping


def shuffle_source(source: str, seed: int = 0) -> Callable[[list[dict[str, Any]]], dict[str, str]]:
    """Captions of ``source`` permuted among its own pairs (every pair moved)."""
    def f(rows: list[dict[str, Any]]) -> dict[str, str]:
        mine = [r for r in rows if r["source"] == source]
        perm = np.roll(np.random.default_rng(seed).permutation(len(mine)), 1)  # a derangement of a random order
        order = np.random.default_rng(seed).permutation(len(mine))
        return {mine[order[i]]["key"]: mine[perm[i]]["text"] for i in range(len(mine)) if perm[i] != order[i]}
    return f


def swap_fraction(fraction: float, seed: int = 0) -> Callable[[list[dict[str, Any]]], dict[str, str]]:
    """``fraction`` of all pairs get their caption swapped with another random pair of the set (pairs of
    two; identical captions never count as a swap)."""
    def f(rows: list[dict[str, Any]]) -> dict[str, str]:
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(rows))[: int(round(fraction * len(rows))) // 2 * 2]
        out = {}
        for a, b in zip(idx[0::2], idx[1::2]):
            if rows[a]["text"].strip().lower() != rows[b]["text"].strip().lower():
                out[rows[a]["key"]], out[rows[b]["key"]] = rows[b]["text"], rows[a]["text"]
        return out
    return f
