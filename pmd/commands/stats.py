"""`pmd stats`: Summarise a build: counts per source and stage, drop reasons, plots."""

from __future__ import annotations

import argparse

from pmd.errors import NotImplementedYet


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("stats", help="Summarise a build: counts per source and stage, drop reasons, plots.", description="Summarise a build: counts per source and stage, drop reasons, plots.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("stats", 8)
