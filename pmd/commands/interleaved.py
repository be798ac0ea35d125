"""`pmd interleaved`: Build M3W-style interleaved documents from WARC files (Spark); `extract` one page."""

from __future__ import annotations

import argparse

from pmd.errors import NotImplementedYet


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("interleaved", help="Build M3W-style interleaved documents from WARC files (Spark); `extract` one page.", description="Build M3W-style interleaved documents from WARC files (Spark); `extract` one page.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("interleaved", 5)
