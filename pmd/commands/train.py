"""`pmd train`: Train the reference FLAVA model on shards; --validate checks a build end to end."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "Train the reference FLAVA model on shards; --validate checks a build end to end."


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
    what.add_argument("--images-to-build", metavar="OUT_DIR",
                      help="turn image-caption folders (--flickr8k DIR, --coco DIR) into a PMD build the trainer reads")
    p.add_argument("--out", help="report directory (--validate) or checkpoint directory (--data)")
    p.add_argument("--resume", action="store_true", help="--data: continue from OUT/last.pt if present")
    p.add_argument("--flickr8k", help="a Flickr8k folder (images/ + Flickr8k.token.txt)")
    p.add_argument("--coco", help="a COCO 2017 folder (train2017/, val2017/, annotations/captions_*.json)")
    p.add_argument("--shard-size", type=int, default=200, help="--images-to-build: pairs per shard (default 200)")
    p.set_defaults(func=run)


def _overrides(items: list[str]) -> dict:
    import yaml

    from pmd.errors import UserError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    from pmd.errors import UserError

    if args.images_to_build:
        from pmd.training.realdata import folders_to_build

        if not (args.flickr8k or args.coco):
            raise UserError("--images-to-build needs --flickr8k DIR and/or --coco DIR")
        info = folders_to_build(args.images_to_build, flickr8k=args.flickr8k, coco=args.coco, shard_size=args.shard_size)
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return 0
    from pmd.training.config import load_train_config

    cfg = load_train_config(args.config, _overrides(args.set))
    if not args.out:
        raise UserError("--out is required")
    if args.validate:
        from pmd.training.validate import validate_build

        report = validate_build(args.validate, cfg, args.out)
        sys.stdout.write(("PASS" if report["pass"] else "FAIL") + f": {args.out}/report.md\n")
        for line in report["reasons"]:
            sys.stdout.write(f"  {line}\n")
        return 0 if report["pass"] else 1
    from pmd.training.run import train_on_build

    rows = train_on_build(args.data, cfg, args.out, resume=args.resume)
    if rows:
        sys.stdout.write(json.dumps(rows[-1]) + "\n")
    return 0
