"""The sample build submitted to a Spark STANDALONE cluster on loopback equals the local-mode build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pmd.shard import manifest_fingerprint, read_manifest, verify_manifest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "spark_standalone.sh"

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.long]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHON=sys.executable, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               NO_ALBUMENTATIONS_UPDATE="1", SPARK_LOCAL_IP="127.0.0.1")
    return env


@pytest.fixture
def standalone_cluster(tmp_path):
    """Master + one worker (2 cores, 2 GiB) on 127.0.0.1; stopped by a finalizer whatever happens."""
    state = tmp_path / "cluster"
    try:
        started = subprocess.run(["bash", str(SCRIPT), "start", str(state), "", "2", "2g"], env=_env(),
                                 capture_output=True, text=True, timeout=240)
        assert started.returncode == 0, started.stderr[-3000:]
        yield started.stdout.strip().splitlines()[-1], state
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=_env(), capture_output=True, timeout=120)


def test_spark_submit_on_standalone_equals_local(sample_build, standalone_cluster, tmp_path):
    master, state = standalone_cluster
    assert master.startswith("spark://127.0.0.1:")
    out = tmp_path / "cluster_build"
    spark_submit = Path(__import__("pyspark").__file__).parent / "bin" / "spark-submit"
    res = subprocess.run(
        [str(spark_submit), "--master", master, "--conf", "spark.driver.host=127.0.0.1",
         "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.executor.memory=1g",
         "--conf", "spark.sql.shuffle.partitions=2", "--conf", "spark.ui.enabled=false",
         str(REPO / "pipelines" / "pmd_build.py"), "--out", str(out), "--sample-dir", str(sample_build / "sample")],
        env=_env(), capture_output=True, text=True, timeout=1500, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-5000:]
    # it really ran on the cluster: the master registered our application
    master_log = "".join(p.read_text(errors="replace") for p in (state / "logs").glob("*Master*.out"))
    assert "Registering app pmd-build" in master_log
    assert verify_manifest(out) == []
    local, cluster = read_manifest(sample_build), read_manifest(out)
    assert [s["sha256"] for s in cluster["shards"]] == [s["sha256"] for s in local["shards"]]
    assert manifest_fingerprint(cluster) == manifest_fingerprint(local)
