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
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="interleaved_build.py", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="interleaved config YAML (path or bundled name); default: embedded sample")
    p.add_argument("--out", required=True, help="build directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (YAML value)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import yaml
    from pyspark.sql import SparkSession

    from pmd.commands.interleaved import _overrides
    from pmd.config import load, resolve_config_path
    from pmd.interleaved.config import InterleavedConfig
    from pmd.interleaved.run import build, build_embedded_sample
    from pmd.log import setup_logging

    setup_logging(0)
    args = parse_args(argv)
    data = _overrides(args.set)
    if args.config:
        path = resolve_config_path(args.config)
        data = {**(yaml.safe_load(path.read_text(encoding="utf-8")) or {}), **data}
    builder = SparkSession.builder.appName("pmd-interleaved")
    for key, value in {"spark.sql.execution.arrow.pyspark.enabled": "true", "spark.sql.session.timeZone": "UTC",
                       "spark.ui.showConsoleProgress": "false"}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    cfg = load(InterleavedConfig, data)
    if cfg.inputs:
        build(cfg, args.out, spark=spark, root=resolve_config_path(args.config).parent if args.config else None)
    else:
        build_embedded_sample(args.out, seed=args.seed, spark=spark, overrides=data)
    logging.getLogger("pmd").info("manifest: %s/manifest.json", args.out)
    spark.stop()
    return 0


if __name__ == "__main__":  # img2dataset's process pools need the main guard (spawn start method)
    sys.exit(main())
