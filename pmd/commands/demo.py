"""`pmd demo`: the main job on the embedded default.

Generates the bundled sample, serves its images on loopback, runs the PMD build and the
interleaved build in Spark local mode, summarises both, and says where everything is.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

log = logging.getLogger("pmd.demo")


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("demo", help="Run the whole pipeline on the embedded sample (Spark local mode, images on loopback).",
                       description="Generate the embedded sample, serve its images on loopback, run the PMD build and "
                       "the interleaved build in Spark local mode, and print where shards, stats and manifests are.")
    p.add_argument("--out", default="build/demo", help="output directory (default: build/demo)")
    p.add_argument("--seed", type=int, default=0, help="sample seed (default: 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pmd.spark.pairs.run import build_embedded_sample as build_pairs
    from pmd.interleaved.run import build_embedded_sample as build_docs
    from pmd.shard.manifest import read_manifest
    from pmd.stats.summary import format_summary

    from pmd.outputs import check_out

    out = check_out(args.out, want="dir").resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, builder in (("pmd", build_pairs), ("interleaved", build_docs)):
        t0 = time.monotonic()
        log.info("demo: %s build of the embedded sample → %s", name, out / name)
        build_dir = builder(out / name, seed=args.seed)
        results[name] = (build_dir, time.monotonic() - t0)

    w = sys.stdout.write
    for name, (build_dir, seconds) in results.items():
        manifest = read_manifest(build_dir)
        w(f"\n== {name} build ({seconds:.0f} s): {build_dir}\n")
        w(f"   manifest : {build_dir / 'manifest.json'} ({len(manifest['shards'])} shards, "
          f"{manifest['total_samples']} samples)\n")
        w(f"   shards   : {build_dir / 'shards'}\n")
        w(f"   stats    : {build_dir / 'stats'}\n")
        w(f"   card     : {build_dir / 'DATASET_CARD.md'}\n")
        w(format_summary(build_dir) + "\n")
    w(f"\nInspect: pmd stats {results['pmd'][0]}  ·  notebooks/pmd_stats.ipynb (BUILD_DIR={results['pmd'][0]})\n")
    empty = [name for name, (build_dir, _) in results.items() if not read_manifest(build_dir)["total_samples"]]
    if empty:
        log.error("the %s build kept nothing: see its stats/ above", " and ".join(empty))
        return 1
    return 0
