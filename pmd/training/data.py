"""Batches for the trainer, read through ``pmd.loaders`` (one data path for every consumer of shards).

* ``open_build`` reads ``manifest.json`` with ``pmd.shard.manifest.read_manifest`` and checks the shards
  against it once, in the calling process (sizes always; sha256 when ``verify="sha256"``) — never per rank
  or per DataLoader worker.
* Shards are read by ``pmd.loaders.ShardStream`` (the stream ``pmd.loaders.pair_pipeline`` returns: node and
  worker split, the loaders' policy for fewer shards than consumers, the corrupt-sample policy) with
  ``TrainDecoder``, which uses the loaders' member readers and ``TextEncoder`` (the loaders' one special-token
  set) and adds what FLAVA training needs beyond the loaders' eval transform: a random crop of 0.9–1.0 of the
  area, the whole-image ``squash`` fit, uint8 output, the image sha256 and the sample's source.
* ``Collator`` turns decoded samples into a batch: uint8 images, BEiT patch masks, token ids, MLM masks —
  all fixed-size, so the step needs no host syncs. ``BatchCollate`` is the DataLoader ``collate_fn``
  (``pmd.loaders.collate`` + the masks, seeded by the batch's keys, so a resumed run masks alike).
* ``InMemoryPairs`` holds a small build decoded once (validation, scoring, CPU tests) with a deterministic
  batch stream and the shuffled-caption control.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pmd.errors import UserError
from pmd.loaders import SPECIAL_TOKENS, ConsumerInfo, ShardStream, TextEncoder, collate, load_tokenizer, train_wordpiece
from pmd.loaders.errors import CorruptSampleError
from pmd.loaders.pairs import image_member, json_member, text_member
from pmd.loaders.shards import consumer_shards
from pmd.training.config import MaskingConfig, ModelConfig
from pmd.training.masking import BlockMasker, mask_tokens, mlm_slots

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- tokenizer

def train_tokenizer(captions: Iterable[str], vocab_size: int, max_len: int = 0):
    """The loaders' deterministic WordPiece tokenizer trained on ``captions`` (``max_len`` is applied by
    ``TextEncoder``; accepted here for callers that pass it)."""
    return train_wordpiece(list(captions), vocab_size=vocab_size)


def load_tokenizer_file(path: str | Path, max_len: int = 0):
    """A user-provided ``vocab.txt`` or ``tokenizer.json`` (the loaders' reader and special tokens)."""
    return load_tokenizer(path)


# ----------------------------------------------------------------------------- build directories

@dataclass(frozen=True)
class Build:
    root: Path
    manifest: dict[str, Any]
    shards: list[Path]
    samples: list[int]

    @property
    def urls(self) -> list[str]:
        return [str(p) for p in self.shards]


def open_build(root: str | Path, verify: str | None = "size") -> Build:
    """Read a PMD pairs build and check its shards against the manifest, once.

    ``verify``: ``"size"`` (default: every shard present with the manifest's size — cheap), ``"sha256"``
    (also the content hash: reads every byte; on request), or None.
    """
    from pmd.shard.manifest import read_manifest, verify_manifest

    root = Path(root)
    manifest = read_manifest(root)
    if manifest.get("kind") != "pmd-pairs":
        raise UserError(f"{root / 'manifest.json'}: kind is {manifest.get('kind')!r}, expected 'pmd-pairs'")
    if not manifest["shards"]:
        raise UserError(f"{root / 'manifest.json'}: the build has no shards")
    if verify not in (None, "size", "sha256"):
        raise ValueError(f"verify must be None, 'size' or 'sha256', not {verify!r}")
    if verify:
        problems = verify_manifest(root, check_sha256=verify == "sha256")
        if problems:
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise UserError(f"{root}: shards do not match the manifest: {problems[0]}{more}")
    shards = [root / e["path"] for e in manifest["shards"]]
    return Build(root, manifest, shards, [int(e.get("samples", 0)) for e in manifest["shards"]])


def decode_image(data: bytes, size: int, rng: random.Random | None = None,
                 scale: tuple[float, float] = (1.0, 1.0), fit: str = "crop") -> np.ndarray:
    """Image bytes → (3, size, size) uint8. ``fit="crop"``: a square crop of ``scale`` of the area (random with
    ``rng``, else centred on the largest square), resized. ``fit="squash"``: the whole image resized to the
    square (FLAVA's eval transform; keeps shapes near the edges that captions mention). ``draft`` keeps big
    JPEGs cheap to decode."""
    img = Image.open(io.BytesIO(data))
    if img.format == "JPEG":
        img.draft("RGB", (size, size))
    img = img.convert("RGB")
    w, h = img.size
    if fit == "squash":
        return np.asarray(img.resize((size, size), Image.BICUBIC), dtype=np.uint8).transpose(2, 0, 1)
    if fit != "crop":
        raise ValueError(f"fit must be 'crop' or 'squash', not {fit!r}")
    side = min(w, h)
    if rng is not None and tuple(scale) != (1.0, 1.0):
        side = max(1, int(side * np.sqrt(rng.uniform(*scale))))
    if rng is not None:
        x0, y0 = rng.randint(0, w - side), rng.randint(0, h - side)
    else:
        x0, y0 = (w - side) // 2, (h - side) // 2
    img = img.resize((size, size), Image.BICUBIC, box=(x0, y0, x0 + side, y0 + side))
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


class TrainDecoder:
    """A ``pmd.loaders.ShardStream`` decoder: RawSample → ``{"key", "image" uint8 (3,S,S), "input_ids",
    "attention_mask", "text", "source", "shard", "image_sha256"}``. ``random=True`` crops at random
    (``scale`` of the area); undecodable images follow the loaders' corrupt-sample policy."""

    def __init__(self, encoder: TextEncoder, size: int, fit: str = "crop", scale: tuple[float, float] = (1.0, 1.0),
                 random: bool = False) -> None:
        self.encoder, self.size, self.fit, self.scale, self.random = encoder, size, fit, tuple(scale), random

    def __call__(self, raw, rng: random.Random) -> dict[str, Any]:
        data = image_member(raw)
        meta = json_member(raw)
        text = text_member(raw, meta)
        try:
            image = decode_image(data, self.size, rng if self.random else None, self.scale, self.fit)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise CorruptSampleError("bad_image", f"cannot decode image: {type(exc).__name__}: {exc}") from exc
        ids, mask = self.encoder(text)
        return {"key": raw.key, "image": torch.from_numpy(np.ascontiguousarray(image)), "input_ids": ids,
                "attention_mask": mask, "text": text, "source": str((meta or {}).get("source") or "unknown"),
                "shard": Path(raw.url).name, "image_sha256": hashlib.sha256(data).hexdigest()}


def pair_stream(source: str | Sequence[str], decoder: TrainDecoder, *, shuffle: bool, seed: int = 0,
                shuffle_buffer: int = 1000, on_error: str = "warn") -> ShardStream:
    """The loaders' shard stream over ``source`` (a build directory — then the loaders check each shard
    against its manifest row as they read it — or shard paths) with the trainer's decoder."""
    return ShardStream(source if isinstance(source, str) else list(source), decode=decoder, shuffle=shuffle, shuffle_buffer=shuffle_buffer, seed=seed,
                       on_error=on_error)


def read_samples(source: str | Sequence[str], encoder: TextEncoder, size: int, fit: str = "crop") -> list[dict[str, Any]]:
    """Every sample of ``source`` (build directory or shard paths) in shard order, decoded once (one process)."""
    stream = pair_stream(source, TrainDecoder(encoder, size, fit), shuffle=False)
    out = list(stream)
    skipped = stream.errors.total
    if skipped:
        log.warning("%d unreadable sample(s) skipped (pmd.loaders' corrupt-sample policy)", skipped)
    return out


def check_consumers(source: str | Sequence[str], rank: int, world: int, workers: int) -> None:
    """The loaders' rule for fewer shards than consumers, checked before workers start (one clear error)."""
    from pmd.loaders import expand_shards

    consumer_shards(expand_shards(source), seed=0, epoch=0, shuffle=False,
                    info=ConsumerInfo(rank=rank, world_size=world, worker=0, num_workers=max(1, workers)))


# ----------------------------------------------------------------------------- batches

class Collator:
    """Samples → batch tensors for one batch kind (``paired``, ``image``, ``text``)."""

    def __init__(self, model: ModelConfig, masking: MaskingConfig, tokenizer) -> None:
        grid = model.image_size // model.patch_size
        self.masker = BlockMasker(grid, masking.mim_patches, masking.mim_min_block, masking.mim_max_block,
                                  tuple(masking.mim_aspect))
        self.masking, self.max_len = masking, model.max_text_len
        self.tokenizer = tokenizer
        self.encoder = TextEncoder(tokenizer, model.max_text_len)
        self.vocab_size = model.vocab_size
        if tokenizer.get_vocab_size() > model.vocab_size:
            raise UserError(f"tokenizer has {tokenizer.get_vocab_size()} tokens > model.vocab_size {model.vocab_size}")
        self.mask_id = tokenizer.token_to_id("[MASK]")
        if self.mask_id is None:
            raise UserError("tokenizer has no [MASK] token")
        self.special = np.zeros(model.vocab_size, dtype=bool)
        for t in SPECIAL_TOKENS:
            if tokenizer.token_to_id(t) is not None:
                self.special[tokenizer.token_to_id(t)] = True
        self.slots = mlm_slots(self.max_len, masking.mlm_probability)

    def tokenize(self, captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if not captions:
            return np.zeros((0, self.max_len), np.int64), np.zeros((0, self.max_len), bool)
        enc = [self.encoder(c) for c in captions]
        return np.stack([i.numpy() for i, _ in enc]), np.stack([m.numpy() for _, m in enc]).astype(bool)

    def image_part(self, images: np.ndarray | torch.Tensor, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        masks = [self.masker(rng) for _ in range(len(images))]
        idx, valid = zip(*(self.masker.indices(m) for m in masks))
        return {"images": torch.as_tensor(images), "patch_mask": torch.from_numpy(np.stack(masks).reshape(len(masks), -1)),
                "patch_idx": torch.from_numpy(np.stack(idx)), "patch_valid": torch.from_numpy(np.stack(valid))}

    def text_part(self, ids: np.ndarray, attn: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        m = self.masking
        rows = [mask_tokens(i, a, self.special, self.mask_id, self.vocab_size, rng, m.mlm_probability,
                            m.mlm_mask_prob, m.mlm_random_prob, self.slots) for i, a in zip(ids, attn)]
        masked, pos, labels = (np.stack(x) for x in zip(*rows))
        return {"ids": torch.from_numpy(ids), "attn": torch.from_numpy(attn), "masked_ids": torch.from_numpy(masked),
                "mlm_pos": torch.from_numpy(pos), "mlm_labels": torch.from_numpy(labels)}

    def __call__(self, kind: str, rng: np.random.Generator, images=None, ids=None, attn=None) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        if kind in ("paired", "image"):
            out.update(self.image_part(images, rng))
        if kind in ("paired", "text"):
            out.update(self.text_part(ids, attn, rng))
        return out


class BatchCollate:
    """DataLoader ``collate_fn``: ``pmd.loaders.collate`` of decoded samples, then the FLAVA masks. The mask
    RNG is seeded by (seed, the batch's keys), so the same batch is masked alike after a resume."""

    def __init__(self, collator: Collator, seed: int) -> None:
        self.collator, self.seed = collator, seed

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        b = collate(samples)
        digest = hashlib.sha256("\n".join(b["key"]).encode()).digest()
        rng = np.random.default_rng([self.seed, int.from_bytes(digest[:8], "little")])
        return self.collator("paired", rng, images=b["image"], ids=b["input_ids"].numpy(),
                             attn=b["attention_mask"].numpy().astype(bool))


def batch_kinds(weights: dict[str, float], mix: str, seed: int) -> Iterator[str]:
    """The kind of each step: round-robin over kinds with weight > 0, or sampled by weight."""
    kinds = [k for k, w in weights.items() if w > 0]
    if not kinds:
        raise UserError("data: every batch weight is 0")
    if mix == "round_robin":
        i = 0
        while True:
            yield kinds[i % len(kinds)]
            i += 1
    rng = np.random.default_rng(seed)  # same seed on every rank: ranks agree on the kind
    p = np.array([weights[k] for k in kinds], dtype=float)
    while True:
        yield kinds[int(rng.choice(len(kinds), p=p / p.sum()))]


class InMemoryPairs:
    """A small set of pairs decoded once: uint8 images (N,3,S,S), token ids (N,L), and per pair its key,
    caption, source, shard and image sha256 (held-out recall per source and per shard, the split)."""

    def __init__(self, images: np.ndarray, ids: np.ndarray, attn: np.ndarray, keys: list[str], captions: list[str],
                 sources: list[str] | None = None, shards: list[str] | None = None,
                 image_hashes: list[str] | None = None) -> None:
        self.images, self.ids, self.attn, self.keys, self.captions = images, ids, attn, keys, captions
        n = len(keys)
        self.sources = sources if sources is not None else ["unknown"] * n
        self.shards = shards if shards is not None else ["unknown"] * n
        self.image_hashes = image_hashes if image_hashes is not None else \
            [hashlib.sha256(images[i].tobytes()).hexdigest() for i in range(n)]

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_decoded(cls, samples: list[dict[str, Any]], size: int) -> "InMemoryPairs":
        """From ``TrainDecoder`` outputs (``read_samples``)."""
        if not samples:
            return cls(np.zeros((0, 3, size, size), np.uint8), np.zeros((0, 1), np.int64), np.zeros((0, 1), bool),
                       [], [], [], [], [])
        return cls(np.stack([s["image"].numpy() for s in samples]),
                   np.stack([s["input_ids"].numpy() for s in samples]),
                   np.stack([s["attention_mask"].numpy() for s in samples]).astype(bool),
                   [s["key"] for s in samples], [s["text"] for s in samples], [s["source"] for s in samples],
                   [s["shard"] for s in samples], [s["image_sha256"] for s in samples])

    def subset(self, idx: Sequence[int]) -> "InMemoryPairs":
        idx = list(idx)
        return InMemoryPairs(self.images[idx], self.ids[idx], self.attn[idx], [self.keys[i] for i in idx],
                             [self.captions[i] for i in idx], [self.sources[i] for i in idx],
                             [self.shards[i] for i in idx], [self.image_hashes[i] for i in idx])

    def with_captions_permuted(self, seed: int) -> "InMemoryPairs":
        """The control: captions shuffled across samples (images untouched)."""
        perm = np.random.default_rng(seed).permutation(len(self))
        return InMemoryPairs(self.images, self.ids[perm], self.attn[perm], self.keys, [self.captions[i] for i in perm],
                             self.sources, self.shards, self.image_hashes)

    def batches(self, collator: Collator, batch_size: int, kinds: Iterator[str], seed: int,
                start: int = 0, rank: int = 0, world: int = 1) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
        """Endless ``(kind, batch)``; batch ``n`` depends only on (seed, n), so resuming at ``start``
        reproduces the same stream. Each rank takes its slice of a global batch."""
        n = len(self)
        per_epoch = n // (batch_size * world)
        if per_epoch == 0:
            raise UserError(f"{n} pairs are fewer than one global batch ({batch_size} x {world})")
        step = 0
        for kind in kinds:
            if step >= start:
                epoch, j = divmod(step, per_epoch)
                perm = np.random.default_rng([seed, epoch, {"paired": 0, "image": 1, "text": 2}[kind]]).permutation(n)
                lo = (j * world + rank) * batch_size
                sel = np.sort(perm[lo:lo + batch_size])
                rng = np.random.default_rng([seed, step, rank, 7])
                yield kind, collator(kind, rng, images=self.images[sel], ids=self.ids[sel], attn=self.attn[sel])
            step += 1
