"""`pmd build`: Run the PMD corpus build (Spark): ingest, filter, dedup, download, shard, manifest, stats."""

from __future__ import annotations

import argparse

from pmd.errors import NotImplementedYet


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("build", help="Run the PMD corpus build (Spark): ingest, filter, dedup, download, shard, manifest, stats.", description="Run the PMD corpus build (Spark): ingest, filter, dedup, download, shard, manifest, stats.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("build", 4)
