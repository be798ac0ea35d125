"""The one SparkSession factory: the CLI, ``pipelines/`` and both builds get their session here.

Under ``spark-submit`` the master (and executors, credentials) come from the submit command, so no
``builder.master()`` is set that would override it; otherwise ``local[*]`` unless a master is given.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

#: Settings every pmd session gets unless the caller's ``conf`` says otherwise.
DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.session.timeZone": "UTC",
    "spark.python.worker.reuse": "true",
}


def spark_session(master: str | None = None, app_name: str = "pmd", conf: dict[str, Any] | None = None) -> "SparkSession":
    """Get or create the process's SparkSession.

    With ``master=None`` the master comes from ``spark-submit`` (cluster runs) or defaults to
    ``local[*]``. Workers run the same Python as the driver unless ``PYSPARK_PYTHON`` says otherwise.
    A session that already exists is returned (with ``conf`` applied where Spark allows it at runtime).
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
    settings = {**DEFAULTS, "spark.driver.memory": os.environ.get("PMD_SPARK_DRIVER_MEMORY", "2g"), **(conf or {})}
    for k, v in settings.items():
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
