"""Benchmark: ingest + filter stages of the Spark PMD build on a YFCC100M metadata file, against the parse alone.

Method (issue 12: Spark path >= 0.75 of the single-process parse rate per core, same run):

- Input: ``bench/yfcc_rows.py`` writes ``--rows`` lines of the 25-column TSV (cached under ``--data``).
- Spark: one ``local[CORES]`` session for the whole run. ``--warmup`` untimed runs go first (JVM JIT,
  Python worker start, fastText load per worker), then ``--runs`` timed runs, each into a fresh build
  directory. The timed region of a run is exactly what the build does for these two stages.
  ``--paths fused`` (the build's path, ``Runner.stage_pair``): plan units on the driver; one Spark job,
  one task per unit, which parses it and writes its ingest part and, from the same batches in memory,
  its filter part (pyarrow), handing back only both parts' outcome counts; the parts checked against
  those counts; counters + marker of each stage. ``--paths separate`` (what a rerun with ingest done
  runs for the filter): the ingest job, then a filter job whose tasks read the ingest parts' kept rows
  back, filter and write them. ``fused,separate`` alternates the two in every run. No row passes
  through the JVM. Session start-up is outside the timed region.
- CPU of a run: the Spark JVM, its Python daemon and workers (``TreeCpu``: sampled from /proc, so
  workers that exit inside the region still count) and the driver's own Python, all included.
  ``spark_rows_per_cpu_s`` = input rows / those CPU seconds; ``spark_rows_per_s_per_core`` = input
  rows / wall seconds / cores (meaningful on an idle machine only).
- Single process: after each timed run's Spark runs (Spark idle), ``Source.parse`` of the same file in
  this process (the library path; fastText loaded first, as Spark's workers load it once):
  ``single_process_rows_per_cpu_s`` = parse outcomes / ``process_time``, the median over the runs; each
  run line carries its own, and ``per_run_ratio_median`` / ``per_run_cpu_ratio_median`` are the
  medians of each run's ratio to the parse measured right after it (steadier where the machine's
  speed drifts over minutes, as a shared VM's does).
- Single process, same stages: the two stages' own work (parse → ingest parts, kept rows → filter
  parts, the functions the Spark tasks call) run in this process without Spark:
  ``single_process_stages_rows_per_cpu_s``; ``spark_overhead_cpu_ratio`` = the Spark run's rows per
  CPU-s / that (1.0: Spark adds nothing). The gap between the parse alone and these stages is the
  work of making, writing and filtering the rows, which any engine pays.
- The last line holds both for the first of ``--paths``, ``ratio`` (wall per core) and ``cpu_ratio``
  (per CPU second: the fair one on a shared machine), and the other path's under ``other_paths``;
  the run lines hold the CPU split (jvm / workers / driver) and the Spark job count (``spark_jobs``:
  each is a fixed cost on the wall). Fixed costs (planning, a job, the tail of the last tasks) weigh
  less the more rows a run has: quote the ``--rows`` with the ratio.

The filter stage re-uses the parse's language labels: no row is identified twice
(``tests/test_build_units.py::test_no_row_runs_language_id_twice``).

    .venv/bin/python bench/ingest_spark.py --rows 2000000 --cores 2 --runs 3 --warmup 1 --unit-mb 16 \
        --paths fused,separate --single-runs 3
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


def _proc_table() -> tuple[dict[int, list[int]], dict[int, float]]:
    """(children of each pid, user + system CPU seconds of each pid including its reaped children)."""
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
        cpu[int(d.name)] = sum(int(x) for x in f[11:15]) / tick
    return children, cpu


class TreeCpu:
    """CPU seconds of the Spark JVM and of its descendants (the Python daemon and workers), sampled.

    PySpark's daemon ignores SIGCHLD, so a worker that exits (an idle one after a minute, one per
    task without reuse) is reaped by the kernel and its time is added to no parent: a snapshot
    before and after would lose it. A thread therefore samples the tree every ``interval`` seconds
    and keeps each process's last value; ``read()`` is (JVM, workers) seconds since the start,
    short by at most one interval of a worker that exited."""

    def __init__(self, jvm_pid: int, interval: float = 0.2) -> None:
        import threading

        self.jvm, self.interval = jvm_pid, interval
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.own = 0.0
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._sample(first=True)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample(self, first: bool = False) -> None:
        t0 = time.thread_time()
        children, cpu = _proc_table()
        tree, todo = [], [self.jvm]
        while todo:
            q = todo.pop()
            tree.append(q)
            todo += children.get(q, [])
        with self._lock:
            for q in tree:
                if first:
                    self.start[q] = cpu.get(q, 0.0)
                self.last[q] = cpu.get(q, self.last.get(q, 0.0))
            self.own += time.thread_time() - t0  # the driver's CPU spent measuring, not building

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def read(self) -> tuple[float, float]:
        self._sample()
        with self._lock:
            d = {q: v - self.start.get(q, 0.0) for q, v in self.last.items()}
        return d.get(self.jvm, 0.0), sum(v for q, v in d.items() if q != self.jvm)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


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


def single_process_stages_rate(cfg, rows: int, fused: bool = True) -> float:  # noqa: ANN001 - a BuildConfig
    """Input rows per CPU second of the same two stages' work in this process, without Spark, exactly
    what the Spark tasks run: fused (the build's path), every unit parsed and written as its ingest
    and filter parts in one pass (``planned_ingest_filter_pairs`` → ``write_part_pair``); separate,
    every unit written as its ingest part, then every part's kept rows read back, filtered and
    written (``filter_part_fn`` → ``write_part``). Spark's own cost is the gap between this rate and
    the Spark run's."""
    from pmd.pairs.filtering import filter_part_fn, source_filters
    from pmd.pairs.ingest import plan_units, planned_ingest_filter_pairs, planned_unit_batches, resolve_options
    from pmd.pairs.outcomes import PAIR_OUTCOME_SCHEMA, PAIR_PARQUET_OPTIONS
    from pmd.spark.batches import write_part, write_part_pair
    from pmd.spark.pairs.ingest import ingest_part_name

    tmp = Path(tempfile.mkdtemp(prefix="pmd_bench_single_"))
    try:
        options = {n: resolve_options(s.options, cfg.base_dir) for n, s in cfg.enabled_sources().items()}
        chains = {n: source_filters(s) for n, s in cfg.enabled_sources().items()}
        parse = planned_unit_batches(options, cfg.ingest.batch_size)
        pairs = planned_ingest_filter_pairs(options, cfg.ingest.batch_size, chains)
        filt = filter_part_fn(chains, cfg.ingest.batch_size)
        opts = {"options": PAIR_PARQUET_OPTIONS}
        c0 = time.process_time()
        names = []
        for u in plan_units(cfg):
            names.append(ingest_part_name(u["unit_index"]))
            planned = (u["source"], u["unit"])
            if fused:
                write_part_pair((str(tmp / "ingest"), str(tmp / "filter")), names[-1], pairs(planned),
                                PAIR_OUTCOME_SCHEMA, **opts)
            else:
                write_part(str(tmp / "ingest"), names[-1], parse(planned), PAIR_OUTCOME_SCHEMA, **opts)
        if not fused:
            for name in names:
                write_part(str(tmp / "filter"), name, filt(str(tmp / "ingest" / name)), PAIR_OUTCOME_SCHEMA, **opts)
        return rows / (time.process_time() - c0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first (JVM JIT, worker start, model load)")
    ap.add_argument("--single-runs", type=int, default=1,
                    help="single-process runs of the stages without Spark (median); the parse alone runs after every "
                         "timed Spark run (and at the end up to this many)")
    ap.add_argument("--unit-mb", type=int, default=32, help="ingest.target_bytes in MiB (one task per unit)")
    ap.add_argument("--paths", default="fused",
                    help="fused (the build's: one job writes both stages), separate (ingest, then filter reading "
                         "its parts back), or fused,separate: both, alternating in each run")
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "pmd_bench_yfcc"))
    args = ap.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not paths or any(p not in ("fused", "separate") for p in paths):
        ap.error("--paths: fused, separate or fused,separate")

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from pmd.pairs.config import load_build_config
    from pmd.spark.pairs.filtering import run_filter
    from pmd.spark.pairs.ingest import run_ingest, run_ingest_filter
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
    jvm = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    results: dict[str, list[dict]] = {p: [] for p in paths}
    single: list[tuple[float, int]] = []
    sp = spark_path
    sc = spark.sparkContext
    for run in range(-args.warmup, args.runs):
        for path in (paths if run % 2 == 0 else paths[::-1]):  # alternate the order run by run
            out = Path(tempfile.mkdtemp(prefix="pmd_bench_ingest_"))
            r = pairs_runner(spark, cfg, str(out))
            meter = TreeCpu(jvm)
            marks = [(time.perf_counter(), (*meter.read(), time.process_time() - meter.own))]
            group = f"bench-{path}-{run}"
            sc.setJobGroup(group, path)  # to count the Spark jobs
            if path == "fused":  # what pmd.spark.pairs.run.build runs
                r.stage_pair("ingest", "filter", lambda si, sf: run_ingest_filter(spark, cfg, sp(si.data), sp(sf.data)),
                             lambda sf: run_filter(spark, cfg, sp(r.sd("ingest").data), sp(sf.data)))
                marks.append(marks[-1])
            else:
                r.stage("ingest", lambda sd: run_ingest(spark, cfg, sp(sd.data)), None)
                marks.append((time.perf_counter(), (*meter.read(), time.process_time() - meter.own)))
                r.stage("filter", lambda sd: run_filter(spark, cfg, sp(r.sd("ingest").data), sp(sd.data)), "ingest")
            marks.append((time.perf_counter(), (*meter.read(), time.process_time() - meter.own)))
            jobs = len(sc.statusTracker().getJobIdsForGroup(group))
            meter.close()
            (t0, c0), (t1, c1), (t2, c2) = marks
            cpu = sum(c2) - sum(c0)
            ing, fil = r.book.total("ingest"), r.book.total("filter")
            rows = ing.input
            res = {"path": path, "run": run if run >= 0 else f"warmup{run}", "rows": rows,
                   "kept_after_filter": fil.kept, "total_s": round(t2 - t0, 2), "rows_per_s": round(rows / (t2 - t0)),
                   "rows_per_s_per_core": round(rows / (t2 - t0) / args.cores),
                   "cpu_s": round(cpu, 2), "rows_per_cpu_s": round(rows / cpu), "spark_jobs": jobs,
                   "cpu_s_split": {k: round(c2[i] - c0[i], 2) for i, k in enumerate(("jvm", "workers", "driver"))}}
            if path == "separate":
                res.update({"ingest_s": round(t1 - t0, 2), "filter_s": round(t2 - t1, 2)})
            if run >= 0:
                results[path].append(res)
            print(json.dumps(res), flush=True)
            shutil.rmtree(out, ignore_errors=True)
        if run >= 0:
            # the baseline right after this run's Spark runs (Spark idle): a machine whose speed drifts
            # (a shared VM) then moves both sides of each run's ratio together
            single.append(single_process_rate(tsv))
            for path in paths:
                results[path][-1]["single_process_rows_per_cpu_s"] = round(single[-1][0])
            print(json.dumps({"run": run, "single_process_rows_per_cpu_s": round(single[-1][0])}), flush=True)
    spark.stop()
    single += [single_process_rate(tsv) for _ in range(max(0, args.single_runs - len(single)))]
    sp_rate = statistics.median(r for r, _ in single)
    summary: dict = {}
    for path in paths:
        st_rate = statistics.median(single_process_stages_rate(cfg, args.rows, path == "fused")
                                    for _ in range(args.single_runs))
        med = statistics.median(r["rows_per_s_per_core"] for r in results[path])
        spark_cpu = statistics.median(r["rows_per_cpu_s"] for r in results[path])
        # per core of wall time (the metric; meaningful on an idle machine) and per CPU second
        # of the whole Spark process tree (JVM + Python workers: fair on a shared machine); also the
        # median of each run's own ratio against the baseline measured right after it
        summary[path] = {"spark_rows_per_s_per_core": med, "ratio": round(med / sp_rate, 3),
                         "spark_rows_per_cpu_s": spark_cpu, "cpu_ratio": round(spark_cpu / sp_rate, 3),
                         "per_run_ratio_median": round(statistics.median(
                             r["rows_per_s_per_core"] / r["single_process_rows_per_cpu_s"] for r in results[path]), 3),
                         "per_run_cpu_ratio_median": round(statistics.median(
                             r["rows_per_cpu_s"] / r["single_process_rows_per_cpu_s"] for r in results[path]), 3),
                         "median_total_s": statistics.median(r["total_s"] for r in results[path]),
                         # the same stages' Python work in one process, no Spark: what Spark itself adds
                         "single_process_stages_rows_per_cpu_s": round(st_rate),
                         "spark_overhead_cpu_ratio": round(spark_cpu / st_rate, 3)}
    head = summary[paths[0]]
    print(json.dumps({"path": paths[0], **head, "single_process_rows_per_cpu_s": round(sp_rate),
                      **({"other_paths": {p: summary[p] for p in paths[1:]}} if len(paths) > 1 else {}),
                      "single_process_rows": single[0][1], "cores": args.cores, "rows": args.rows,
                      "warmup_runs": args.warmup, "runs": args.runs, "unit_mb": args.unit_mb,
                      "python": platform.python_version(), "loadavg": os.getloadavg()}))


if __name__ == "__main__":
    main()
