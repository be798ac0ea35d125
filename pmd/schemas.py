"""Arrow schemas stored as JSON in ``schemas/``; writers validate tables against them.

A field's ``type`` is a primitive name (``string``, ``int64``, ``float32``, ``bool``, ``binary``,
...), ``{"list": T}`` or ``{"struct": [fields]}``. A table conforms when it has every schema
field with the same type (extra columns are allowed: later stages add their own), and
non-nullable columns hold no nulls.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(), "large_string": pa.large_string(), "binary": pa.binary(),
    "bool": pa.bool_(), "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
    "float32": pa.float32(), "float64": pa.float64(), "timestamp_us": pa.timestamp("us"),
}


class SchemaError(ValueError):
    """A table does not conform to its declared schema."""


def _type(spec: Any) -> pa.DataType:
    if isinstance(spec, str):
        try:
            return _PRIMITIVES[spec]
        except KeyError:
            raise SchemaError(f"unknown type {spec!r}") from None
    if isinstance(spec, dict) and "list" in spec:
        return pa.list_(_type(spec["list"]))
    if isinstance(spec, dict) and "struct" in spec:
        return pa.struct([_field(f) for f in spec["struct"]])
    raise SchemaError(f"bad type spec {spec!r}")


def _field(f: dict[str, Any]) -> pa.Field:
    meta = {"doc": f["doc"]} if f.get("doc") else None
    return pa.field(f["name"], _type(f["type"]), nullable=f.get("nullable", True), metadata=meta)


def available() -> list[str]:
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.json"))


@lru_cache(maxsize=None)
def load_schema(name: str) -> pa.Schema:
    """The Arrow schema ``schemas/<name>.json``."""
    path = SCHEMA_DIR / f"{name}.json"
    if not path.exists():
        raise SchemaError(f"no schema {name!r}; available: {', '.join(available())}")
    spec = json.loads(path.read_text(encoding="utf-8"))
    return pa.schema([_field(f) for f in spec["fields"]], metadata={"name": spec.get("name", name)})


def validate(table: pa.Table | pa.RecordBatch, name: str) -> None:
    """Raise ``SchemaError`` naming every missing column, wrong type, or null in a non-nullable column."""
    schema = load_schema(name)
    problems = []
    for field in schema:
        idx = table.schema.get_field_index(field.name)
        if idx < 0:
            problems.append(f"missing column {field.name!r}")
            continue
        actual = table.schema.field(idx).type
        if not actual.equals(field.type):
            problems.append(f"column {field.name!r} is {actual}, expected {field.type}")
            continue
        if not field.nullable and table.column(idx).null_count:
            problems.append(f"column {field.name!r} has {table.column(idx).null_count} nulls")
    if problems:
        raise SchemaError(f"table does not match schema {name!r}: " + "; ".join(problems))


def table_from_rows(rows: list[dict[str, Any]], name: str) -> pa.Table:
    """Build a table with exactly schema ``name``'s columns from row dicts, and validate it."""
    schema = load_schema(name)
    table = pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()
    validate(table, name)
    return table
