"""Batches for the trainer from PMD build directories (docs/ARCHITECTURE.md layout).

* ``open_build`` reads ``manifest.json`` and checks each shard's sha256 (a tampered or truncated
  shard is a clear error, never silent training on the wrong data).
* ``iter_shard`` yields ``(key, jpeg bytes, caption)`` from one WebDataset tar.
* ``Collator`` turns decoded samples into a batch: uint8 images, BEiT patch masks, token ids,
  MLM masks — all fixed-size, so the step needs no host syncs.
* ``InMemoryPairs`` holds a small build decoded once (validation, CPU tests); ``ShardStream`` streams
  large builds through DataLoader workers with pinned memory (GPU training, the benchmark).
* ``write_build`` writes samples in the same layout (shards, Parquet sidecars, manifest last), used
  to turn Flickr8k/COCO folders into a validatable build and by the tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pmd.errors import UserError
from pmd.training.config import MaskingConfig, ModelConfig
from pmd.training.masking import BlockMasker, mask_tokens, mlm_slots

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# ----------------------------------------------------------------------------- tokenizer

def train_tokenizer(captions: Iterable[str], vocab_size: int, max_len: int):
    """A WordPiece tokenizer trained on ``captions`` (``pmd.loaders.tokenizer`` when available)."""
    try:
        from pmd.loaders.tokenizer import train_wordpiece  # the loaders' shared implementation
    except ImportError:
        train_wordpiece = None
    if train_wordpiece is not None:
        tok = train_wordpiece(list(captions), vocab_size=vocab_size)
    else:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=1)
        tok.train_from_iterator(list(captions), trainer)
    return _finish_tokenizer(tok, max_len)


def load_tokenizer_file(path: str | Path, max_len: int):
    """A user-provided vocab (``vocab.txt``, one WordPiece token a line) or ``tokenizer.json``."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"tokenizer {p} not found")
    try:
        from pmd.loaders.tokenizer import load_tokenizer
    except ImportError:
        load_tokenizer = None
    if load_tokenizer is not None:
        tok = load_tokenizer(p)
    elif p.suffix == ".json":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(p))
    else:
        from tokenizers import BertWordPieceTokenizer

        tok = BertWordPieceTokenizer(str(p), lowercase=True)
    return _finish_tokenizer(tok, max_len)


def _finish_tokenizer(tok, max_len: int):
    from tokenizers.processors import TemplateProcessing

    tok = getattr(tok, "_tokenizer", tok)  # BertWordPieceTokenizer wraps a Tokenizer
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    missing = [t for t, i in ids.items() if i is None]
    if missing:
        raise UserError(f"tokenizer lacks special tokens {missing}")
    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    tok.enable_truncation(max_len)
    tok.enable_padding(pad_id=ids["[PAD]"], pad_token="[PAD]", length=max_len)
    return tok


# ----------------------------------------------------------------------------- build directories

@dataclass(frozen=True)
class Build:
    root: Path
    manifest: dict[str, Any]
    shards: list[Path]
    samples: list[int]


def open_build(root: str | Path, verify: bool = True) -> Build:
    """Read and check a PMD build directory (``kind: pmd-pairs``)."""
    root = Path(root)
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise UserError(f"{root} is not a PMD build (no manifest.json)")
    manifest = json.loads(mpath.read_text())
    if manifest.get("kind") != "pmd-pairs":
        raise UserError(f"{mpath}: kind is {manifest.get('kind')!r}, expected 'pmd-pairs'")
    shards, counts = [], []
    for entry in manifest["shards"]:
        p = root / entry["path"]
        if not p.is_file():
            raise UserError(f"{mpath}: shard {entry['path']} is missing")
        if verify and entry.get("sha256"):
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            if digest != entry["sha256"]:
                raise UserError(f"{p}: sha256 {digest[:12]}… does not match the manifest ({entry['sha256'][:12]}…)")
        shards.append(p)
        counts.append(int(entry.get("samples", 0)))
    if not shards:
        raise UserError(f"{mpath}: the build has no shards")
    return Build(root, manifest, shards, counts)


