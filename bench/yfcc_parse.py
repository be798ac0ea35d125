"""Benchmark: YFCC100M metadata → PMD pairs (parse + decode + language + FLAVA rule), one process.

Side by side with the first public PMD script's approach: row at a time, ``unquote_plus``, regex tag
strip, ``langdetect.detect`` per text (seeded). langdetect is slow, so it runs on the first
``--baseline-rows`` rows only; rates are rows/s of each run. Also reports how often the two agree
on keep/drop for those rows.

    .venv/bin/python bench/yfcc_parse.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote_plus

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.yfcc_rows import write_rows  # noqa: E402
from pmd.records import PairRecord  # noqa: E402
from pmd.sources.base import InputUnit  # noqa: E402
from pmd.sources.yfcc100m import Yfcc100m  # noqa: E402
from pmd.text.langid import get_identifier  # noqa: E402

_TAG = re.compile(r"<[^<]+?>")


def baseline_rows(lines: list[str]) -> list[str | None]:
    """The row-at-a-time langdetect approach: caption text or None per row."""
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0

    def clean(t: str) -> str:
        return " ".join(_TAG.sub("", unquote_plus(t)).split())

    def ok(t: str) -> bool:
        if t == "" or len(t.split()) <= 2:
            return False
        try:
            return detect(t) == "en"
        except LangDetectException:
            return False

    out: list[str | None] = []
    for line in lines:
        cols = line.split("\t")
        if len(cols) != 25 or cols[24] != "0":
            out.append(None)
            continue
        d, t = clean(cols[9]), clean(cols[8])
        out.append(d if ok(d) else t if ok(t) else None)
    return out


def run_fast(path: Path) -> tuple[float, float, Counter]:
    src = Yfcc100m()
    unit = InputUnit(src.name, (str(path),))
    c0, t0 = time.process_time(), time.perf_counter()
    counts: Counter = Counter()
    for o in src.parse(unit):
        counts[type(o).__name__ + ":" + str(getattr(o, "reason", None) or getattr(o, "error", ""))] += 1
    return time.perf_counter() - t0, time.process_time() - c0, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--baseline-rows", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data-dir", default=os.environ.get("PMD_BENCH_DIR", "/tmp/pmd-bench"))
    a = ap.parse_args()

    t = time.perf_counter()
    path = write_rows(Path(a.data_dir) / f"yfcc_{a.rows}.tsv", a.rows, seed=0)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    get_identifier()
    load_s = time.perf_counter() - t

    walls, cpus, counts = [], [], Counter()
    for _ in range(a.repeat):
        wall, cpu, counts = run_fast(path)
        walls.append(wall)
        cpus.append(cpu)
    fast_wall, fast_cpu = statistics.median(walls), statistics.median(cpus)

    with open(path, encoding="utf-8") as f:
        head = [next(f).rstrip("\n") for _ in range(a.baseline_rows)]
    c0, t0 = time.process_time(), time.perf_counter()
    base = baseline_rows(head)
    base_wall, base_cpu = time.perf_counter() - t0, time.process_time() - c0

    # agreement on the baseline rows (keep/drop decision)
    small = path.with_name(f"yfcc_head{a.baseline_rows}.tsv")
    small.write_text("\n".join(head) + "\n", encoding="utf-8")
    fast_small = [o for o in Yfcc100m().parse(InputUnit("yfcc100m", (str(small),)))]
    agree = sum((isinstance(o, PairRecord)) == (b is not None) for o, b in zip(fast_small, base))

    res = {
        "rows": a.rows, "repeat": a.repeat, "generate_s": round(gen_s, 1), "model_load_s": round(load_s, 2),
        "fasttext_rows_per_s_wall": round(a.rows / fast_wall), "fasttext_rows_per_s_cpu": round(a.rows / fast_cpu),
        "fasttext_wall_s_runs": [round(w, 2) for w in walls],
        "langdetect_rows": a.baseline_rows, "langdetect_rows_per_s_wall": round(a.baseline_rows / base_wall),
        "langdetect_rows_per_s_cpu": round(a.baseline_rows / base_cpu),
        "speedup_wall": round((a.rows / fast_wall) / (a.baseline_rows / base_wall), 1),
        "speedup_cpu": round((a.rows / fast_cpu) / (a.baseline_rows / base_cpu), 1),
        "agreement_keep_drop": round(agree / a.baseline_rows, 4),
        "outcomes": dict(sorted(counts.items())),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, loadavg {os.getloadavg()[0]:.1f} at end",
    }
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
