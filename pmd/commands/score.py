"""`pmd score`: Per-pair image-text alignment scores of a build from a `pmd train` checkpoint."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "Score every pair of a build with a trained checkpoint (image-text similarity, ITM probability)."
DESCRIPTION = (HELP + " Writes one Parquet row per pair: key, score, cosine, itm_prob, source, shard. `cosine` is the "
               "cosine similarity of the contrastive embeddings (CLIP score); `score` is that similarity corrected "
               "for hubness (CSLS: 2*cosine minus the mean similarity of the image to its 10 nearest captions and of "
               "the caption to its 10 nearest images, in a reference sample of the build's shards, the pair itself "
               "left out), which ranks misaligned pairs lower than raw cosine does because generic or templated "
               "captions and plain images no longer shift a pair's level. `score` is relative to the build; filter "
               "misaligned pairs by a threshold on it (or by a quantile); `pmd stats BUILD --scores F.parquet` shows "
               "the distribution.")


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("score", help=HELP, description=DESCRIPTION)
    p.add_argument("build_dir", metavar="BUILD_DIR", help="a `pmd build` --out directory")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a .pt file written by `pmd train --data BUILD --out DIR`")
    p.add_argument("--out", required=True, metavar="F.parquet", help="where to write the scores")
    p.add_argument("--batch", type=int, default=256, help="pairs per forward pass (default 256)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--reference", type=int, default=4096, metavar="N",
                   help="pairs in the reference sample for score's neighbour terms (whole shards spread over the "
                        "build; default 4096; memory and the extra pass grow with N)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers reading the shards (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pmd.errors import UserError
    from pmd.training.score import format_score_summary, score_build, score_summary

    if args.batch <= 0:
        raise UserError(f"--batch must be positive, got {args.batch}")
    if args.reference <= 0:
        raise UserError(f"--reference must be positive, got {args.reference}")
    from pmd.outputs import check_out

    check_out(args.out, inputs=[args.build_dir, args.checkpoint], want="file")
    info = score_build(args.build_dir, args.checkpoint, args.out, batch=args.batch, device=args.device,
                       workers=args.workers, reference=args.reference)
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.write(format_score_summary(score_summary(args.out)) + "\n")
    return 0
