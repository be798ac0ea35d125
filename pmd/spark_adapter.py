"""The one module of ``pmd/`` that knows Spark: session setup and batch mapping.

Pipelines (``pipelines/``) stay thin: they read inputs, call ``map_batches`` with a pure
function from ``pmd/`` that maps Arrow record batches, and write outputs. Everything per-record
lives in pure functions testable without Spark.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession


def spark_session(master: str | None = None, app_name: str = "pmd", conf: dict[str, Any] | None = None) -> "SparkSession":
    """Get or create the SparkSession.

    With ``master=None`` the master comes from ``spark-submit`` (cluster runs) or defaults to
    ``local[*]``. Workers run the same Python as the driver unless ``PYSPARK_PYTHON`` says otherwise.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    elif not _master_given_elsewhere(conf):
        builder = builder.master("local[*]")
    defaults = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.shuffle.partitions": "8",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": os.environ.get("PMD_SPARK_DRIVER_MEMORY", "2g"),
        "spark.python.worker.reuse": "true",
    }
    for k, v in {**defaults, **(conf or {})}.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("PMD_SPARK_LOG_LEVEL", "WARN"))
    return spark


def _master_given_elsewhere(conf: dict[str, Any] | None) -> bool:
    """True under ``spark-submit`` (it starts the JVM and sets PYSPARK_GATEWAY_PORT) or when env/conf name a master."""
    return bool(
        os.environ.get("PYSPARK_GATEWAY_PORT")
        or os.environ.get("SPARK_MASTER")
        or os.environ.get("PYSPARK_SUBMIT_ARGS")
        or "spark.master" in (conf or {})
    )


def map_batches(df: "DataFrame", fn: Callable[[Iterator["pa.RecordBatch"]], Iterator["pa.RecordBatch"]],
                schema: "pa.Schema") -> "DataFrame":
    """``df.mapInArrow(fn)`` with an Arrow output schema: batches in, batches out, no row UDFs."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return df.mapInArrow(fn, from_arrow_schema(schema))
