"""The PMD build as a Spark application: ``spark-submit pipelines/pmd_build.py --config C --out DIR``.

Thin on purpose: the stages live in ``pmd.pairs`` (each a small module wiring pure functions from
``pmd/`` with ``mapInArrow``); this file parses arguments, takes the SparkSession that spark-submit
configured (master, executors, s3a credentials) and runs the build. Without ``--config`` it
builds the embedded sample, serving its images from a loopback server on the driver (which only
executors on the same machine can reach: local mode or a standalone cluster on loopback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


SESSION_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.python.worker.reuse": "true",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pmd_build.py", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="build config YAML (path or bundled name); default: embedded sample")
    p.add_argument("--out", required=True, help="build directory")
    p.add_argument("--sample-dir", help="embedded sample folder to generate into or reuse")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from pmd.pairs.config import load_build_config
    from pmd.pairs.run import build, build_embedded_sample
    from pmd.commands.build import parse_overrides
    from pmd.log import setup_logging
    from pyspark.sql import SparkSession

    setup_logging(0)
    args = parse_args(argv)
    overrides = parse_overrides(args.set)
    # spark-submit decides the master (so no builder.master() here, which would override it); the
    # session is created once and reused by every stage
    builder = SparkSession.builder.appName("pmd-build")
    for key, value in SESSION_DEFAULTS.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("PMD_SPARK_LOG_LEVEL", "WARN"))
    if args.config:
        out = build(load_build_config(args.config, overrides), args.out, spark=spark)
    else:
        out = build_embedded_sample(args.out, seed=args.seed, sample_dir=args.sample_dir, spark=spark,
                                    overrides=overrides)
    logging.getLogger("pmd").info("manifest: %s/manifest.json", out)
    spark.stop()
    return 0


if __name__ == "__main__":  # img2dataset's process pools need the main guard (spawn start method)
    sys.exit(main())