def iter_shard(path: Path) -> Iterator[tuple[str, bytes, str]]:
    """``(key, image bytes, caption)`` for each complete sample of a WebDataset tar, in order."""
    cur: dict[str, bytes] = {}
    key = None
    with tarfile.open(path) as tf:
        for m in tf:
            if not m.isfile():
                continue
            k, _, ext = m.name.rpartition("/")[2].partition(".")
            if k != key:
                if key is not None and _complete(cur):
                    yield key, _image_bytes(cur), cur["txt"].decode("utf-8")
                key, cur = k, {}
            cur[ext] = tf.extractfile(m).read()
        if key is not None and _complete(cur):
            yield key, _image_bytes(cur), cur["txt"].decode("utf-8")


def _complete(s: dict[str, bytes]) -> bool:
    return "txt" in s and any(e in s for e in ("jpg", "jpeg", "png", "webp"))


def _image_bytes(s: dict[str, bytes]) -> bytes:
    return next(s[e] for e in ("jpg", "jpeg", "png", "webp") if e in s)


def decode_image(data: bytes, size: int, rng: np.random.Generator | None = None,
                 scale: tuple[float, float] = (1.0, 1.0), fit: str = "crop") -> np.ndarray:
    """JPEG → (3, size, size) uint8. ``fit="crop"``: a square crop of ``scale`` of the area (random with
    ``rng``, else centred on the largest square), resized. ``fit="squash"``: the whole image resized to
    the square (FLAVA's eval transform; keeps shapes near the edges that captions mention).
    ``draft`` keeps big JPEGs cheap to decode."""
    img = Image.open(io.BytesIO(data))
    img.draft("RGB", (size, size))
    img = img.convert("RGB")
    w, h = img.size
    if fit == "squash":
        return np.asarray(img.resize((size, size), Image.BICUBIC), dtype=np.uint8).transpose(2, 0, 1)
    if fit != "crop":
        raise ValueError(f"fit must be 'crop' or 'squash', not {fit!r}")
    side = min(w, h)
    if rng is not None and scale != (1.0, 1.0):
        side = int(side * np.sqrt(rng.uniform(*scale)))
    if rng is not None:
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    else:
        x0, y0 = (w - side) // 2, (h - side) // 2
    img = img.resize((size, size), Image.BICUBIC, box=(x0, y0, x0 + side, y0 + side))
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


# ----------------------------------------------------------------------------- batches

