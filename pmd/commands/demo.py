"""`pmd demo`: the main job on the embedded default (sample → loopback images → builds → stats)."""

from __future__ import annotations

import argparse

from pmd.errors import NotImplementedYet


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("demo", help="Run the whole pipeline on the embedded sample (Spark local mode, images on loopback).",
                       description="Generate the embedded sample, serve its images on loopback, run the PMD build and "
                       "the interleaved build in Spark local mode, and print where shards, stats and manifests are.")
    p.add_argument("--out", default="build/demo", help="output directory (default: build/demo)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("demo", 2)
