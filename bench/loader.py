"""Streaming-loader throughput: decode + transform samples/s vs raw PIL decode + resize, same run.

Usage: python bench/loader.py BUILD_DIR [--runs 3] [--min-samples 1000] [--image-size 224] [--workers N]
       python bench/loader.py --synthetic DIR   (writes 512 pairs of ~256 px JPEGs there first)

Prints one JSON line.

* ``loader_samples_per_s``: ``pmd.loaders.pair_pipeline`` in this process, defaults (shuffle buffer 1000):
  tar read, member grouping, JSON, JPEG decode with ``draft``, one bicubic resize of the centre-crop box
  to 224 x 224, normalised float tensor, WordPiece to 77 tokens. ``loader_uint8_samples_per_s``: the same
  with ``normalize=False`` (uint8 images, normalised later on the device).
* ``raw_decode_samples_per_s``: the same JPEG bytes, already in memory, through the plain PIL recipe —
  ``Image.open``, ``draft("RGB", (224, 224))``, ``convert("RGB")``, bicubic resize of the short side to
  224, centre ``crop`` — and nothing else (no tar, text or tensor). ``raw_same_ops_samples_per_s``: the
  loader's exact PIL work (resize of the crop box only, no separate crop) — the strictest baseline.
* ``*_cpu_*``: the same counts per CPU-second of this process (``time.process_time``), which a shared,
  loaded machine distorts less than wall time.
* ``loader_all_cores_samples_per_s``: a DataLoader with one worker per core (at most one per shard),
  batches of 32, wall time.

Loader and raw runs alternate; figures are medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pmd.loaders import collate, expand_shards, pair_pipeline, train_wordpiece  # noqa: E402
from pmd.loaders.pairs import IMAGE_EXTS  # noqa: E402
from pmd.loaders.shards import iter_tar  # noqa: E402

BICUBIC = Image.Resampling.BICUBIC


def raw_samples(urls: list[str]) -> tuple[list[bytes], list[str]]:
    images, texts = [], []
    for url in urls:
        for raw in iter_tar(url):
            data = next((raw.members[e] for e in IMAGE_EXTS if e in raw.members), None)
            if data is not None:
                images.append(data)
                texts.append(raw.members.get("txt", b"").decode("utf-8", "replace"))
    return images, texts


def _open(data: bytes, size: int) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (size, size))
    return im.convert("RGB")


def raw_plain(data: bytes, size: int) -> Image.Image:
    im = _open(data, size)
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), BICUBIC)
    left, top = (im.width - size) // 2, (im.height - size) // 2
    return im.crop((left, top, left + size, top + size))


def raw_same_ops(data: bytes, size: int) -> Image.Image:
    im = _open(data, size)
    w, h = im.size
    s = size / min(w, h)
    rw, rh = max(size, round(w * s)), max(size, round(h * s))
    left, top = (rw - size) // 2, (rh - size) // 2
    return im.resize((size, size), BICUBIC, box=(left / s, top / s, (left + size) / s, (top + size) / s))


def timed(run_once: Callable[[], int], min_samples: int) -> tuple[float, float]:
    """(samples per wall second, samples per CPU second of this process)."""
    n, wall, cpu = 0, time.perf_counter(), time.process_time()
    while n < min_samples:
        n += run_once()
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def count(items: Iterable) -> int:
    return sum(1 for _ in items)


def time_dataloader(ds, workers: int, min_samples: int) -> float:
    import torch

    loader = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=workers, collate_fn=collate,
                                         persistent_workers=True)
    for _ in loader:  # start the workers
        break
    n, start = 0, time.perf_counter()
    while n < min_samples:
        for batch in loader:
            n += len(batch["key"])
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("build_dir", nargs="?")
    p.add_argument("--synthetic", help="write synthetic ~256 px pair shards to this directory and use them")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--min-samples", type=int, default=1000)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    if args.synthetic:
        from pmd.loaders.synthetic import write_pair_build

        build = write_pair_build(args.synthetic, shards=8, per_shard=64, image_px=256)
    elif args.build_dir:
        build = Path(args.build_dir)
    else:
        p.error("give BUILD_DIR or --synthetic DIR")
    urls = expand_shards(build)
    images, texts = raw_samples(urls)
    if not images:
        print(json.dumps({"error": f"no images in {build}"}))
        return 1
    size = args.image_size
    tokenizer = train_wordpiece(texts, vocab_size=8192)
    ds = pair_pipeline(build, tokenizer=tokenizer, image_size=size, max_text_len=77)
    ds_u8 = pair_pipeline(build, tokenizer=tokenizer, image_size=size, max_text_len=77, normalize=False)
    dims = [Image.open(io.BytesIO(b)).size for b in images]
    runs: dict[str, list[tuple[float, float]]] = {"loader": [], "loader_uint8": [], "raw": [], "raw_same": []}
    count(raw_plain(b, size) for b in images[:50])  # warm-up
    count(ds)
    for _ in range(args.runs):
        runs["raw"].append(timed(lambda: count(raw_plain(b, size) for b in images), args.min_samples))
        runs["loader"].append(timed(lambda: count(ds), args.min_samples))
        runs["raw_same"].append(timed(lambda: count(raw_same_ops(b, size) for b in images), args.min_samples))
        runs["loader_uint8"].append(timed(lambda: count(ds_u8), args.min_samples))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
    workers = max(1, min(args.workers, len(urls)))
    all_cores = time_dataloader(pair_pipeline(build, tokenizer=tokenizer, image_size=size), workers,
                                args.min_samples * workers)
    result = {
        "build": str(build),
        "shards": len(urls),
        "samples": len(images),
        "median_short_side_px": statistics.median(min(w, h) for w, h in dims),
        "mean_jpeg_bytes": round(sum(map(len, images)) / len(images)),
        "image_size": size,
        "runs": args.runs,
        "loader_samples_per_s": round(med["loader"][0], 1),
        "raw_decode_samples_per_s": round(med["raw"][0], 1),
        "ratio": round(med["loader"][0] / med["raw"][0], 3),
        "loader_uint8_samples_per_s": round(med["loader_uint8"][0], 1),
        "raw_same_ops_samples_per_s": round(med["raw_same"][0], 1),
        "loader_cpu_samples_per_s": round(med["loader"][1], 1),
        "loader_uint8_cpu_samples_per_s": round(med["loader_uint8"][1], 1),
        "raw_decode_cpu_samples_per_s": round(med["raw"][1], 1),
        "raw_same_ops_cpu_samples_per_s": round(med["raw_same"][1], 1),
        "ratio_cpu": round(med["loader"][1] / med["raw"][1], 3),
        "ratio_uint8_cpu": round(med["loader_uint8"][1] / med["raw"][1], 3),
        "ratio_same_ops_cpu": round(med["loader"][1] / med["raw_same"][1], 3),
        "loader_all_cores_samples_per_s": round(all_cores, 1),
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
