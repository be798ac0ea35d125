"""The interleaved sample build submitted to a Spark STANDALONE cluster on loopback equals local mode.

Local mode's answer is ``tests/golden/interleaved_sample.json`` (test_interleaved_build checks the
local build against it, shard bytes included), so the cluster build is compared with that file:
the same check without a second local build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pmd.shard import verify_manifest

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


def test_interleaved_spark_submit_on_standalone_equals_local(standalone_cluster, tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from golden.interleaved_summary import summarise

    master, state = standalone_cluster
    assert master.startswith("spark://127.0.0.1:")
    out = tmp_path / "cluster_build"
    spark_submit = Path(__import__("pyspark").__file__).parent / "bin" / "spark-submit"
    res = subprocess.run(
        [str(spark_submit), "--master", master, "--conf", "spark.driver.host=127.0.0.1",
         "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.executor.memory=1g",
         "--conf", "spark.sql.shuffle.partitions=2", "--conf", "spark.ui.enabled=false",
         str(REPO / "pipelines" / "interleaved_build.py"), "--out", str(out)],
        env=_env(), capture_output=True, text=True, timeout=1500, cwd=str(tmp_path))
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
