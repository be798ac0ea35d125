"""FLAVA trainer throughput: samples/s, peak GPU memory, fraction of step time waiting for data.

    # on one H100 (the target is >= 900 samples/s with data wait < 5 %):
    .venv/bin/python bench/trainer_gpu.py --config base --batch 128 --steps 30 --compile
    .venv/bin/python bench/trainer_gpu.py --config base --batch 128 --steps 30 --compile --data BUILD_DIR --workers 14
    # CPU smoke run (CI-sized):
    .venv/bin/python bench/trainer_gpu.py --device cpu --config tiny --steps 3

Synthetic mode keeps one paired batch (uint8 images, captions of the configured length, BEiT masks,
MLM masks) resident on the device, so it measures the model step alone. ``--data`` streams a build
through ``ShardStream`` + DataLoader workers with pinned memory and a one-batch device prefetch.
Steps are timed without host syncs inside the step (one sync at the end of each phase).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pmd.training.codebook import build_codebook  # noqa: E402
from pmd.training.config import load_train_config  # noqa: E402
from pmd.training.data import Collator, open_build, train_tokenizer  # noqa: E402
from pmd.training.run import build_captions, make_loader  # noqa: E402
from pmd.training.trainer import Trainer, to_device  # noqa: E402

WORDS = "a the red blue green small large circle square dog man woman street car tree on in of with near left right".split()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def synthetic_batch(collator: Collator, cfg, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    s = cfg.model.image_size
    images = rng.integers(0, 256, (batch, 3, s, s), dtype=np.uint8)
    n_words = max(4, cfg.model.max_text_len - 4)  # captions fill the context, as with padding to max_len
    captions = [" ".join(rng.choice(WORDS, n_words)) for _ in range(batch)]
    ids, attn = collator.tokenize(captions)
    return collator("paired", rng, images=images, ids=ids, attn=attn)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="base")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=None, help="per-step batch (default: the config's)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5 on CUDA, 1 on CPU)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile (default: config)")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default=None)
    ap.add_argument("--data", help="a PMD build directory to stream (default: synthetic device-resident batch)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", help="append the JSON result to this file")
    a = ap.parse_args(argv)

    over: dict = {"device": a.device}
    if a.batch:
        over["data.batch_size"] = a.batch
    if a.compile is not None:
        over["compile"] = a.compile
    if a.precision:
        over["precision"] = a.precision
    if a.workers is not None:
        over["data.workers"] = a.workers
    if a.threads is not None:
        over["threads"] = a.threads
    cfg = load_train_config(a.config, over)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(a.device)
    warmup = a.warmup if a.warmup is not None else (5 if device.type == "cuda" else 1)
    bs = cfg.data.batch_size

    if a.data:
        build = open_build(a.data, verify=False)
        tok = train_tokenizer(build_captions(build.root, build.shards), cfg.model.vocab_size, cfg.model.max_text_len)
    else:
        tok = train_tokenizer([" ".join(WORDS)] * 4, cfg.model.vocab_size, cfg.model.max_text_len)
    collator = Collator(cfg.model, cfg.masking, tok)
    trainer = Trainer(cfg, build_codebook(cfg.codebook, cfg.model), device)

    if a.data:
        loader = make_loader(build.shards, collator, cfg, 0, pin=device.type == "cuda")

        def batches():
            nxt = to_device(next(loader), device)
            while True:
                cur, nxt = nxt, None
                t = time.perf_counter()
                host = next(loader)
                wait = time.perf_counter() - t
                nxt = to_device(host, device)  # overlaps with the step below (non_blocking from pinned memory)
                yield cur, wait
    else:
        fixed = to_device(synthetic_batch(collator, cfg, bs), device)

        def batches():
            while True:
                yield fixed, 0.0

    it = batches()
    t0 = time.perf_counter()
    for _ in range(warmup):
        b, _ = next(it)
        trainer.train_step("paired", b)
    sync(device)
    warm_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    waited = 0.0
    last = None
    t0 = time.perf_counter()
    for _ in range(a.steps):
        b, w = next(it)
        waited += w
        last = trainer.train_step("paired", b)
    sync(device)
    dt = time.perf_counter() - t0
    result = {
        "config": cfg.name, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "data": a.data or "synthetic", "batch": bs, "steps": a.steps, "compile": cfg.compile, "precision": cfg.precision,
        "samples_per_s": round(a.steps * bs / dt, 2), "step_ms": round(1000 * dt / a.steps, 2),
        "data_wait_fraction": round(waited / dt, 4), "warmup_s": round(warm_s, 2),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if device.type == "cuda" else None,
        "last_loss": round(float(last["loss"]), 4), "torch": torch.__version__,
    }
    line = json.dumps(result)
    sys.stdout.write(line + "\n")
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")
    return result


if __name__ == "__main__":
    main()
