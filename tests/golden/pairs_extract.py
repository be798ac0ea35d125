"""What the PMD golden test compares: a build's answers, extracted from its output files.

``python tests/golden/pairs_extract.py BUILD_DIR > tests/golden/pairs_sample.json`` wrote the golden
file from the build of the OLD code (commit ed999f8, embedded sample, seed 0, base_url
http://127.0.0.1:8765); ``tests/test_build_golden.py`` extracts the same from a new build and compares.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

GOLDEN_BASE_URL = "http://127.0.0.1:8765"


def extract(build: Path) -> dict[str, Any]:
    """Shard bytes (sha256), counters, kept ids and drop/fail reason counts of a pairs build."""
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    rejects = pq.read_table(build / "stats" / "rejects.parquet").to_pylist()
    reasons = Counter(f"{r['stage']}|{r['source']}|{r['outcome']}|{r['reason']}" for r in rejects)
    return {
        "shards": [{"path": s["path"], "samples": s["samples"], "bytes": s["bytes"], "sha256": s["sha256"]}
                   for s in manifest["shards"]],
        "total_samples": manifest["total_samples"],
        "counters": json.loads((build / "stats" / "counters.json").read_text(encoding="utf-8")),
        "kept_ids": sorted(pq.read_table(build / "stats" / "samples.parquet", columns=["id"]).column("id").to_pylist()),
        "reject_reasons": dict(sorted(reasons.items())),
    }


if __name__ == "__main__":
    json.dump(extract(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
