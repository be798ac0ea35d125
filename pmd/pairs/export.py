"""``pmd export pmd DIR --out FILE.parquet``: a build as facebook/pmd-compatible rows.

Five columns (``schemas/pmd_export.json``): ``image_url`` for URL sources, ``image`` (the stored
JPEG bytes from the shard) for local-path sources — exactly one of the two is set — then ``text``,
``source`` (PMD's source names) and ``meta`` (JSON string of the raw fields). One row per caption,
in shard order. Streams shard by shard, so memory stays at one shard.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pmd import schemas
from pmd.errors import UserError

log = logging.getLogger(__name__)

#: pmd source name → the name facebook/pmd uses, where they differ
PMD_SOURCE_NAMES = {"wit": "google/wit"}


def pmd_source_name(source: str) -> str:
    return PMD_SOURCE_NAMES.get(source, source)


def export_pmd(build_dir: str | Path, out_file: str | Path) -> int:
    """Write the export; returns the number of rows."""
    from pmd.shard import read_manifest, read_tar_shard

    root = Path(build_dir)
    manifest = read_manifest(root)
    if manifest.get("kind") != "pmd-pairs":
        raise UserError(f"{root} is a {manifest.get('kind')!r} build, not a PMD pairs build")
    schema = schemas.load_schema("pmd_export")
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{out}.tmp-{os.getpid()}")
    n = 0
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for shard in manifest["shards"]:
                side = pq.read_table(root / shard["parquet"]).to_pylist()
                need_bytes = {r["key"] for r in side if r["image_url"] is None}
                jpgs = {}
                if need_bytes:
                    jpgs = {k: m["jpg"] for k, m in read_tar_shard(root / shard["path"]) if k in need_bytes}
                rows = []
                for r in side:
                    url = r["image_url"]
                    meta = json.loads(r["meta"] or "{}")
                    rows.append({"image_url": url, "image": None if url is not None else jpgs[r["key"]],
                                 "text": r["text"], "source": pmd_source_name(r["source"]),
                                 "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True)})
                table = pa.Table.from_pylist(rows, schema=schema)
                schemas.validate(table, "pmd_export")
                writer.write_table(table)
                n += len(rows)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %d rows to %s", n, out)
    return n
