"""Readers for the Parquet outputs of pmd builds (shard sidecars and stats tables), with pyarrow.

The sidecars (``shards/pairs-NNNNNN.parquet``, ``shards/docs-NNNNNN.parquet``) hold every field of the
samples except the bytes, so metadata questions never open a tar.

Other tools read the same files directly:

* HF ``datasets``::

      from datasets import load_dataset
      ds = load_dataset("parquet", data_files={"train": "BUILD/shards/pairs-*.parquet"}, split="train")

* DuckDB::

      import duckdb
      duckdb.sql("SELECT source, count(*) FROM read_parquet('BUILD/shards/pairs-*.parquet') GROUP BY source")

  (``BUILD/stats/samples.parquet``, ``rejects.parquet`` and ``documents.parquet`` likewise.)

``metadata``/``general_metadata``/``meta`` columns are JSON strings; decode them with ``json.loads``
(DuckDB: ``json_extract``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from pmd.errors import UserError
from pmd.loaders.shards import expand_shards, open_url


def parquet_files(source: str | Path | Sequence[str | Path]) -> list[str]:
    """The Parquet sidecars of a build directory / manifest, or the given files and patterns."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    out: list[str] = []
    for item in items:
        s = str(item)
        out.extend(expand_shards(s, manifest_field="parquet") if not s.endswith(".parquet") else expand_shards(s))
    return out


def read_table(source: str | Path | Sequence[str | Path], columns: Sequence[str] | None = None) -> pa.Table:
    """All rows of the sidecars (or files) in ``source`` as one Arrow table, in shard order."""
    tables = []
    for url in parquet_files(source):
        with open_url(url) as f:
            table = pq.read_table(f, columns=list(columns) if columns else None)
        tables.append(table)
    if not tables:
        raise UserError(f"no Parquet files in {source!r}")
    return pa.concat_tables(tables, promote_options="default")


def read_pairs_table(build_dir: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """The pair sidecars of a ``pmd build`` directory: one row per sample (``key``, ``shard``, ``text``, ...)."""
    return read_table(build_dir, columns)


def read_interleaved_table(build_dir: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """The document sidecars of a ``pmd interleaved`` directory (``id, url, texts, images, ...``)."""
    return read_table(build_dir, columns)


def iter_parquet_rows(
    source: str | Path | Sequence[str | Path], columns: Sequence[str] | None = None, batch_size: int = 4096
) -> Iterator[dict[str, Any]]:
    """Rows as dicts, streaming (one record batch in memory at a time)."""
    for url in parquet_files(source):
        with open_url(url) as f:
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(columns=list(columns) if columns else None, batch_size=batch_size):
                yield from batch.to_pylist()
