"""The PMD build as a Spark application: ``spark-submit pipelines/pmd_build.py --config C --out DIR``.

Thin on purpose: the stages live in ``pmd.spark.pairs`` (each a small module wiring pure functions
from ``pmd.pairs`` with ``mapInArrow``); this file parses arguments, takes the SparkSession that spark-submit
configured (master, executors, s3a credentials) and runs the build. Without ``--config`` it
builds the embedded sample, serving its images from a loopback server on the driver (which only
executors on the same machine can reach: local mode or a standalone cluster on loopback).
"""

from __future__ import annotations

import argparse
import logging
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pmd_build.py", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="build config YAML (path or bundled name); default: embedded sample")
    p.add_argument("--out", required=True, help="build directory")
    p.add_argument("--sample-dir", help="embedded sample folder to generate into or reuse")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from pmd.config import parse_overrides
    from pmd.log import setup_logging
    from pmd.pairs.config import load_build_config
    from pmd.spark.pairs.run import build, build_embedded_sample
    from pmd.spark.session import spark_session

    setup_logging(0)
    args = parse_args(argv)
    overrides = parse_overrides(args.set)
    cfg = load_build_config(args.config, overrides) if args.config else None  # checked before Spark starts
    # the one session factory: under spark-submit it keeps the submit command's master
    spark = spark_session(app_name="pmd-build")
    if cfg is not None:
        out = build(cfg, args.out, spark=spark)
    else:
        out = build_embedded_sample(args.out, seed=args.seed, sample_dir=args.sample_dir, spark=spark,
                                    overrides=overrides)
    logging.getLogger("pmd").info("manifest: %s/manifest.json", out)
    spark.stop()
    return 0


if __name__ == "__main__":  # img2dataset's process pools need the main guard (spawn start method)
    sys.exit(main())
