"""``map_batches``: the only way records reach Spark executors - Arrow batches in, batches out.

The callables are pure functions from ``pmd/`` (parse, filter, crop, hash, write a shard); no row
UDFs, so Python is entered once per batch, not once per record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame

BatchFn = Callable[[Iterator["pa.RecordBatch"]], Iterator["pa.RecordBatch"]]


def map_batches(df: "DataFrame", fn: BatchFn, schema: "pa.Schema") -> "DataFrame":
    """``df.mapInArrow(fn)`` with an Arrow output schema."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return df.mapInArrow(fn, from_arrow_schema(schema))
