"""FLAVA training throughput, pmd's trainer vs Hugging Face transformers' ``FlavaForPreTraining``, side by side.

Both models are random-init with the same widths, depths, heads, vocabulary, image and text sizes (HF from
``FlavaConfig()`` with those fields set from the pmd config), the same batch (captions fill the 77-token context),
the same losses (GC, ITM with 10 % negatives, MMM-image, MMM-text; no MIM/MLM on paired steps), AdamW with the same
fused/unfused choice (``fused_adamw`` in each line; fused on CUDA and, from torch 2.4, on CPU), grad-clip 1.0 and
the same precision. Per paired step:

* HF: two ``FlavaModel`` calls, every layer at every position: unmasked image + text (fusion skipped), masked image
  + text + fusion; heads at the masked positions of the ITM-positive rows; GC over the positive rows. Its MIM labels
  are given precomputed (HF's dVAE codebook is not built: ``init_codebook=False``, its cost is not counted).
* pmd: visual codes from its random-projection quantiser (pooling + two small matmuls, counted: ~0.1 GFLOP/pair);
  one image-tower pass over the unmasked and masked images stacked (one patch convolution), one text-tower pass over
  the unmasked and masked captions stacked; the last layer of each unmasked half only at its CLS row, the fusion
  encoder's last layer only at ``[CLS_M]`` and the masked positions (the rows the losses read); heads at the masked
  positions of every row (the negatives' labels are ignored); GC over every row. On CPU in fp32 off Intel CPUs its
  linears (forward and both backward products) run on oneDNN's fp32 matmul instead of ``aten::mm``'s MKL sgemm (same
  IEEE fp32 precision; MKL runs far below oneDNN on AMD CPUs, and above it on Intel ones, where pmd keeps MKL; the
  ``linear`` field of its line says which, ``PMD_ONEDNN_LINEAR=0/1`` forces one); HF's model is measured as shipped.

The losses equal the every-row computation (``tests/test_train_model.py::test_step_equals_the_straightforward_
computation``). Prints one JSON line per implementation (``"impl": "pmd"`` / ``"impl": "hf"``): samples/s (median
over ``--repeat`` windows, alternating implementations on the synthetic batch), step ms, CPU s per step, parameters,
FLOPs per pair (fwd+bwd, counted by ``torch.utils.flop_counter``, with the CPU flash-attention kernel counted like
the CUDA ones), data-wait fraction, peak memory; then one ratio line per setting. Requires the ``bench`` extra.

    # CPU (base config, small batch, fp32; 1 thread on a shared machine) — the CPU target is pmd >= 1.3x HF:
    .venv/bin/python bench/trainer_compare.py --device cpu --config base --batch 2 --steps 1 --repeat 3 --precision fp32 --threads 1
    # GPU (bf16, batch 128): eager and torch.compile for both, synthetic and from shards (see bench/RESULTS.md):
    .venv/bin/python bench/trainer_compare.py --config base --batch 128 --steps 10 --warmup 3 --compile both --data BUILD --workers 14
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
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
from pmd.training.trainer import Trainer, fused_adamw, to_device  # noqa: E402

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
        # pmd's Trainer's rule (fused AdamW on CUDA, and on CPU from torch 2.4); each JSON line reports
        # ``fused_adamw`` so a drift shows.
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                                     fused=fused_adamw(device))
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

    def optimizer(self) -> torch.optim.Optimizer:
        return self.opt


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

    @staticmethod
    def linear_backend(device: torch.device, precision: str) -> str:
        """Which matmul pmd's fp32 CPU linears take (``pmd.training.attention.ONEDNN_LINEAR``)."""
        from pmd.training import attention

        cpu32 = device.type == "cpu" and precision == "fp32"
        return "onednn" if cpu32 and attention.ONEDNN_LINEAR and attention._LINEAR_POINTWISE is not None else "aten"

    def optimizer(self) -> torch.optim.Optimizer:
        return self.trainer.optimizer


