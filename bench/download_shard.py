"""Benchmark: the pmd download+shard path vs img2dataset alone, same URLs, same settings.

pmd path   = ``download_urls`` on a request DataFrame: request set + URL guard on the executors +
             img2dataset on the SparkSession (our worker hook turns each finished shard into an images
             Parquet part) + status table joined in Spark + reproducible WebDataset tar shards
             (``write_tar_shard``, one Spark task per part).
baseline   = ``img2dataset.download(output_format="webdataset")`` on the same SparkSession.

Images are small generated JPEGs (400x300) served on loopback by ``pmd.sample.server.ImageServer``
in a separate process; URLs differ by a query string so every URL is fetched. A small warm-up run
starts Spark's Python workers (and their imports) first, so neither timed run pays for that.
Prints one JSON line.

    PYSPARK_PYTHON=.venv/bin/python NO_ALBUMENTATIONS_UPDATE=1 .venv/bin/python bench/download_shard.py --urls 20000
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def _serve(root: str, port: int) -> None:
    from pmd.sample.server import ImageServer

    ImageServer(root, port=port).serve_forever()


def _make_images(root: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
        img = Image.fromarray(arr).resize((400, 300), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        (root / f"{i:05d}.jpg").write_bytes(buf.getvalue())


def _settings(cfg) -> dict:
    return dict(image_size=cfg.image_size, resize_mode=cfg.resize_mode, resize_only_if_bigger=cfg.resize_only_if_bigger,
                encode_format=cfg.encode_format, encode_quality=cfg.encode_quality, timeout=cfg.timeout,
                retries=cfg.retries, thread_count=cfg.thread_count, processes_count=cfg.processes_count,
                number_sample_per_shard=cfg.samples_per_shard, extract_exif=False, compute_hash=None,
                distributor="pyspark", disallowed_header_directives=list(cfg.disallowed_header_directives),
                user_agent_token=cfg.robots_token)


def run_img2dataset(urls_parquet: Path, out: Path, cfg) -> float:
    import contextlib

    import img2dataset

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        img2dataset.download(url_list=str(urls_parquet), output_folder=str(out), input_format="parquet",
                             output_format="webdataset", url_col="url", save_additional_columns=["image_key"],
                             **_settings(cfg))
    return time.perf_counter() - t0


def write_part_shard(args: tuple[str, str]) -> dict:
    """One images part → one reproducible tar shard (``{key}.jpg`` + ``{key}.json``); runs in a Spark task."""
    import pyarrow.parquet as pq

    from pmd.shard.tar_writer import write_tar_shard

    part, tar_path = args
    table = pq.read_table(part)
    meta_cols = ["width", "height", "original_width", "original_height", "sha256"]
    metas = table.select(meta_cols).to_pylist()
    keys, jpgs = table.column("image_key").to_pylist(), table.column("jpg")

    def samples():
        for i, key in enumerate(keys):
            yield key, {"jpg": jpgs[i].as_py(), "json": json.dumps(metas[i], sort_keys=True).encode()}

    return write_tar_shard(tar_path, samples()).to_dict()


def run_pmd(spark, requests, out: Path, cfg) -> tuple[float, dict]:
    """download_urls, then one tar shard per images part, written in parallel on the same Spark session."""
    from pmd.download import download_urls

    t0 = time.perf_counter()
    res = download_urls(spark, requests, out / "download", cfg)
    parts = sorted(str(p) for p in Path(res.images_path).glob("part-*.parquet"))
    jobs = [(p, str(out / "shards" / f"images-{i:06d}.tar")) for i, p in enumerate(parts)]
    infos = spark.sparkContext.parallelize(jobs, max(len(jobs), 1)).map(write_part_shard).collect()
    wall = time.perf_counter() - t0
    return wall, {"success": res.n_success, "failed": res.n_failed, "shards": len(infos),
                  "shard_samples": sum(i["samples"] for i in infos),
                  "pmd_phases_s": {**res.timings, "shard_s": round(wall - sum(res.timings.values()), 3)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--urls", type=int, default=20000)
    ap.add_argument("--files", type=int, default=1000, help="distinct image files behind the URLs")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--samples-per-shard", type=int, default=2500, help="img2dataset shard = one Spark task")
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pmd.download import DownloadConfig
    from pmd.ids import stable_id
    from pmd.sample.server import free_port
    from pmd.spark.session import spark_session

    work = Path(args.workdir or tempfile.mkdtemp(prefix="pmd-bench-dl-"))
    www = work / "www"
    www.mkdir(parents=True, exist_ok=True)
    _make_images(www, args.files)
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(str(www), port), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        cfg = DownloadConfig(allow_loopback=True, samples_per_shard=args.samples_per_shard,
                             thread_count=args.threads, retries=1, timeout=10)
        urls = [f"{base}/{i % args.files:05d}.jpg?n={i}" for i in range(args.urls)]
        keys = [stable_id("bench", u) for u in urls]
        requests = pa.table({"image_key": keys, "url": urls})
        urls_parquet = work / "urls.parquet"
        pq.write_table(requests, urls_parquet)

        spark = spark_session(args.master)
        t0 = time.perf_counter()
        warm = pa.table({"image_key": keys[:200], "url": urls[:200]})
        run_img2dataset_path = work / "warm.parquet"
        pq.write_table(warm, run_img2dataset_path)
        run_img2dataset(run_img2dataset_path, work / "warm_out", cfg)
        warm_s = time.perf_counter() - t0

        pmd_times, i2d_times, info = [], [], {}
        for r in range(args.repeat):
            for name in (("img2dataset", "pmd") if r % 2 == 0 else ("pmd", "img2dataset")):
                out = work / f"{name}-{r}"
                shutil.rmtree(out, ignore_errors=True)
                if name == "pmd":  # the requests as a DataFrame over the same Parquet file
                    wall, info = run_pmd(spark, spark.read.parquet(str(urls_parquet)), out, cfg)
                    pmd_times.append(wall)
                else:
                    i2d_times.append(run_img2dataset(urls_parquet, out, cfg))
                shutil.rmtree(out, ignore_errors=True)
        pmd_s, i2d_s = statistics.median(pmd_times), statistics.median(i2d_times)
        print(json.dumps({
            "bench": "download_shard", "urls": args.urls, "distinct_files": args.files, "master": args.master,
            "samples_per_shard": args.samples_per_shard, "threads": args.threads, "repeat": args.repeat,
            "warmup_s": round(warm_s, 1), "pmd_s": round(pmd_s, 1), "img2dataset_s": round(i2d_s, 1),
            "ratio": round(pmd_s / i2d_s, 3), "pmd_runs": [round(t, 1) for t in pmd_times],
            "img2dataset_runs": [round(t, 1) for t in i2d_times], "pmd_images_per_s": round(args.urls / pmd_s, 1),
            **info, "loadavg_end": [round(x, 1) for x in os.getloadavg()], "cpus": os.cpu_count(),
        }))
    finally:
        server.terminate()
        server.join(5)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
