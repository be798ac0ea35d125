"""`pmd export`: Export a build to other layouts (pmd: the 5-column PMD-compatible Parquet)."""

from __future__ import annotations

import argparse

HELP = "Export a build to other layouts (pmd: the 5-column PMD-compatible Parquet)."


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("export", help=HELP, description=HELP)
    p.add_argument("layout", choices=["pmd"], help="pmd: image_url, image, text, source, meta (one row per caption)")
    p.add_argument("build_dir", help="a finished `pmd build` directory")
    p.add_argument("--out", required=True, help="output .parquet file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pmd.outputs import check_out
    from pmd.pairs.export import export_pmd

    check_out(args.out, inputs=[args.build_dir], want="file")
    n = export_pmd(args.build_dir, args.out)
    print(f"{n} rows -> {args.out}")
    return 0
