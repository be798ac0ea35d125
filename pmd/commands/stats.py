"""`pmd stats`: Summarise a build: counts per source and stage, drop reasons, plots."""

from __future__ import annotations

import argparse
import json
import logging
import sys

log = logging.getLogger("pmd.stats")


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser(
        "stats",
        help="Summarise a build: counts per source and stage, drop reasons, plots.",
        description="Summarise a build (PMD pairs or interleaved documents; the kind is read from "
        "manifest.json): print per-source and per-stage counts, drop reasons and failure errors, and "
        "write plots as PNG.",
    )
    p.add_argument("build_dir", metavar="BUILD_DIR", help="a `pmd build` or `pmd interleaved` --out directory")
    p.add_argument("--plots", metavar="DIR", default=None, help="where to write PNGs (default BUILD_DIR/stats/plots)")
    p.add_argument("--no-plots", action="store_true", help="print the summary only")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    p.add_argument("--card", action="store_true", help="also (re)write BUILD_DIR/DATASET_CARD.md")
    p.add_argument("--scores", metavar="F.parquet", default=None,
                   help="also show the distribution of per-pair alignment scores written by `pmd score`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pmd.stats.load import load_build
    from pmd.stats.summary import format_summary, summary_dict

    if args.plots and not args.no_plots:
        from pmd.outputs import check_out

        check_out(args.plots, inputs=[args.build_dir], want="dir", flag="--plots")
    build = load_build(args.build_dir)
    if args.json:
        sys.stdout.write(json.dumps(summary_dict(build), indent=1) + "\n")
    else:
        sys.stdout.write(format_summary(build) + "\n")
    if not args.no_plots:
        import matplotlib

        matplotlib.use("Agg")
        from pmd.stats.plots import save_all_plots

        written = save_all_plots(build, args.plots)
        out_dir = next(iter(written.values())).parent if written else args.plots
        log.info("wrote %d plots to %s", len(written), out_dir)
        if not args.json:
            sys.stdout.write(f"\nPlots ({len(written)}) in {out_dir}:\n")
            for path in written.values():
                sys.stdout.write(f"  {path.name}\n")
    if getattr(args, "scores", None):
        from pmd.training.score import format_score_summary, score_summary

        sys.stdout.write("\n" + format_score_summary(score_summary(args.scores)) + "\n")
    if args.card:
        from pmd.stats.card import write_dataset_card

        log.info("wrote %s", write_dataset_card(build.root))
    return 0
