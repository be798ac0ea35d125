"""Benchmark: ingest + filter stages of the Spark PMD build on a >= 1M-row YFCC100M metadata file.

Generates the file with ``bench/yfcc_rows.py`` (cached), then runs the build's ``ingest`` and ``filter``
stages (the real stage code: units → mapInArrow parse → Parquet partitioned by source → batched
language ID + filters → Parquet, counters reconciled) on ``local[CORES]`` and reports rows/s and
rows/s/core per run and the median. Input rows = ingest's ``input`` counter (every parse outcome).
In the same run it parses the same file in this one process (the library path, no Spark) and
reports its rows per CPU second: the last line holds ``spark_rows_per_s_per_core``,
``single_process_rows_per_cpu_s`` and their ratio (issue 12: >= 0.75). The filter stage re-uses
the parse's language labels (no row is identified twice; ``tests/test_build_units.py``).

    .venv/bin/python bench/ingest_spark.py --rows 1000000 --cores 2 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.yfcc_rows import write_rows  # noqa: E402


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and all its live descendants (from /proc): the
    Spark JVM plus its Python daemon and workers, which ``worker.reuse`` keeps alive between stages."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(f[1]), []).append(int(d.name))
        cpu[int(d.name)] = (int(f[11]) + int(f[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        q = todo.pop()
        total += cpu.get(q, 0.0)
        todo += children.get(q, [])
    return total


def single_process_rate(tsv: Path) -> tuple[float, int]:
    """(parse outcomes per CPU second, outcomes) of the YFCC parser over the whole file in this process."""
    from pmd.sources.base import InputUnit
    from pmd.sources.registry import get_source
    from pmd.text.langid import get_identifier

    get_identifier()  # model load is not parsing (Spark's workers load it once too)
    src = get_source("yfcc100m")
    c0 = time.process_time()
    n = sum(1 for _ in src.parse(InputUnit("yfcc100m", (str(tsv),)), {}))
    return n / (time.process_time() - c0), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--single-runs", type=int, default=1, help="single-process parses of the file (median)")
    ap.add_argument("--unit-mb", type=int, default=32, help="ingest.target_bytes in MiB (one task per unit)")
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "pmd_bench_yfcc"))
    args = ap.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from pmd.pairs.config import load_build_config
    from pmd.spark.pairs.filtering import run_filter
    from pmd.spark.pairs.ingest import run_ingest
    from pmd.spark.pairs.run import pairs_runner, spark_for
    from pmd.spark.stages import spark_path
    from pmd.log import setup_logging

    setup_logging(-1)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    tsv = data / f"yfcc100m_dataset_{args.rows}"
    if not tsv.exists():
        write_rows(tsv, args.rows, seed=0)
    cfg = load_build_config({
        "spark": {"master": f"local[{args.cores}]", "shuffle_partitions": args.cores},
        "ingest": {"target_bytes": args.unit_mb << 20, "batch_size": 8192},
        "sources": {"yfcc100m": {"paths": [str(tsv)], "min_words": 3}},
    })
    spark = spark_for(cfg)
    results = []
    for run in range(args.runs):
        out = Path(tempfile.mkdtemp(prefix="pmd_bench_ingest_"))
        r = pairs_runner(spark, cfg, str(out))
        sp = spark_path
        jvm = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        c0 = tree_cpu_seconds(jvm)
        t0 = time.perf_counter()
        r.stage("ingest", lambda sd: run_ingest(spark, cfg, sp(sd.data)), None)
        t1 = time.perf_counter()
        r.stage("filter", lambda sd: run_filter(spark, cfg, r.kept("ingest"), sp(sd.data)), "ingest")
        t2 = time.perf_counter()
        cpu = tree_cpu_seconds(jvm) - c0
        ing, fil = r.book.total("ingest"), r.book.total("filter")
        rows = ing.input
        res = {"run": run, "rows": rows, "kept_after_filter": fil.kept, "ingest_s": round(t1 - t0, 2),
               "filter_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2),
               "rows_per_s": round(rows / (t2 - t0)), "rows_per_s_per_core": round(rows / (t2 - t0) / args.cores),
               "cpu_s": round(cpu, 2), "rows_per_cpu_s": round(rows / cpu)}
        results.append(res)
        print(json.dumps(res), flush=True)
        shutil.rmtree(out, ignore_errors=True)
    spark.stop()
    single = [single_process_rate(tsv) for _ in range(args.single_runs)]
    med = statistics.median(r["rows_per_s_per_core"] for r in results)
    sp_rate = statistics.median(r for r, _ in single)
    spark_cpu = statistics.median(r["rows_per_cpu_s"] for r in results)
    # per core of wall time (the metric; meaningful on an idle machine) and per CPU second
    # of the whole Spark process tree (JVM + Python workers: fair on a shared machine)
    print(json.dumps({"spark_rows_per_s_per_core": med, "single_process_rows_per_cpu_s": round(sp_rate),
                      "ratio": round(med / sp_rate, 3), "spark_rows_per_cpu_s": spark_cpu,
                      "cpu_ratio": round(spark_cpu / sp_rate, 3), "median_total_s": statistics.median(r["total_s"] for r in results),
                      "single_process_rows": single[0][1], "cores": args.cores, "rows": args.rows,
                      "python": platform.python_version(), "loadavg": os.getloadavg()}))


if __name__ == "__main__":
    main()
