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


def parse_overrides(items: list[str]) -> dict[str, object]:
    import yaml

    from pmd.errors import UserError

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    from pmd.pairs.config import load_build_config
    from pmd.pairs.run import build, build_embedded_sample
    from pmd.config import ConfigError
    from pmd.errors import UserError

    overrides = parse_overrides(args.set)
    if args.master:
        overrides["spark.master"] = args.master
    try:
        if args.config:
            out = build(load_build_config(args.config, overrides), args.out)
        else:
            out = build_embedded_sample(args.out, seed=args.seed, sample_dir=args.sample_dir, overrides=overrides)
    except ConfigError as e:
        raise UserError(str(e)) from e
    print(f"{out}/manifest.json")
    return 0
