"""`pmd train`: Train the reference FLAVA model on shards; --validate checks a build end to end."""

from __future__ import annotations

import argparse

from pmd.errors import NotImplementedYet


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("train", help="Train the reference FLAVA model on shards; --validate checks a build end to end.", description="Train the reference FLAVA model on shards; --validate checks a build end to end.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("train", 7)
