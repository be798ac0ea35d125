"""Stats of a PMD build, the parts without Spark: counter order, column lists, part-file merging.

``pmd.spark.pairs.stats`` counts everything with Spark from the stage outputs; the driver only
merges the part files of the two Parquet tables into single files (streamed row group by row group:
memory stays at one row group) and writes the JSONs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pmd.pairs.config import STAGES
from pmd.counters import CounterBook

log = logging.getLogger(__name__)

SAMPLES_COLUMNS = ("id", "source", "text", "caption_words", "lang", "lang_score", "width", "height",
                   "original_width", "original_height", "image_key", "sha256", "shard")
REJECTS_COLUMNS = ("stage", "source", "outcome", "reason", "message", "input_file", "input_line", "image_url")
WORD_BUCKETS = (1, 2, 3, 5, 8, 12, 16, 20, 30, 50, 100)


def ordered_counters(book: CounterBook) -> list[dict[str, Any]]:
    """``CounterBook.to_list()`` with stages in pipeline order (then source)."""
    rank = {s: i for i, s in enumerate(STAGES)}
    return sorted(book.to_list(), key=lambda d: (rank.get(d["stage"], len(rank)), d["source"]))


def merge_parts(src_dir: str, dst: str) -> None:
    """Spark's part files → one Parquet file at ``dst`` (temp + rename), in part-name order."""
    parts = sorted(p for p in Path(src_dir).glob("part-*") if p.suffix == ".parquet" or p.name.endswith(".parquet"))
    tmp = f"{dst}.tmp-{os.getpid()}"
    writer = None
    try:
        schema = pq.read_schema(parts[0]) if parts else None
        for p in parts:
            f = pq.ParquetFile(p)
            for i in range(f.num_row_groups):
                t = f.read_row_group(i)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, schema or t.schema)
                writer.write_table(t.cast(schema) if schema is not None else t)
        if writer is None:
            import pyarrow as pa

            pq.write_table(pa.table({}) if schema is None else schema.empty_table(), tmp)
        else:
            writer.close()
            writer = None
        os.replace(tmp, dst)
    finally:
        if writer is not None:
            writer.close()
        if os.path.exists(tmp):
            os.remove(tmp)
