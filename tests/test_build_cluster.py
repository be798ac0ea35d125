"""The sample build submitted to a Spark STANDALONE cluster on loopback equals the local-mode build."""

from __future__ import annotations

import pytest

from pmd.shard import manifest_fingerprint, read_manifest, verify_manifest

from standalone import spark_submit, standalone_cluster  # noqa: F401 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.long]


def test_spark_submit_on_standalone_equals_local(sample_build, standalone_cluster, tmp_path):
    master, state = standalone_cluster
    out = tmp_path / "cluster_build"
    res = spark_submit(master, "pmd_build.py", ["--out", str(out), "--sample-dir", str(sample_build / "sample")],
                       cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-5000:]
    # it really ran on the cluster: the master registered our application
    master_log = "".join(p.read_text(errors="replace") for p in (state / "logs").glob("*Master*.out"))
    assert "Registering app pmd-build" in master_log
    assert verify_manifest(out) == []
    local, cluster = read_manifest(sample_build), read_manifest(out)
    assert [s["sha256"] for s in cluster["shards"]] == [s["sha256"] for s in local["shards"]]
    assert manifest_fingerprint(cluster) == manifest_fingerprint(local)
