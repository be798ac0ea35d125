"""Same answers as before the scale-out: the embedded sample's build equals the OLD code's build.

``tests/golden/pairs_sample.json`` was extracted (``tests/golden/pairs_extract.py``) from the build
of commit ed999f8 (driver-side dedup_images, requests and shard listing) on the embedded sample
(seed 0, base_url http://127.0.0.1:8765). The session's ``sample_build`` is the same sample built
by today's code (Spark dedup_images with connected components, requests as a DataFrame, shards
written on the executors): shard bytes, counters, kept ids and reject reasons must all be equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

GOLDEN = Path(__file__).parent / "golden" / "pairs_sample.json"


def test_sample_build_equals_the_old_build(sample_build):
    from golden.pairs_extract import GOLDEN_BASE_URL, extract

    meta = json.loads((sample_build / "sample" / "sample.json").read_text(encoding="utf-8"))
    assert meta["base_url"] == GOLDEN_BASE_URL and meta["seed"] == 0, "the golden file is for this sample only"
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    got = extract(sample_build)
    assert got["counters"] == want["counters"]
    assert got["reject_reasons"] == want["reject_reasons"]
    assert got["kept_ids"] == want["kept_ids"]
    assert got["shards"] == want["shards"]  # byte-identical tars (sha256 and size)
    assert got == want
