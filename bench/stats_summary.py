"""Benchmark: `pmd stats` on a large synthetic pairs build (samples.parquet with N rows).

Times load_build, the summary tables, the dataset card and the per-sample plots (not the sample
grid, which reads only a few tar members); reports CPU seconds of this process (what one core
spends, whatever the machine's load) and wall seconds. Usage:
    taskset -c 1 .venv/bin/python bench/stats_summary.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pmd.counters import CounterBook, StageCounters

SOURCES = ["coco", "sbu_captions", "localized_narratives__coco", "conceptual_captions", "visual_genome",
           "google/wit", "conceptual_12m", "red_caps", "yfcc100m"]
STAGES = ["ingest", "filter", "dedup", "download", "dedup_images", "shard"]


def make_build(root: Path, rows: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "stats").mkdir(parents=True)
    src = rng.choice(SOURCES, size=rows)
    words = rng.integers(1, 60, size=rows)
    ow, oh = rng.integers(64, 4000, size=rows), rng.integers(64, 4000, size=rows)
    keys = np.char.add("k", rng.integers(0, rows, size=rows).astype(str))
    table = pa.table({
        "id": np.char.add("p", np.arange(rows).astype(str)), "source": src, "text": np.full(rows, "a caption"),
        "caption_words": words, "lang": np.full(rows, "en"), "lang_score": rng.random(rows).astype("float32"),
        "width": np.full(rows, 256), "height": np.full(rows, 256), "original_width": ow, "original_height": oh,
        "image_key": keys, "sha256": keys, "shard": np.full(rows, "shards/pairs-000000.tar")})
    pq.write_table(table, root / "stats" / "samples.parquet")
    book = CounterBook()
    per_src = {s: int((src == s).sum()) for s in SOURCES}
    for s, kept in per_src.items():
        for i, stage in enumerate(reversed(STAGES)):
            c = StageCounters(stage, s)
            c.add_kept(kept)
            if i % 2:
                c.add_dropped("too_short", kept // 10 + 1)
                c.add_failed("http_404", kept // 20 + 1)
            c.add_input(c.n_out)
            book.add(c)
            kept = c.input
    (root / "stats" / "counters.json").write_text(book.to_json())
    (root / "manifest.json").write_text(json.dumps({"kind": "pmd-pairs", "format_version": 1, "shards": [],
                                                    "total_samples": rows, "config": {}, "versions": {},
                                                    "counters": book.to_list(), "created": "bench"}))
    return root


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median (CPU seconds of this process, wall seconds) over ``repeat`` runs."""
    cpu, wall = [], []
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    from pmd.stats import card, load, plots, summary

    with tempfile.TemporaryDirectory() as tmp:
        root = make_build(Path(tmp) / "b", args.rows)
        build = load.load_build(root)
        res = {
            "load_build": timed(lambda: load.load_build(root), args.repeat),
            "format_summary": timed(lambda: summary.format_summary(build), args.repeat),
            "dataset_card": timed(lambda: card.write_dataset_card(root), args.repeat),
        }
        for name in ("paper_comparison", "filter_funnel", "caption_lengths", "lang_scores", "image_sizes"):
            res[f"plot_{name}"] = timed(lambda n=name: plots.PAIR_PLOTS[n](build, save=Path(tmp) / f"{n}.png"),
                                        args.repeat)
    print(f"rows={args.rows:,} repeat={args.repeat} (median seconds: cpu / wall)")  # noqa: T201 - bench script
    for k, (c, w) in res.items():
        print(f"  {k:28s} {c:7.3f} / {w:7.3f}")  # noqa: T201
    print(f"  {'total':28s} {sum(c for c, _ in res.values()):7.3f} / {sum(w for _, w in res.values()):7.3f}")  # noqa: T201


if __name__ == "__main__":
    main()
