"""The row layout every build stage writes: the record's columns plus its outcome in that stage.

Each stage writes ONE dataset in which every input record appears exactly once with
``outcome`` = kept | dropped | failed, ``reason`` (drop reason or error class) and ``message``.
Kept rows feed the next stage, the others become rejects, and counters are counted from it.
"""

from __future__ import annotations

from typing import Any, Iterable

import pyarrow as pa

from pmd.records import PairRecord
from pmd.verdict import Dropped, Failure

KEPT, DROPPED, FAILED = "kept", "dropped", "failed"

PAIR_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("text", pa.string()),
    pa.field("image_url", pa.string()),
    pa.field("image_path", pa.string()),
    pa.field("crop_x", pa.int32()),
    pa.field("crop_y", pa.int32()),
    pa.field("crop_width", pa.int32()),
    pa.field("crop_height", pa.int32()),
    pa.field("image_key", pa.string()),
    pa.field("meta", pa.string()),
    pa.field("lang", pa.string()),
    pa.field("lang_score", pa.float32()),
    pa.field("input_file", pa.string()),
    pa.field("input_line", pa.int64()),
]
OUTCOME_FIELDS: list[pa.Field] = [
    pa.field("outcome", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("message", pa.string()),
]
IMAGE_FIELDS: list[pa.Field] = [
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("original_width", pa.int32()),
    pa.field("original_height", pa.int32()),
    pa.field("sha256", pa.string()),
]

PAIR_OUTCOME_SCHEMA = pa.schema(PAIR_FIELDS + OUTCOME_FIELDS)
PAIR_COLUMNS = [f.name for f in PAIR_FIELDS]


def kept_row(record: PairRecord) -> dict[str, Any]:
    return {**record.to_row(), "outcome": KEPT, "reason": None, "message": None}


def reject_row(source: str, item: Dropped | Failure, record_row: dict[str, Any] | None = None) -> dict[str, Any]:
    """Row for a parse/stage outcome that is not kept; ``record_row`` keeps the record's columns when known."""
    row: dict[str, Any] = dict(record_row) if record_row else {}
    row["source"] = source
    if isinstance(item, Dropped):
        row.update(outcome=DROPPED, reason=item.reason, message=item.detail)
    else:
        row.update(outcome=FAILED, reason=item.error, message=(item.message or "")[:1000])
    if item.input_file is not None:
        row["input_file"] = item.input_file
    if item.input_line is not None:
        row["input_line"] = item.input_line
    return row


def with_outcome(row: dict[str, Any], outcome: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    out = dict(row)
    out.update(outcome=outcome, reason=reason, message=message)
    return out


def to_batch(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Rows → a batch with exactly ``schema``'s columns (missing keys become nulls)."""
    rows = list(rows)
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.RecordBatch.from_pydict(cols, schema=schema)
