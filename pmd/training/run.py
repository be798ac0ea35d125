"""`pmd train --data BUILD --out DIR`: train on every shard of a build, with checkpoints and resume.

Batches stream from the shards through DataLoader workers (``ShardStream``, pinned memory); image-only
and text-only batches (when their weights are > 0) take the image or the caption half of a streamed
batch. The tokenizer is trained once on the build's captions (Parquet sidecars) and saved beside the
checkpoints, so a resumed run tokenizes identically.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from pmd.errors import UserError
from pmd.training.codebook import build_codebook
from pmd.training.config import TrainConfig
from pmd.training.data import (Collator, ShardStream, batch_kinds, decode_image, iter_shard, load_tokenizer_file,
                               open_build, train_tokenizer)
from pmd.training.distributed import init_from_env, rank, world_size
from pmd.training.trainer import Trainer, pick_device

log = logging.getLogger(__name__)

IMAGE_KEYS = ("images", "patch_mask", "patch_idx", "patch_valid")
TEXT_KEYS = ("ids", "attn", "masked_ids", "mlm_pos", "mlm_labels")


def build_captions(build_root: Path, shards: list[Path]) -> Iterator[str]:
    for shard in shards:
        side = shard.with_suffix(".parquet")
        if side.is_file():
            yield from pq.read_table(side, columns=["text"]).column("text").to_pylist()
        else:
            yield from (t for _, _, t in iter_shard(shard))


def get_tokenizer(cfg: TrainConfig, out: Path, captions: Iterator[str]):
    saved = out / "tokenizer.json"
    if cfg.data.tokenizer:
        return load_tokenizer_file(cfg.data.tokenizer, cfg.model.max_text_len)
    if saved.is_file():
        return load_tokenizer_file(saved, cfg.model.max_text_len)
    tok = train_tokenizer(captions, cfg.model.vocab_size, cfg.model.max_text_len)
    if rank() == 0:
        out.mkdir(parents=True, exist_ok=True)
        tok.save(str(saved))
    return tok


def mixed_batches(loader: Iterator[dict[str, torch.Tensor]], cfg: TrainConfig) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    d = cfg.data
    for kind in batch_kinds({"paired": d.paired_weight, "image": d.image_weight, "text": d.text_weight}, d.mix, cfg.seed):
        batch = next(loader)
        keys = IMAGE_KEYS if kind == "image" else TEXT_KEYS if kind == "text" else tuple(batch)
        yield kind, {k: batch[k] for k in keys}


def make_loader(shards: list[Path], collator: Collator, cfg: TrainConfig, skip_batches: int, pin: bool) -> Iterator:
    d = cfg.data
    ds = ShardStream(shards, collator, cfg.model.image_size, d.batch_size, cfg.seed, tuple(d.train_crop_scale),
                     rank(), world_size(), skip_batches, d.workers)
    kw: dict[str, Any] = {"batch_size": None, "num_workers": d.workers, "pin_memory": pin}
    if d.workers > 0:
        kw.update(prefetch_factor=d.prefetch, persistent_workers=True)
    return iter(torch.utils.data.DataLoader(ds, **kw))


def train_on_build(build_dir: str | Path, cfg: TrainConfig, out: str | Path, resume: bool = False) -> list[dict[str, float]]:
    out = Path(out)
    device = pick_device(cfg.device)
    init_from_env(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    build = open_build(build_dir)
    tok = get_tokenizer(cfg, out, build_captions(build.root, build.shards))
    collator = Collator(cfg.model, cfg.masking, tok)
    fit_images = None
    if cfg.codebook.kind == "kmeans":
        first = [decode_image(b, cfg.model.image_size) for _, b, _ in iter_shard(build.shards[0])]
        fit_images = [torch.as_tensor(np.stack(first[i:i + 256])) for i in range(0, len(first), 256)]
    trainer = Trainer(cfg, build_codebook(cfg.codebook, cfg.model, fit_images), device)
    start = 0
    ckpt = out / "last.pt"
    if resume and ckpt.is_file():
        start = int(trainer.resume(ckpt)["data_position"])
        log.info("resumed from %s at step %d", ckpt, start)
    elif ckpt.is_file() and not resume:
        raise UserError(f"{ckpt} exists: pass --resume to continue it, or choose another --out")
    loader = make_loader(build.shards, collator, cfg, start, pin=device.type == "cuda")
    return trainer.fit(mixed_batches(loader, cfg), cfg.steps, checkpoint_dir=out)
