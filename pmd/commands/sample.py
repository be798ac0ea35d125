"""`pmd sample`: Generate the embedded sample (raw metadata of all 9 sources, images, WARC) and serve its images."""

from __future__ import annotations

import argparse

from pmd.errors import NotImplementedYet


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("sample", help="Generate the embedded sample (raw metadata of all 9 sources, images, WARC) and serve its images.", description="Generate the embedded sample (raw metadata of all 9 sources, images, WARC) and serve its images.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedYet("sample", 2)
