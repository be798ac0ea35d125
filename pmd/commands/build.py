"""`pmd build`: Run the PMD corpus build (Spark): ingest, filter, dedup, download, shard, manifest, stats."""

from __future__ import annotations

import argparse

HELP = "Run the PMD corpus build (Spark): ingest, filter, dedup, download, shard, manifest, stats."


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("build", help=HELP, description=HELP + " Without --config it builds the embedded "
                       "sample, serving its images from a loopback server it starts itself.")
    p.add_argument("--config", help="build config (YAML path or bundled name, e.g. pmd_cluster_example); "
                   "default: the embedded sample")
    p.add_argument("--out", required=True, help="build directory (reruns resume finished stages)")
    p.add_argument("--sample-dir", help="embedded sample: generate into / reuse this folder (default OUT/sample)")
    p.add_argument("--seed", type=int, default=0, help="embedded sample: generator seed")
    p.add_argument("--master", help="Spark master (default: spark-submit's, else the config's, else local[*])")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set shard.samples_per_shard=500 (YAML value)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pmd.config import parse_overrides
    from pmd.outputs import check_out

    # everything the user typed is checked before any work (and before Spark is imported)
    overrides = parse_overrides(args.set)
    if args.master:
        overrides["spark.master"] = args.master
    check_out(args.out, inputs=[p for p in (args.config, args.sample_dir) if p], want="dir")
    from pmd.pairs.config import load_build_config

    cfg = load_build_config(args.config, overrides) if args.config else None
    from pmd.spark.pairs.run import SAMPLE_CONFIG, build, build_embedded_sample

    if cfg is not None:
        out = build(cfg, args.out)
    else:
        load_build_config(SAMPLE_CONFIG, overrides)  # a bad --set fails before the sample is generated
        out = build_embedded_sample(args.out, seed=args.seed, sample_dir=args.sample_dir, overrides=overrides)
    print(f"{out}/manifest.json")
    return 0
