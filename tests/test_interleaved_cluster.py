"""The interleaved sample build submitted to a Spark STANDALONE cluster on loopback equals local mode.

Local mode's answer is ``tests/golden/interleaved_sample.json`` (test_interleaved_build checks the
local build against it, shard bytes included), so the cluster build is compared with that file:
the same check without a second local build.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pmd.shard import verify_manifest

from standalone import REPO, spark_submit, standalone_cluster  # noqa: F401 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.long]


def test_interleaved_spark_submit_on_standalone_equals_local(standalone_cluster, tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from golden.interleaved_summary import summarise

    master, state = standalone_cluster
    out = tmp_path / "cluster_build"
    res = spark_submit(master, "interleaved_build.py", ["--out", str(out)], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-5000:]
    master_log = "".join(p.read_text(errors="replace") for p in (state / "logs").glob("*Master*.out"))
    assert "Registering app pmd-interleaved" in master_log  # it really ran on the cluster
    assert verify_manifest(out) == []
    local = json.loads((REPO / "tests" / "golden" / "interleaved_sample.json").read_text())
    got = summarise(out)
    for key in ("counters", "total_samples", "documents", "rejects", "shards"):
        assert got[key] == local[key], key
    for stage in ("extract", "dedup", "download", "shard"):
        assert (out / "stages" / stage / "_SUCCESS").exists()