def _cpu_sdpa_flops(q, k, v, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(q, k, v)


def _cpu_sdpa_backward_flops(grad_out, q, k, v, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_out, q, k, v)


def _onednn_linear_flops(x, w, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001
    return 2 * math.prod(x[:-1]) * w[0] * w[1]


def flops_per_pair(step, batch: dict[str, torch.Tensor], bs: int) -> float:
    """fwd+bwd FLOPs of one step / batch size (counted, not estimated). torch's counter has no formula for the CPU
    flash-attention kernel that SDPA takes on CPU (it would count pmd's attention as zero there): it gets the same
    formula as the CUDA kernels; nor for oneDNN's matmul (``mkldnn._linear_pointwise``, pmd's fp32 CPU linears,
    forward and backward): 2·M·K·N like ``aten::mm``."""
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    counter = FlopCounterMode(display=False, custom_mapping={
        aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flops,
        torch.ops.mkldnn._linear_pointwise: _onednn_linear_flops})
    with counter:
        step.loss(batch).backward()
    return counter.get_total_flops() / bs


class Timed:
    """One implementation on one data source: built, FLOPs counted, warmed up; then timed in windows of ``steps``
    (wall and process CPU time; on a shared CPU the CPU time is the steadier of the two)."""

    def __init__(self, impl: str, cfg: TrainConfig, device: torch.device, batches: Callable, warmup: int,
                 data: str) -> None:
        self.impl, self.cfg, self.device, self.data = impl, cfg, device, data
        self.step = PmdStep(cfg, device) if impl == "pmd" else HFStep(cfg, device, cfg.compile, cfg.precision == "bf16")
        self.it = batches()
        first, _ = next(self.it)
        bs = cfg.data.batch_size
        self.flops = flops_per_pair(self.step, first, bs) if not cfg.compile else float("nan")  # counter vs dynamo
        t0 = time.perf_counter()
        for _ in range(warmup):
            b, _ = next(self.it)
            self.step(b)
        sync(device)
        self.warm_s = time.perf_counter() - t0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        self.windows: list[tuple[float, float, float]] = []  # (wall s, CPU s, data wait s)
        self.last: torch.Tensor | None = None

    def window(self, steps: int) -> None:
        waited = 0.0
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(steps):
            b, w = next(self.it)
            waited += w
            self.last = self.step(b)
        sync(self.device)
        self.windows.append((time.perf_counter() - t0, time.process_time() - c0, waited))

    def result(self, steps: int) -> dict[str, Any]:
        bs, cfg, device = self.cfg.data.batch_size, self.cfg, self.device
        walls, cpus = [w for w, _, _ in self.windows], [c for _, c, _ in self.windows]
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        peak = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if device.type == "cuda" else None
        return {"impl": self.impl, "config": cfg.name,
                "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                "data": self.data, "batch": bs, "steps": steps, "repeats": len(self.windows), "compile": cfg.compile,
                "precision": cfg.precision, "threads": torch.get_num_threads(),
                "samples_per_s": round(steps * bs / wall, 3), "step_ms": round(1000 * wall / steps, 1),
                "samples_per_s_each": [round(steps * bs / w, 3) for w in walls],
                "cpu_s_per_step": round(cpu / steps, 3),
                "params": self.step.params(), "fused_adamw": bool(self.step.optimizer().defaults.get("fused")),
                "gflops_per_pair": round(self.flops / 1e9, 2) if math.isfinite(self.flops) else None,
                "data_wait_fraction": round(sum(x for _, _, x in self.windows) / sum(walls), 4),
                "warmup_s": round(self.warm_s, 1), "peak_mem_gib": peak,
                "last_loss": round(float(self.last), 4), "torch": torch.__version__,
                "linear": PmdStep.linear_backend(device, cfg.precision) if self.impl == "pmd" else "aten"}

    def close(self) -> None:
        del self.step, self.it  # free the model and the loader before the next implementation runs
        import gc

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="base")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=None, help="per-step batch (default: the config's)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per window")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed windows per implementation, alternating between implementations on the synthetic "
                         "batch (both models stay built); results are medians")
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
    impls = [s.strip() for s in a.impl.split(",") if s.strip()]

    def emit(run: Timed) -> None:
        res = run.result(a.steps)
        run.close()
        if device.type == "cpu":
            res["load_avg"] = [round(x, 2) for x in os.getloadavg()]
        line = json.dumps(res)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if a.out:
            with open(a.out, "a") as f:
                f.write(line + "\n")
        results.append(res)

    compiles = {"no": [False], "yes": [True], "both": [False, True]}[a.compile]
    sources = (["synthetic"] if a.synthetic else []) + ([a.data] if a.data else [])
    for data in sources:
        for comp in compiles:
            runs: list[Timed] = []
            for impl in impls:
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
                run = Timed(impl, cfg, device, batches, warmup, data)
                if data == "synthetic":  # timed below, alternating with the other implementations
                    runs.append(run)
                    continue
                for _ in range(a.repeat):  # from shards: one at a time (two loaders would share the workers' CPUs)
                    run.window(a.steps)
                emit(run)
            for _ in range(a.repeat):
                for run in runs:
                    run.window(a.steps)
            for run in runs:
                emit(run)
    by = {(r["data"], r["compile"], r["impl"]): r for r in results}
    for (data, comp, impl), r in by.items():
        hf = by.get((data, comp, "hf"))
        if impl == "pmd" and hf:
            line = {"ratio": "pmd/hf", "data": data, "compile": comp,
                    "speedup": round(r["samples_per_s"] / hf["samples_per_s"], 3)}
            if device.type == "cpu":  # on a GPU the host's CPU time says little
                line["cpu_speedup"] = round(hf["cpu_s_per_step"] / r["cpu_s_per_step"], 3)
            if r["fused_adamw"] != hf["fused_adamw"]:
                line["optimizers_differ"] = True
            sys.stdout.write(json.dumps(line) + "\n")
    return results


if __name__ == "__main__":
    main()
