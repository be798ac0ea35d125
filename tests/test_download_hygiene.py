"""No helper process outlives a SIGKILLed download: img2dataset's statistics process (ours,
``LoggingLoggerProcess``) and multiprocessing's resource tracker end with the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

CHILD = textwrap.dedent("""
    import sys, time
    from pmd.download.i2d_logger import LoggingLoggerProcess

    if __name__ == "__main__":
        logger = LoggingLoggerProcess(sys.argv[1], False, "pmd-test", {})
        logger.start()  # exactly what img2dataset.download does before its shards run
        print(logger.pid, flush=True)
        time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def test_helpers_die_with_a_sigkilled_download(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    (tmp_path / "out").mkdir()
    env = {**os.environ, "PMD_NETGUARD": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "out")], stdout=subprocess.PIPE, env=env,
                            text=True)
    try:
        logger_pid = int(proc.stdout.readline())
        deadline = time.monotonic() + 60
        helpers = _descendants(proc.pid)
        while len(helpers) < 2 and time.monotonic() < deadline:  # the logger and the resource tracker
            time.sleep(0.2)
            helpers = _descendants(proc.pid)
        assert logger_pid in helpers and len(helpers) >= 2, helpers
        time.sleep(1.0)  # let the logger arm its death signal (it does so first thing in ``run``)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in helpers) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = [p for p in helpers if _alive(p)]
        assert not survivors, f"helper processes outlived the killed download: {survivors}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


DOWNLOAD_CHILD = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from pmd.download import DownloadConfig, download_urls
    from pmd.spark.session import spark_session

    if __name__ == "__main__":
        base, out = sys.argv[1], sys.argv[2]
        spark = spark_session("local[1]")
        req = pa.table({"image_key": [f"k{i:02d}" for i in range(8)],
                        "url": [f"{base}/fault/slow/img{i}.jpg" for i in range(8)]})
        download_urls(spark, req, out, DownloadConfig(allow_loopback=True, samples_per_shard=4, thread_count=2,
                                                      timeout=60, download_deadline=120, retries=0))
""")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.long
@pytest.mark.spark
def test_nothing_outlives_a_sigkilled_download_build(tmp_path):
    """A real download (Spark JVM, its Python workers, img2dataset's logger, the resource tracker) is
    SIGKILLed mid-fetch: within a bounded wait, every process it started is gone."""
    from pmd.sample.server import FaultConfig, ImageServer

    script = tmp_path / "child.py"
    script.write_text(DOWNLOAD_CHILD)
    (tmp_path / "www").mkdir()
    with ImageServer(tmp_path / "www", faults=FaultConfig(slow_seconds=60.0)) as server:
        env = {**os.environ, "PMD_NETGUARD": "1"}
        proc = subprocess.Popen([sys.executable, str(script), server.base_url, str(tmp_path / "dl")], env=env)
        try:
            deadline = time.monotonic() + 300
            helpers: set[int] = set()
            while time.monotonic() < deadline and proc.poll() is None:
                helpers = _descendants(proc.pid)
                if server.hits and any("spawn_main" in _cmdline(p) for p in helpers):
                    break  # fetching, with img2dataset's logger running
                time.sleep(0.5)
            assert proc.poll() is None and server.hits, "the download never started fetching"
            helpers = _descendants(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            deadline = time.monotonic() + 60
            while any(_alive(p) for p in helpers) and time.monotonic() < deadline:
                time.sleep(0.5)
            survivors = {p: _cmdline(p)[:120] for p in helpers if _alive(p)}
            assert not survivors, f"processes outlived the killed download: {survivors}"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
