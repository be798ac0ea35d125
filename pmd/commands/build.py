"""`pmd build`: Run the PMD corpus build (Spark): ingest, filter, dedup, download, shard, manifest, stats."""

from __future__ import annotations

import argparse
import logging

HELP = "Run the PMD corpus build (Spark): ingest, filter, dedup, download, shard, manifest, stats."

log = logging.getLogger("pmd.build")


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
    return _exit_status(out)


def _exit_status(out) -> int:
    """1 when a stage kept nothing (the build still committed, so `pmd retry-failed` can recover it)."""
    from pmd.counters import CounterBook
    from pmd.shard.manifest import read_manifest

    manifest = read_manifest(out)
    if manifest.get("total_samples"):
        return 0
    from pmd.pairs.config import STAGES

    book = CounterBook.from_list(manifest.get("counters", []))
    stages = {c.stage for c in book}
    empty = next((st for st in STAGES if st in stages and book.total(st).kept == 0), "shard")
    tot = book.total(empty) if empty in stages else None
    why = ", ".join(f"{k} {v}" for k, v in sorted({**tot.dropped, **tot.failed}.items(), key=lambda kv: -kv[1])[:5]) \
        if tot is not None else ""
    log.error("the build kept no pair: stage %s kept 0 of %s (%s); see `pmd stats %s`%s", empty,
              tot.input if tot is not None else 0, why or "no input", out,
              "; transient download errors: `pmd retry-failed DIR`" if empty == "download" else "")
    return 1
