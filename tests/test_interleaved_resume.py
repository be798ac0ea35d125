"""SIGKILL of the driver during each interleaved stage, then a rerun: the same manifest as a clean build."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pmd.shard import manifest_fingerprint, read_manifest, verify_manifest

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.long]

STAGES = ("extract", "dedup", "download", "shard")


def _kill_during(args, env, out, stage):
    """Start the build, SIGKILL its process group once ``stage`` has started; the stage must be unfinished."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    started = out / "stages" / stage
    deadline = time.monotonic() + 600
    try:
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"the build ended before {stage} started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the JVM it started, like a crashed node
        proc.wait(timeout=60)
    assert not (started / "_SUCCESS").exists(), f"{stage} finished before the kill"
    assert not (out / "manifest.json").exists()


def test_killed_in_every_stage_resumes_to_the_same_manifest(interleaved_sample_build, tmp_path):
    out = tmp_path / "resumed"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, NO_ALBUMENTATIONS_UPDATE="1")
    args = [sys.executable, "-m", "pmd", "interleaved", "--out", str(out)]
    for stage in STAGES:
        _kill_during(args, env, out, stage)
        for before in STAGES[:STAGES.index(stage)]:
            assert (out / "stages" / before / "_SUCCESS").exists(), before
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-5000:]
    for before in STAGES[:-1]:
        assert f"{before}: already done" in rerun.stderr
    assert verify_manifest(out) == []
    clean, resumed = read_manifest(interleaved_sample_build), read_manifest(out)
    assert [s["sha256"] for s in resumed["shards"]] == [s["sha256"] for s in clean["shards"]]
    assert manifest_fingerprint(resumed) == manifest_fingerprint(clean)