class Collator:
    """Samples → batch tensors for one batch kind (``paired``, ``image``, ``text``)."""

    def __init__(self, model: ModelConfig, masking: MaskingConfig, tokenizer) -> None:
        grid = model.image_size // model.patch_size
        self.masker = BlockMasker(grid, masking.mim_patches, masking.mim_min_block, masking.mim_max_block,
                                  tuple(masking.mim_aspect))
        self.masking, self.max_len = masking, model.max_text_len
        self.tokenizer = tokenizer
        self.vocab_size = model.vocab_size
        self.mask_id = tokenizer.token_to_id("[MASK]")
        self.special = np.zeros(max(model.vocab_size, tokenizer.get_vocab_size()), dtype=bool)
        for t in (*SPECIAL_TOKENS, "<image>", "<EOC>"):  # the loaders' tokenizer adds the last two
            if tokenizer.token_to_id(t) is not None:
                self.special[tokenizer.token_to_id(t)] = True
        self.slots = mlm_slots(self.max_len, masking.mlm_probability)
        if tokenizer.get_vocab_size() > model.vocab_size:
            raise UserError(f"tokenizer has {tokenizer.get_vocab_size()} tokens > model.vocab_size {model.vocab_size}")

    def tokenize(self, captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        enc = self.tokenizer.encode_batch(captions)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        attn = np.array([e.attention_mask for e in enc], dtype=bool)
        return ids, attn

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
    """A small set of pairs decoded once: uint8 images (N,3,S,S) and token ids (N,L)."""

    def __init__(self, images: np.ndarray, ids: np.ndarray, attn: np.ndarray, keys: list[str], captions: list[str]) -> None:
        self.images, self.ids, self.attn, self.keys, self.captions = images, ids, attn, keys, captions

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_samples(cls, samples: list[tuple[str, bytes, str]], size: int, collator: Collator,
                     fit: str = "crop") -> "InMemoryPairs":
        images = np.stack([decode_image(b, size, fit=fit) for _, b, _ in samples]) if samples else np.zeros((0, 3, size, size), np.uint8)
        captions = [t for _, _, t in samples]
        ids, attn = collator.tokenize(captions)
        return cls(images, ids, attn, [k for k, _, _ in samples], captions)

    def with_captions_permuted(self, seed: int) -> "InMemoryPairs":
        """The control: captions shuffled across samples (images untouched)."""
        perm = np.random.default_rng(seed).permutation(len(self))
        return InMemoryPairs(self.images, self.ids[perm], self.attn[perm], self.keys, [self.captions[i] for i in perm])

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


class ShardStream(torch.utils.data.IterableDataset):
    """Streams paired batches from shards; worker ``w`` of rank ``r`` reads shards ``w + W·r :: W·R``.

    Batches are collated in the workers; use with ``DataLoader(batch_size=None, pin_memory=True)``.
    """

    def __init__(self, shards: list[Path], collator: Collator, image_size: int, batch_size: int, seed: int = 0,
                 crop_scale: tuple[float, float] = (0.9, 1.0), rank: int = 0, world: int = 1,
                 skip_batches: int = 0, workers: int = 1) -> None:
        super().__init__()
        self.shards, self.collator, self.size, self.bs = list(shards), collator, image_size, batch_size
        self.seed, self.scale, self.rank, self.world = seed, tuple(crop_scale), rank, world
        self.skip, self.workers = skip_batches, max(workers, 1)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        slot, stride = wid + self.workers * self.rank, self.workers * self.world
        # DataLoader takes batches from workers in turn: batch k came from worker k % workers.
        skip = max(0, -(-(self.skip - wid) // self.workers)) * self.bs
        epoch = 0
        while True:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
            mine = [self.shards[i] for i in order if i % stride == slot % len(self.shards)] or \
                [self.shards[order[slot % len(self.shards)]]]
            rng = np.random.default_rng([self.seed, epoch, slot])
            buf: list[tuple[np.ndarray, str]] = []
            for path in mine:
                for _, data, text in iter_shard(path):
                    if skip:
                        skip -= 1
                        continue
                    try:
                        buf.append((decode_image(data, self.size, rng, self.scale), text))
                    except Exception as exc:  # noqa: BLE001 - one bad image never stops training
                        log.warning("%s: undecodable image skipped: %s", path.name, exc)
                        continue
                    if len(buf) == self.bs:
                        ids, attn = self.collator.tokenize([t for _, t in buf])
                        yield self.collator("paired", rng, images=np.stack([i for i, _ in buf]), ids=ids, attn=attn)
                        buf = []
            epoch += 1


# ----------------------------------------------------------------------------- writing builds

def _tar_member(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname, ti.mode = len(data), 0, 0, 0, "", "", 0o644
    tf.addfile(ti, io.BytesIO(data))


def write_build(out: str | Path, samples: Iterable[dict[str, Any]], shard_size: int = 1000,
                config: dict[str, Any] | None = None) -> Path:
    """Write ``samples`` (dicts with ``key, jpg (bytes), text`` and optional metadata) as a PMD build:
    ``shards/pairs-NNNNNN.tar`` + ``.parquet``, then ``manifest.json`` last (temp + rename)."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    chunk: list[dict[str, Any]] = []

    def flush() -> None:
        n = len(entries)
        rel = f"shards/pairs-{n:06d}.tar"
        tmp = out / (rel + ".tmp")
        rows = []
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tf:
            for s in chunk:
                meta = {k: v for k, v in s.items() if k != "jpg"}
                meta.setdefault("id", s["key"])
                _tar_member(tf, f"{s['key']}.jpg", s["jpg"])
                _tar_member(tf, f"{s['key']}.txt", s["text"].encode("utf-8"))
                _tar_member(tf, f"{s['key']}.json", json.dumps(meta, sort_keys=True).encode("utf-8"))
                rows.append({**{k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in meta.items()},
                             "shard": rel})
        tmp.replace(out / rel)
        pq.write_table(pa.Table.from_pylist(rows), out / rel.replace(".tar", ".parquet"))
        data = (out / rel).read_bytes()
        entries.append({"path": rel, "parquet": rel.replace(".tar", ".parquet"), "samples": len(chunk),
                        "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        chunk.clear()

    for s in samples:
        chunk.append(s)
        if len(chunk) == shard_size:
            flush()
    if chunk:
        flush()
    manifest = {"kind": "pmd-pairs", "format_version": 1, "shards": entries,
                "total_samples": sum(e["samples"] for e in entries), "config": config or {}, "versions": {},
                "counters": [], "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(out / "manifest.json")
    return out
