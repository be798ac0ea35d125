"""FLAVA training throughput, pmd's trainer vs Hugging Face transformers' ``FlavaForPreTraining``, side by side.

Both models are random-init with the same widths, depths, heads, vocabulary, image and text sizes (HF from
``FlavaConfig()`` with those fields set from the pmd config), the same batch, the same paired step (unmasked
image + text passes for the contrastive loss, masked passes + fusion for ITM, MMM-image and MMM-text, 10 %
ITM negatives, AdamW, grad-clip 1.0) and the same precision. MIM labels are given to HF precomputed (pmd's
codebook is a cheap random projection; HF's dVAE codebook is not built: ``init_codebook=False``).
Prints one JSON line per implementation (``"impl": "pmd"`` / ``"impl": "hf"``): samples/s, step ms,
parameters, FLOPs per pair (fwd+bwd, counted by ``torch.utils.flop_counter``), data-wait fraction,
peak memory. Requires the ``bench`` extra (transformers).

    # CPU (base config, small batch, fp32) — the CPU target is pmd >= 1.3x HF:
    .venv/bin/python bench/trainer_compare.py --device cpu --config base --batch 4 --steps 3 --precision fp32
    # GPU (bf16, batch 128): eager and torch.compile for both, synthetic and from shards (see bench/RESULTS.md):
    .venv/bin/python bench/trainer_compare.py --config base --batch 128 --steps 20 --compile both --data BUILD --workers 14
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pmd.training.codebook import build_codebook  # noqa: E402
from pmd.training.config import TrainConfig, load_train_config  # noqa: E402
from pmd.training.data import Collator, open_build, train_tokenizer  # noqa: E402
from pmd.training.model import IMAGE_MEAN, IMAGE_STD  # noqa: E402
from pmd.training.run import Position, build_captions, make_loader  # noqa: E402
from pmd.training.trainer import Trainer, to_device  # noqa: E402

WORDS = "a the red blue green small large circle square dog man woman street car tree on in of with near left right".split()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def synthetic_batch(collator: Collator, cfg: TrainConfig, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    s = cfg.model.image_size
    images = rng.integers(0, 256, (batch, 3, s, s), dtype=np.uint8)
    n_words = max(4, cfg.model.max_text_len - 4)  # captions fill the context, as with padding to max_len
    ids, attn = collator.tokenize([" ".join(rng.choice(WORDS, n_words)) for _ in range(batch)])
    return collator("paired", rng, images=images, ids=ids, attn=attn)


def hf_config(cfg: TrainConfig):
    from transformers import FlavaConfig

    m = cfg.model

    def enc(e) -> dict[str, Any]:
        return {"hidden_size": e.width, "num_hidden_layers": e.layers, "num_attention_heads": e.heads,
                "intermediate_size": int(e.width * e.mlp_ratio), "layer_norm_eps": m.layer_norm_eps,
                "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}

    base = FlavaConfig()
    return FlavaConfig(
        image_config={**base.image_config.to_dict(), **enc(m.image), "image_size": m.image_size, "patch_size": m.patch_size,
                      "vocab_size": cfg.codebook.codes},
        text_config={**base.text_config.to_dict(), **enc(m.text), "vocab_size": m.vocab_size,
                     "max_position_embeddings": max(m.max_text_len, 8)},
        multimodal_config={**base.multimodal_config.to_dict(), **enc(m.multimodal)},
        image_codebook_config={**base.image_codebook_config.to_dict(), "vocab_size": cfg.codebook.codes},
        projection_dim=m.embed_dim, hidden_size=m.multimodal.width, init_codebook=False, return_loss=True,
        skip_unmasked_multimodal_encoder=True)


class HFStep:
    """One HF training step on a pmd batch (converted on the device: normalise, -100 labels, ITM labels)."""

    def __init__(self, cfg: TrainConfig, device: torch.device, compile_: bool, bf16: bool) -> None:
        from transformers import FlavaForPreTraining

        torch.manual_seed(cfg.seed)
        self.model = FlavaForPreTraining(hf_config(cfg)).to(device).train()
        self.module = torch.compile(self.model) if compile_ else self.model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                                     fused=device.type == "cuda")
        self.device, self.bf16, self.cfg = device, bf16, cfg
        self.mean = torch.tensor(IMAGE_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGE_STD, device=device).view(1, 3, 1, 1)
        self.gen = torch.Generator(device=device).manual_seed(0)

    def inputs(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        bs, L = b["ids"].shape
        pix = (b["images"].float() / 255.0 - self.mean) / self.std
        mlm = torch.full((bs, L), -100, dtype=torch.long, device=self.device)
        lab = b["mlm_labels"]
        mlm.scatter_(1, b["mlm_pos"], torch.where(lab >= 0, lab, -100))
        mlm[:, 0] = -100  # position 0 ([CLS]) only ever holds padded slots' scatter
        codes = self.cfg.codebook.codes
        mim = torch.randint(0, codes, b["patch_mask"].shape, device=self.device, generator=self.gen)
        itm = (torch.rand(bs, device=self.device, generator=self.gen) >= self.cfg.loss.itm_negative_fraction).long()
        return {"input_ids": b["ids"], "input_ids_masked": b["masked_ids"], "pixel_values": pix,
                "attention_mask": b["attn"].long(), "bool_masked_pos": b["patch_mask"], "mlm_labels": mlm,
                "mim_labels": mim, "itm_labels": itm}

    def loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.module(**self.inputs(b)).loss

    def __call__(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(b)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        return loss.detach()

    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


class PmdStep:
    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        self.trainer = Trainer(cfg, build_codebook(cfg.codebook, cfg.model), device)

    def loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.autocast(device_type=self.trainer.device.type, dtype=torch.bfloat16, enabled=self.trainer.bf16):
            return self.trainer.module(b, "paired")["loss"]

    def __call__(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.trainer.train_step("paired", b)["loss"]

    def params(self) -> int:
        return sum(p.numel() for p in self.trainer.model.parameters())  # all, frozen idle heads included


def flops_per_pair(step, batch: dict[str, torch.Tensor], bs: int) -> float:
    """fwd+bwd FLOPs of one step / batch size (counted, not estimated)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step.loss(batch).backward()
    return counter.get_total_flops() / bs


