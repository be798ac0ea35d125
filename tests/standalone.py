"""A Spark standalone cluster on loopback for the cluster-equals-local tests, and spark-submit against it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "spark_standalone.sh"


def cluster_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHON=sys.executable, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               NO_ALBUMENTATIONS_UPDATE="1", SPARK_LOCAL_IP="127.0.0.1")
    return env


@pytest.fixture
def standalone_cluster(tmp_path):
    """Master + one worker (2 cores, 2 GiB) on 127.0.0.1; stopped by a finalizer whatever happens."""
    state = tmp_path / "cluster"
    try:
        started = subprocess.run(["bash", str(SCRIPT), "start", str(state), "", "2", "2g"], env=cluster_env(),
                                 capture_output=True, text=True, timeout=240)
        assert started.returncode == 0, started.stderr[-3000:]
        yield started.stdout.strip().splitlines()[-1], state
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=cluster_env(), capture_output=True, timeout=120)


def spark_submit(master: str, pipeline: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``spark-submit pipelines/<pipeline> ARGS`` on the cluster, driver bound to loopback."""
    assert master.startswith("spark://127.0.0.1:")
    exe = Path(__import__("pyspark").__file__).parent / "bin" / "spark-submit"
    return subprocess.run(
        [str(exe), "--master", master, "--conf", "spark.driver.host=127.0.0.1",
         "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.executor.memory=1g",
         "--conf", "spark.sql.shuffle.partitions=2", "--conf", "spark.ui.enabled=false",
         str(REPO / "pipelines" / pipeline), *args],
        env=cluster_env(), capture_output=True, text=True, timeout=1500, cwd=str(cwd))
