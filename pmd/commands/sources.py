"""`pmd sources`: List the PMD sources and parse raw source files into unified pair records."""

from __future__ import annotations

import argparse

from pmd.errors import NotImplementedYet


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("sources", help="List the PMD sources and parse raw source files into unified pair records.", description="List the PMD sources and parse raw source files into unified pair records.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("sources", 3)
