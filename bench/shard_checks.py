"""What the loaders' shard checks cost: raw shard reading with ``verify="none" | "samples" | "sha256"``.

Usage: python bench/shard_checks.py BUILD_DIR [--runs 5]

Reads every shard of a build through ``pmd.loaders.shards.ShardStream`` with a decoder that keeps only
the key (so the tar reading and the checks are all that is measured; a real pipeline decodes JPEGs at
a few hundred samples/s, far below these rates). Prints one JSON line: samples per CPU-second for
each mode (median of ``--runs``, modes interleaved) and each mode's CPU time relative to ``none``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pmd.loaders.shards import ShardStream  # noqa: E402

MODES = ("none", "samples", "sha256")


def _key(raw, rng):
    return raw.key


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    times: dict[str, list[float]] = {m: [] for m in MODES}
    n = 0
    for _ in range(args.runs):
        for mode in MODES:
            ds = ShardStream(args.build, decode=_key, shuffle=False, verify=mode)
            t = time.process_time()
            n = sum(1 for _ in ds)
            times[mode].append(time.process_time() - t)
            if ds.errors.total:
                raise SystemExit(f"{args.build}: {ds.errors.as_dict()} (the build is damaged)")
    med = {m: statistics.median(v) for m, v in times.items()}
    print(json.dumps({"samples": n, "runs": args.runs,
                      **{f"{m}_samples_per_cpu_s": round(n / med[m]) for m in MODES},
                      **{f"{m}_vs_none": round(med[m] / med["none"], 3) for m in MODES}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
