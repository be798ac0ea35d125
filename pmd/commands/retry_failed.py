"""`pmd retry-failed`: Re-attempt the failed downloads of a build and merge them in."""

from __future__ import annotations

import argparse

from pmd.errors import NotImplementedYet


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("retry-failed", help="Re-attempt the failed downloads of a build and merge them in.", description="Re-attempt the failed downloads of a build and merge them in.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("retry-failed", 4)
