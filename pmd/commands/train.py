"""`pmd train`: Train the reference FLAVA model on shards; --validate checks a build end to end."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "Train the reference FLAVA model on shards; --validate checks a build end to end (PASS / FAIL / INCONCLUSIVE)."


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("train", help=HELP, description=HELP + " Configs: --config tiny | base | PATH.yaml "
                       "(tiny → configs/train_tiny.yaml).")
    p.add_argument("--config", default="tiny", help="config name (tiny, base) or YAML path (default: tiny)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set steps=50 --set data.batch_size=32 (YAML values)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--validate", metavar="BUILD_DIR",
                      help="hold out a shard, train aligned + shuffled-caption control, write REPORT_DIR/report.{json,md}")
    what.add_argument("--data", metavar="BUILD_DIR", help="train on all shards of a build (checkpoints in --out)")
    what.add_argument("--images-to-build", metavar="OUT_DIR", help=argparse.SUPPRESS)  # deprecated: see run()
    p.add_argument("--out", help="report directory (--validate) or checkpoint directory (--data)")
    p.add_argument("--resume", action="store_true", help="--data: continue from OUT/last.pt if present")
    p.add_argument("--verify-shards", action="store_true",
                   help="--data: also check every shard's sha256 against the manifest before training (rank 0, "
                        "once; sizes are always checked)")
    p.add_argument("--flickr8k", help=argparse.SUPPRESS)
    p.add_argument("--coco", help=argparse.SUPPRESS)
    p.add_argument("--shard-size", type=int, default=200, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


IMAGES_TO_BUILD_MOVED = (
    "pmd train --images-to-build was removed: a local image-caption folder is now a build input like any other "
    "source. Put `sources: {image_folder: {paths: [FLICKR8K_DIR, COCO_DIR]}}` in a build config and run "
    "`pmd build --config CONFIG.yaml --out BUILD` (see README, 'Local image-caption folders')")

#: exit status per verdict (2 is a user error, as everywhere in pmd)
EXIT = {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 3}


def run(args: argparse.Namespace) -> int:
    from pmd.errors import UserError

    if args.images_to_build:
        raise UserError(IMAGES_TO_BUILD_MOVED)
    from pmd.config import parse_overrides
    from pmd.outputs import check_out
    from pmd.training.config import load_train_config

    cfg = load_train_config(args.config, parse_overrides(args.set))
    if not args.out:
        raise UserError("--out is required")
    check_out(args.out, inputs=[args.validate or args.data], want="dir")
    if args.validate:
        from pmd.training.validate import validate_build

        report = validate_build(args.validate, cfg, args.out)
        sys.stdout.write(f"{report['verdict']}: {report['why']} ({args.out}/report.md)\n")
        if report["misaligned"]:
            sys.stdout.write(f"  misaligned: {', '.join(report['misaligned'])}\n")
        if report["decide"]:
            sys.stdout.write(f"  what would decide it: {report['decide']}\n")
        for line in report["reasons"]:
            sys.stdout.write(f"  {line}\n")
        return EXIT[report["verdict"]]
    from pmd.training.run import train_on_build

    rows = train_on_build(args.data, cfg, args.out, resume=args.resume, verify="sha256" if args.verify_shards else "size")
    if rows:
        sys.stdout.write(json.dumps(rows[-1]) + "\n")
    return 0
