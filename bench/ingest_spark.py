"""Benchmark: ingest + filter stages of the Spark PMD build on a >= 1M-row YFCC100M metadata file.

Generates the file with ``bench/yfcc_rows.py`` (cached), then runs the build's ``ingest`` and ``filter``
stages (the real stage code: units → mapInArrow parse → Parquet partitioned by source → batched
language ID + filters → Parquet, counters reconciled) on ``local[CORES]`` and reports rows/s and
rows/s/core per run and the median. Input rows = ingest's ``input`` counter (every parse outcome).

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--unit-mb", type=int, default=32, help="ingest.target_bytes in MiB (one task per unit)")
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "pmd_bench_yfcc"))
    args = ap.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from pmd.pairs import stage_io
    from pmd.pairs.config import load_build_config
    from pmd.pairs.filtering import run_filter
    from pmd.pairs.ingest import run_ingest
    from pmd.pairs.run import Runner, spark_for
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
        r = Runner(spark, cfg, str(out))
        sp = stage_io.spark_path
        t0 = time.perf_counter()
        r.stage("ingest", lambda sd: run_ingest(spark, cfg, sp(sd.data)), None)
        t1 = time.perf_counter()
        r.stage("filter", lambda sd: run_filter(spark, cfg, r.kept("ingest"), sp(sd.data)), "ingest")
        t2 = time.perf_counter()
        ing, fil = r.book.total("ingest"), r.book.total("filter")
        rows = ing.input
        res = {"run": run, "rows": rows, "kept_after_filter": fil.kept, "ingest_s": round(t1 - t0, 2),
               "filter_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2),
               "rows_per_s": round(rows / (t2 - t0)), "rows_per_s_per_core": round(rows / (t2 - t0) / args.cores)}
        results.append(res)
        print(json.dumps(res), flush=True)
        shutil.rmtree(out, ignore_errors=True)
    med = statistics.median(r["rows_per_s_per_core"] for r in results)
    print(json.dumps({"median_rows_per_s_per_core": med, "median_total_s": statistics.median(r["total_s"] for r in results),
                      "cores": args.cores, "rows": args.rows, "python": platform.python_version(),
                      "loadavg": os.getloadavg()}))
    spark.stop()


if __name__ == "__main__":
    main()
