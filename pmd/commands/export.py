"""`pmd export`: Export a build to other layouts (pmd: the 5-column PMD-compatible Parquet)."""

from __future__ import annotations

import argparse

from pmd.errors import NotImplementedYet


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("export", help="Export a build to other layouts (pmd: the 5-column PMD-compatible Parquet).", description="Export a build to other layouts (pmd: the 5-column PMD-compatible Parquet).")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("export", 4)
