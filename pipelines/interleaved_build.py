"""The interleaved build as a Spark application:
``spark-submit pipelines/interleaved_build.py --out DIR [--config C] [--set KEY=VALUE]``.

Thin on purpose: the stages live in ``pmd.interleaved`` (pure functions; ``pmd.interleaved.run``
wires them with ``mapInArrow``). This file parses arguments, takes the SparkSession spark-submit
configured and runs the build. Without ``--config`` (or with a config that names no inputs) it
builds the embedded sample's WARCs, serving their images from a loopback server on the driver.
"""

from __future__ import annotations

import argparse
import logging
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="interleaved_build.py", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="interleaved config YAML (path or bundled name); default: embedded sample")
    p.add_argument("--out", required=True, help="build directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (YAML value)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from pmd.commands.interleaved import load_request
    from pmd.interleaved.run import build, build_embedded_sample
    from pmd.log import setup_logging
    from pmd.spark.session import spark_session

    setup_logging(0)
    args = parse_args(argv)
    cfg, data, root = load_request(args.config, args.set)  # checked completely before Spark starts
    # the one session factory: under spark-submit it keeps the submit command's master
    spark = spark_session(app_name="pmd-interleaved")
    if cfg.inputs:
        build(cfg, args.out, spark=spark, root=root)
    else:
        build_embedded_sample(args.out, seed=args.seed, spark=spark, overrides=data)
    logging.getLogger("pmd").info("manifest: %s/manifest.json", args.out)
    spark.stop()
    return 0


if __name__ == "__main__":  # img2dataset's process pools need the main guard (spawn start method)
    sys.exit(main())
