"""Benchmark: each build at N and 10N; the driver's peak memory must not grow with N (issue 12).

PMD: synthetic Conceptual-Captions-format rows (``caption<TAB>url``, with exact duplicate pairs
and captions that fail the filters) whose URLs point at a loopback server (its own process) that
answers every path with a tiny JPEG, one of ``--variants`` contents chosen by the path's hash, so
``dedup_images`` has real sha256 groups. Every size runs the whole build (ingest → shard, stats,
manifest) in a fresh subprocess, which reports its peak RSS (``VmHWM`` of the driver Python), the
driver JVM's peak heap (sum of the heap pools' peak usage) and each stage's seconds (from the
stage markers). One JSON line per build:

    {"build": "pmd", "n_small", "n_large", "driver_rss_mb_small", "driver_rss_mb_large",
     "driver_jvm_heap_mb_small", "driver_jvm_heap_mb_large", "stage_seconds_small", "stage_seconds_large"}

The interleaved build's half is ``bench/scale_interleaved.py`` (same fields), run with
``--build interleaved|all`` when it exists.

    .venv/bin/python bench/scale.py --build pmd --n-small 20000 --factor 10 --cores 2
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from driver_memory import jvm_heap_peak_mb, vm_hwm_mb  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORDS = ("a dog runs on the beach with a red ball near the water while people walk by in the "
         "evening light city street at night with cars and bright shop windows old wooden house in "
         "a green field under a cloudy sky children play football in the park on a sunny day").split()


# -- the loopback image server (a separate process: its memory is not the driver's) -------------

def _jpegs(variants: int) -> list[bytes]:
    from PIL import Image

    out = []
    for i in range(variants):
        buf = io.BytesIO()
        Image.new("RGB", (24 + i % 7, 24 + i % 5), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)).save(
            buf, "JPEG", quality=80)
        out.append(buf.getvalue())
    return out


def _serve(port: int, variants: int) -> None:
    images = _jpegs(variants)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            h = int.from_bytes(hashlib.blake2b(self.path.encode(), digest_size=8).digest(), "big")
            body = images[h % len(images)]
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


# -- inputs -----------------------------------------------------------------------------------

def write_rows(path: Path, n: int, port: int, seed: int = 0) -> None:
    """``n`` CC3M rows: ~2% exact duplicate pairs, ~1% one-word captions (dropped by the filter)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        prev = None
        for i in range(n):
            if prev is not None and rng.random() < 0.02:
                f.write(prev)
                continue
            words = 1 if rng.random() < 0.01 else rng.randrange(5, 14)
            caption = " ".join(rng.choice(WORDS) for _ in range(words))
            prev = f"{caption}\thttp://127.0.0.1:{port}/img/{i:08d}.jpg\n"
            f.write(prev)


def pmd_config(tsv: Path, cores: int) -> dict[str, Any]:
    return {
        "spark": {"master": f"local[{cores}]", "shuffle_partitions": max(2, cores * 2)},
        "ingest": {"target_bytes": 4 << 20, "batch_size": 4096},
        "dedup": {"exact": True},
        "download": {"image_size": 64, "resize_mode": "keep_ratio", "encode_quality": 85, "timeout": 10,
                     "retries": 0, "thread_count": 32, "samples_per_shard": 5000, "allow_loopback": True},
        "dedup_images": {"method": "sha256"},
        "shard": {"samples_per_shard": 5000},
        "progress_interval": 30.0,
        "sources": {"conceptual_captions": {"paths": [str(tsv)], "languages": ["en"], "min_words": 3}},
    }


# -- one build, in a fresh process ------------------------------------------------------------

def child_pmd(n: int, work: Path, cores: int, variants: int) -> dict[str, Any]:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from pmd.log import setup_logging
    from pmd.pairs.config import STAGES, load_build_config
    from pmd.sample.server import free_port
    from pmd.spark.pairs.run import build, spark_for
    from pmd.spark.stages import StageDir

    setup_logging(-1)
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, variants), daemon=True)
    server.start()
    try:
        work.mkdir(parents=True, exist_ok=True)
        tsv = work / "Train_GCC-training.tsv"
        write_rows(tsv, n, port)
        cfg = load_build_config(pmd_config(tsv, cores))
        spark = spark_for(cfg)
        out = work / "build"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.monotonic()
        build(cfg, out, spark=spark)
        wall = time.monotonic() - t0
        stages = {s: StageDir(str(out), s).info()["seconds"] for s in STAGES}
        manifest = json.loads((out / "manifest.json").read_text())
        res = {"n": n, "samples": manifest["total_samples"], "wall_s": round(wall, 1), "stage_seconds": stages,
               "driver_jvm_heap_mb": round(jvm_heap_peak_mb(spark), 1)}
        spark.stop()
        res["driver_rss_mb"] = round(vm_hwm_mb(), 1)
        return res
    finally:
        server.terminate()


def run_size(build_name: str, n: int, work: Path, cores: int, variants: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", build_name, "--n", str(n), "--work", str(work),
           "--cores", str(cores), "--variants", str(variants)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"scale: the {build_name} build at n={n} failed (rc {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", choices=("pmd", "interleaved", "all"), default="pmd")
    ap.add_argument("--n-small", type=int, default=20_000, help="PMD pairs at N (10N is --factor times it)")
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--docs-small", type=int, default=5_000, help="interleaved documents at N")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--variants", type=int, default=5000, help="distinct image contents the server returns")
    ap.add_argument("--work", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="pmd-bench-scale-"))
    if a.child == "pmd":
        print(json.dumps(child_pmd(a.n, work, a.cores, a.variants)), flush=True)
        return
    if a.build in ("pmd", "all"):
        small = run_size("pmd", a.n_small, work / "pmd_small", a.cores, a.variants)
        large = run_size("pmd", a.n_small * a.factor, work / "pmd_large", a.cores, a.variants)
        per = {k: {"small": round(small["stage_seconds"][k] / small["n"] * 1e6, 1),
                   "large": round(large["stage_seconds"][k] / large["n"] * 1e6, 1)} for k in small["stage_seconds"]}
        print(json.dumps({
            "build": "pmd", "n_small": small["n"], "n_large": large["n"],
            "driver_rss_mb_small": small["driver_rss_mb"], "driver_rss_mb_large": large["driver_rss_mb"],
            "driver_jvm_heap_mb_small": small["driver_jvm_heap_mb"], "driver_jvm_heap_mb_large": large["driver_jvm_heap_mb"],
            "stage_seconds_small": small["stage_seconds"], "stage_seconds_large": large["stage_seconds"],
            "rss_ratio": round(large["driver_rss_mb"] / small["driver_rss_mb"], 3),
            "stage_us_per_record": per, "samples_small": small["samples"], "samples_large": large["samples"],
            "wall_s_small": small["wall_s"], "wall_s_large": large["wall_s"], "cores": a.cores,
            "loadavg": os.getloadavg()}), flush=True)
    if a.build in ("interleaved", "all"):
        other = REPO / "bench" / "scale_interleaved.py"
        if not other.exists():
            raise SystemExit("scale: bench/scale_interleaved.py is not there yet (the interleaved half)")
        subprocess.run([sys.executable, str(other), "--n-small", str(a.docs_small), "--factor", str(a.factor),
                        "--cores", str(a.cores)], check=True)
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
