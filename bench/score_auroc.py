"""Benchmark: `pmd score` AUROC of swapped captions on the embedded sample (issue 13's acceptance, as a sweep).

Method (what ``tests/test_score.py`` runs, for any recipe): build the embedded sample once (Spark local,
images on loopback; cached under ``--work``), copy it with 10 % of captions swapped between random pairs
(``tests/train_helpers.swap_fraction``, per ``--swap-seeds``), train ``--config`` on that same build with
the ``--set`` overrides, score every pair with the checkpoint, and print one JSON line per swap seed:
AUROC of the CSLS ``score`` and of raw cosine (swapped pairs should score lower), per-source AUROC, and
the training seconds. The targets live in the issue; this only measures.

    .venv/bin/python bench/score_auroc.py --swap-seeds 1,2 --steps 150 --set optim.lr=0.0003
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--swap-seeds", default="1", help="comma-separated seeds of the 10 %% caption swap")
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--steps", type=int, default=150, help="steps (and the schedule's max_steps; warmup 10 %%)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="trainer config override")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "pmd_bench_score"))
    args = ap.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import numpy as np
    import pyarrow.parquet as pq

    from pmd.cli import main as pmd_main
    from pmd.training.validate import auroc
    from train_helpers import rewrite_captions, swap_fraction

    work = Path(args.work)
    sample = work / "sample_build"
    if not (sample / "manifest.json").exists():
        from pmd.spark.pairs.run import build_embedded_sample

        shutil.rmtree(sample, ignore_errors=True)
        build_embedded_sample(sample)
    steps = ["--set", f"steps={args.steps}", "--set", f"optim.max_steps={args.steps}",
             "--set", f"optim.warmup_steps={max(1, args.steps // 10)}"]
    for swap in (int(s) for s in args.swap_seeds.split(",")):
        build, keys_file = work / f"swapped{swap}", work / f"swapped{swap}.json"
        if not keys_file.exists():
            shutil.rmtree(build, ignore_errors=True)
            keys_file.write_text(json.dumps(sorted(rewrite_captions(sample, build, swap_fraction(0.10, seed=swap)))))
        swapped = set(json.loads(keys_file.read_text()))
        ck = Path(tempfile.mkdtemp(prefix="ck_", dir=work))
        try:
            t0 = time.perf_counter()
            argv = ["train", "--config", args.config, "--data", str(build), "--out", str(ck),
                    "--set", f"threads={args.threads}", "--set", "data.workers=0", "--set", f"seed={args.train_seed}",
                    *steps, *(x for kv in args.set for x in ("--set", kv))]
            if pmd_main(argv) != 0:
                raise SystemExit(f"training failed: {' '.join(argv)}")
            train_s = time.perf_counter() - t0
            out = ck / "scores.parquet"
            if pmd_main(["score", str(build), "--checkpoint", str(ck / "last.pt"), "--out", str(out),
                         "--device", "cpu"]) != 0:
                raise SystemExit("scoring failed")
            t = pq.read_table(out)
        finally:
            shutil.rmtree(ck, ignore_errors=True)
        keys = t.column("key").to_pylist()
        bad = np.array([k in swapped for k in keys])
        score, cos, source = (t.column(c).to_numpy(zero_copy_only=False) for c in ("score", "cosine", "source"))
        per_source = {s: round(auroc(score[(source == s) & ~bad], score[(source == s) & bad]), 3)
                      for s in sorted(set(source)) if ((source == s) & bad).any() and ((source == s) & ~bad).any()}
        print(json.dumps({"swap_seed": swap, "train_seed": args.train_seed, "config": args.config, "steps": args.steps,
                          "overrides": args.set, "pairs": len(keys), "swapped": int(bad.sum()),
                          "auroc": round(auroc(score[~bad], score[bad]), 3), "auroc_cosine": round(auroc(cos[~bad], cos[bad]), 3),
                          "auroc_per_source": per_source, "train_s": round(train_s, 1)}), flush=True)


if __name__ == "__main__":
    main()