def run_one(impl: str, cfg: TrainConfig, device: torch.device, batches: Callable, steps: int, warmup: int,
            data: str) -> dict[str, Any]:
    bs = cfg.data.batch_size
    step = PmdStep(cfg, device) if impl == "pmd" else HFStep(cfg, device, cfg.compile, cfg.precision == "bf16")
    it = batches()
    first, _ = next(it)
    flops = flops_per_pair(step, first, bs) if not cfg.compile else float("nan")  # the counter and dynamo don't mix
    t0 = time.perf_counter()
    for _ in range(warmup):
        b, _ = next(it)
        step(b)
    sync(device)
    warm_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    waited, last = 0.0, None
    t0 = time.perf_counter()
    for _ in range(steps):
        b, w = next(it)
        waited += w
        last = step(b)
    sync(device)
    dt = time.perf_counter() - t0
    peak = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if device.type == "cuda" else None
    params = step.params()
    del step, it  # free the model and the loader before the next implementation runs
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"impl": impl, "config": cfg.name, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "data": data, "batch": bs, "steps": steps, "compile": cfg.compile, "precision": cfg.precision,
            "samples_per_s": round(steps * bs / dt, 3), "step_ms": round(1000 * dt / steps, 1),
            "params": params, "gflops_per_pair": round(flops / 1e9, 2) if math.isfinite(flops) else None,
            "data_wait_fraction": round(waited / dt, 4), "warmup_s": round(warm_s, 1),
            "peak_mem_gib": peak, "last_loss": round(float(last), 4), "torch": torch.__version__}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="base")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=None, help="per-step batch (default: the config's)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5 on CUDA, 1 on CPU)")
    ap.add_argument("--compile", choices=["no", "yes", "both"], default="no", help="torch.compile: no, yes, or both runs")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default=None)
    ap.add_argument("--impl", default="pmd,hf", help="comma list of pmd, hf (default both)")
    ap.add_argument("--data", help="a PMD build to stream (adds runs from shards; default synthetic only)")
    ap.add_argument("--synthetic", action=argparse.BooleanOptionalAction, default=True,
                    help="also run on a device-resident synthetic batch (default yes)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", help="append the JSON lines to this file")
    a = ap.parse_args(argv)

    over: dict[str, Any] = {"device": a.device}
    if a.batch:
        over["data.batch_size"] = a.batch
    if a.precision:
        over["precision"] = a.precision
    if a.workers is not None:
        over["data.workers"] = a.workers
    if a.threads is not None:
        over["threads"] = a.threads
    base = load_train_config(a.config, {**over, "compile": False})
    if base.threads:
        torch.set_num_threads(base.threads)
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    warmup = a.warmup if a.warmup is not None else (5 if device.type == "cuda" else 1)
    build = open_build(a.data) if a.data else None
    captions = build_captions(build.shards) if build else [" ".join(WORDS)] * 4
    tok = train_tokenizer(captions, base.model.vocab_size)
    collator = Collator(base.model, base.masking, tok)
    results = []
    compiles = {"no": [False], "yes": [True], "both": [False, True]}[a.compile]
    sources = (["synthetic"] if a.synthetic else []) + ([a.data] if a.data else [])
    for data in sources:
        for comp in compiles:
            for impl in [s.strip() for s in a.impl.split(",") if s.strip()]:
                cfg = load_train_config(a.config, {**over, "compile": comp})
                if data == "synthetic":
                    fixed = to_device(synthetic_batch(collator, cfg, cfg.data.batch_size), device)

                    def batches(fixed=fixed):
                        while True:
                            yield fixed, 0.0
                else:
                    def batches(cfg=cfg):
                        loader = make_loader(str(build.root), collator, cfg, pin=device.type == "cuda", position=Position())
                        nxt = to_device(next(loader), device)
                        while True:
                            cur = nxt
                            t = time.perf_counter()
                            host = next(loader)
                            wait = time.perf_counter() - t
                            nxt = to_device(host, device)  # overlaps the step (non_blocking from pinned memory)
                            yield cur, wait
                res = run_one(impl, cfg, device, batches, a.steps, warmup, data)
                line = json.dumps(res)
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
                if a.out:
                    with open(a.out, "a") as f:
                        f.write(line + "\n")
                results.append(res)
    by = {(r["data"], r["compile"], r["impl"]): r["samples_per_s"] for r in results}
    for (data, comp, impl), sps in by.items():
        if impl == "pmd" and (data, comp, "hf") in by:
            sys.stdout.write(json.dumps({"ratio": "pmd/hf", "data": data, "compile": comp,
                                         "speedup": round(sps / by[(data, comp, "hf")], 3)}) + "\n")
    return results


if __name__ == "__main__":
    main()
