"""A build killed (SIGKILL) mid-download and rerun ends with the same shards as an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pmd.shard import read_manifest, verify_manifest

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.long]


def _pmd(*args: str) -> list[str]:
    # the console-script entry (a __main__ guard): img2dataset's spawned logger process needs it
    return [sys.executable, "-m", "pmd", *args]


def test_killed_build_resumes_to_identical_shards(sample_build, tmp_path):
    out = tmp_path / "resumed"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, NO_ALBUMENTATIONS_UPDATE="1")
    args = _pmd("build", "--out", str(out), "--sample-dir", str(sample_build / "sample"))
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    # the checked, distinct URLs img2dataset reads (pmd.download.engine step 3): fetching starts next
    fetching = out / "cache" / "download" / "_work" / "urls" / "_SUCCESS"
    deadline = time.monotonic() + 600
    try:
        while not fetching.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, "the build finished before it could be killed"
        assert fetching.exists()
        time.sleep(1.0)  # img2dataset is running now (the slow-fault URLs keep it busy for seconds)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the JVM it started, like a crashed node
        proc.wait(timeout=60)
    assert not (out / "manifest.json").exists()
    assert not (out / "stages" / "download" / "_SUCCESS").exists()
    assert (out / "stages" / "dedup" / "_SUCCESS").exists()

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-5000:]
    assert "dedup: already done" in rerun.stderr
    assert verify_manifest(out) == []
    assert [s["sha256"] for s in read_manifest(out)["shards"]] == \
        [s["sha256"] for s in read_manifest(sample_build)["shards"]]
