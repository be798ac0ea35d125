"""img2dataset's raw shards, and the images parts we make of them.

img2dataset writes, per shard ``NNNNN``: ``NNNNN.parquet`` (one metadata row per URL: status, error
message, sizes, and the columns we asked it to keep - ``image_key`` holds every key of the URL, space
separated), ``NNNNN.tar`` (WebDataset: the successful images) and, last, ``NNNNN_stats.json``. A
shard without its stats file did not finish: its rows are ignored (its keys end as
``missing_from_downloader``) and a rerun downloads it again.

``normalise_shard`` turns one finished shard into ``images/part-NNNNN.parquet`` (``IMAGES_SCHEMA``,
one row per successful key, sha256 of the stored JPEG - img2dataset's own hashes the original bytes).
It runs inside the Spark task that downloaded the shard, while its files are hot in the page cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pmd.shard.tar_format import iter_members

log = logging.getLogger(__name__)

#: Columns of the ``images/`` parts.
IMAGES_SCHEMA = pa.schema([
    pa.field("image_key", pa.string(), nullable=False),
    pa.field("jpg", pa.binary()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("original_width", pa.int32()),
    pa.field("original_height", pa.int32()),
    pa.field("sha256", pa.string()),
])

#: img2dataset metadata columns the status table is made of.
META_COLUMNS = ["url", "key", "image_key", "status", "error_message", "width", "height", "original_width",
                "original_height"]


def finished_raw_shards(raw: Path) -> list[Path]:
    """img2dataset metadata Parquet files whose ``_stats.json`` exists (stats are written after the data)."""
    out = []
    for p in sorted(raw.glob("*.parquet")):
        if (raw / f"{p.stem}_stats.json").exists():
            out.append(p)
        else:
            log.warning("download: ignoring unfinished img2dataset shard %s", p)
    return out


def part_path(images_dir: Path, name: str) -> Path:
    return images_dir / f"part-{name}.parquet"


def _tar_images(tar_path: Path, ext: str) -> dict[str, bytes]:
    """img2dataset key → image bytes of one of its WebDataset tars."""
    found: dict[str, bytes] = {}
    if not tar_path.exists():
        return found
    with open(tar_path, "rb") as f:
        for name, data in iter_members(f):
            key, _, member_ext = name.partition(".")
            if member_ext == ext:
                found[key] = data
    return found


def normalise_shard(raw: Path, name: str, images_dir: Path, ext: str = "jpg") -> Path:
    """One finished img2dataset shard (``NNNNN.parquet`` metadata + ``NNNNN.tar`` images) → our images
    part ``images_dir/part-NNNNN.parquet``: one row per (successful URL, key), sha256 of the stored bytes.
    Written atomically; rows are sorted by image_key so the part is deterministic."""
    d = pq.read_table(raw / f"{name}.parquet", columns=META_COLUMNS).to_pydict()
    jpgs = _tar_images(raw / f"{name}.tar", ext)
    rows: list[tuple[str, bytes, dict[str, Any]]] = []
    for i in range(len(d["url"])):
        jpg = jpgs.get(d["key"][i]) if d["status"][i] == "success" else None
        if not jpg:
            continue
        img = {"width": d["width"][i], "height": d["height"][i], "original_width": d["original_width"][i],
               "original_height": d["original_height"][i], "sha256": hashlib.sha256(jpg).hexdigest()}
        for key in (d["image_key"][i] or "").split():
            rows.append((key, jpg, img))
    rows.sort(key=lambda r: r[0])
    out: dict[str, list[Any]] = {f.name: [] for f in IMAGES_SCHEMA}
    for key, jpg, img in rows:
        out["image_key"].append(key)
        out["jpg"].append(jpg)
        for k, v in img.items():
            out[k].append(v)
    path = part_path(images_dir, name)
    tmp = images_dir / f".{path.name}.tmp-{os.getpid()}"  # hidden: dataset readers skip it if left behind
    try:
        pq.write_table(pa.Table.from_pydict(out, schema=IMAGES_SCHEMA), tmp, compression="none")  # JPEGs: no gain
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_empty_part(images_dir: Path) -> None:
    """Readers of an images dataset with no successful image still need its schema."""
    if not any(images_dir.glob("part-*.parquet")):
        pq.write_table(IMAGES_SCHEMA.empty_table(), part_path(images_dir, "empty"))


#: Output of ``raw_status_batch``: img2dataset's verdict on each key of a finished shard.
RAW_STATUS_SCHEMA = pa.schema([pa.field("image_key", pa.string(), nullable=False), pa.field("error", pa.string()),
                               pa.field("error_message", pa.string())])


def raw_status_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Metadata rows of finished shards (``image_key`` = the URL's keys, space separated, ``status``,
    ``error_message``) → one ``RAW_STATUS_SCHEMA`` row per key with the stable error class. A key whose
    image made it into the images part is a success whatever this says; the rest fail with it."""
    from pmd.download.errors import classify_error

    d = batch.to_pydict()
    keys, errors, messages = [], [], []
    for joined, status, message in zip(d["image_key"], d["status"], d["error_message"]):
        msg = message or ("image missing from the shard tar" if status == "success" else status) or "no image"
        error = classify_error(msg, status)
        for key in (joined or "").split():
            keys.append(key)
            errors.append(error)
            messages.append(msg)
    return pa.RecordBatch.from_pydict({"image_key": keys, "error": errors, "error_message": messages},
                                      schema=RAW_STATUS_SCHEMA)
