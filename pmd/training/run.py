"""`pmd train --data BUILD --out DIR`: train on every shard of a build, with checkpoints and resume.

Batches stream from the shards through ``pmd.loaders`` (``ShardStream`` split by rank and DataLoader worker,
the loaders' rule when there are fewer shards than consumers: a clear error, never duplicated shards) and
``BatchCollate`` in the workers, with pinned memory. Shards are checked against the manifest once, on rank 0
(sizes; sha256 with ``verify="sha256"``). Image-only and text-only batches (when their weights are > 0) take
the image or the caption half of a streamed batch. The tokenizer is trained once on the build's captions
(Parquet sidecars) and saved beside the checkpoints, so a resumed run tokenizes identically. The checkpoint
records the data position as (epoch, batches into it): a resume sets the epoch and skips only within it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch

from pmd.errors import UserError
from pmd.training.codebook import build_codebook
from pmd.training.config import TrainConfig
from pmd.training.data import (BatchCollate, Collator, TrainDecoder, batch_kinds, check_consumers, load_tokenizer_file,
                               open_build, pair_stream, read_samples, train_tokenizer)
from pmd.training.distributed import init_from_env, rank, world_size
from pmd.training.trainer import Trainer, pick_device

log = logging.getLogger(__name__)

IMAGE_KEYS = ("images", "patch_mask", "patch_idx", "patch_valid")
TEXT_KEYS = ("ids", "attn", "masked_ids", "mlm_pos", "mlm_labels")


def build_captions(shards: list[Path]) -> Iterator[str]:
    """Every caption of the build: the Parquet sidecars when present, else the loaders' text stream."""
    missing = [s for s in shards if not s.with_suffix(".parquet").is_file()]
    for shard in shards:
        side = shard.with_suffix(".parquet")
        if side.is_file():
            yield from pq.read_table(side, columns=["text"]).column("text").to_pylist()
    if missing:
        from pmd.loaders import text_pipeline, train_wordpiece

        tok = train_wordpiece(["x"], vocab_size=16)  # only for the stream's encoder: the texts are what we keep
        yield from (s["text"] for s in text_pipeline([str(m) for m in missing], tokenizer=tok, shuffle=False))


def get_tokenizer(cfg: TrainConfig, out: Path, shards: list[Path]):
    saved = out / "tokenizer.json"
    if cfg.data.tokenizer:
        return load_tokenizer_file(cfg.data.tokenizer)
    if saved.is_file():
        return load_tokenizer_file(saved)
    tok = train_tokenizer(build_captions(shards), cfg.model.vocab_size)
    if rank() == 0:
        from pmd.loaders import save_tokenizer

        save_tokenizer(tok, saved)
    return tok


def mixed_batches(loader: Iterator[dict[str, torch.Tensor]], cfg: TrainConfig) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    d = cfg.data
    for kind in batch_kinds({"paired": d.paired_weight, "image": d.image_weight, "text": d.text_weight}, d.mix, cfg.seed):
        batch = next(loader)
        keys = IMAGE_KEYS if kind == "image" else TEXT_KEYS if kind == "text" else tuple(batch)
        yield kind, {k: batch[k] for k in keys}


class Position:
    """Where the stream is: epoch and batches consumed in it (saved in checkpoints)."""

    def __init__(self, epoch: int = 0, batch: int = 0) -> None:
        self.epoch, self.batch = epoch, batch

    def state(self) -> dict[str, int]:
        return {"data_epoch": self.epoch, "data_batch": self.batch}


def make_loader(urls: str | list[str], collator: Collator, cfg: TrainConfig, pin: bool,
                position: Position | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Endless collated batches from ``urls`` via the loaders' stream; ``position`` is advanced as batches
    are taken (and, when given non-zero, is where the stream resumes)."""
    d = cfg.data
    check_consumers(urls, rank(), world_size(), d.workers)
    decoder = TrainDecoder(collator.encoder, cfg.model.image_size, d.fit, tuple(d.train_crop_scale), random=True)
    ds = pair_stream(urls, decoder, shuffle=True, seed=cfg.seed, shuffle_buffer=d.shuffle_buffer)
    kw: dict[str, Any] = {"batch_size": d.batch_size, "collate_fn": BatchCollate(collator, cfg.seed), "drop_last": True,
                          "num_workers": d.workers, "pin_memory": pin}
    if d.workers > 0:
        kw.update(prefetch_factor=d.prefetch)
    loader = torch.utils.data.DataLoader(ds, **kw)
    pos = position or Position()

    def endless() -> Iterator[dict[str, torch.Tensor]]:
        skip = pos.batch
        while True:
            ds.set_epoch(pos.epoch)
            n = 0
            for batch in loader:
                n += 1
                if n <= skip:
                    continue  # resuming inside an epoch: same order, so skip what was consumed
                pos.batch = n
                yield batch
            if n == 0:
                raise UserError(f"no batch of {d.batch_size} could be read from {urls} "
                                f"(per consumer; see the corrupt-sample warnings)")
            skip, pos.epoch, pos.batch = 0, pos.epoch + 1, 0

    return endless()


def train_on_build(build_dir: str | Path, cfg: TrainConfig, out: str | Path, resume: bool = False,
                   verify: str = "size") -> list[dict[str, float]]:
    out = Path(out)
    device = pick_device(cfg.device)
    init_from_env(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    build = open_build(build_dir, verify=verify if rank() == 0 else None)
    tok = get_tokenizer(cfg, out, build.shards)
    collator = Collator(cfg.model, cfg.masking, tok)
    fit_images = None
    if cfg.codebook.kind == "kmeans":
        first = read_samples(build.urls[:1], collator.encoder, cfg.model.image_size, cfg.data.fit)
        fit_images = [torch.stack([s["image"] for s in first[i:i + 256]]) for i in range(0, len(first), 256)]
    trainer = Trainer(cfg, build_codebook(cfg.codebook, cfg.model, fit_images), device)
    ckpt = out / "last.pt"
    position = Position()
    if resume and ckpt.is_file():
        state = trainer.resume(ckpt)
        position = Position(int(state.get("data_epoch", 0)), int(state.get("data_batch", 0)))
        log.info("resumed from %s at step %d (epoch %d, batch %d)", ckpt, trainer.step, position.epoch, position.batch)
    elif ckpt.is_file() and not resume:
        raise UserError(f"{ckpt} exists: pass --resume to continue it, or choose another --out")
    loader = make_loader(str(build.root), collator, cfg, pin=device.type == "cuda", position=position)
    return trainer.fit(mixed_batches(loader, cfg), cfg.steps, checkpoint_dir=out,
                       extra_state=lambda: {**position.state(), "tokenizer": tok.to_str()})
