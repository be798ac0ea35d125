"""Image-text pairs for FLAVA: the image transform, fixed-length text encoding and the pair pipeline.

No torchvision (its PyPI wheels break beside this torch): images are decoded and resized with PIL and
turned into tensors with numpy/torch. The transform is FLAVA's evaluation transform — resize the short
side to ``size`` (bicubic), centre-crop ``size`` x ``size``, scale to [0, 1], normalise with CLIP's mean
and std (what FLAVA's image processor uses) — done as one ``Image.resize(box=...)`` of the crop region.
JPEGs are first opened with ``Image.draft("RGB", (size, size))``, which lets libjpeg decode at 1/2, 1/4
or 1/8 scale when the result still covers ``size`` (a large saving on big images; none on 256 px ones).
``random_crop=True`` takes a random instead of a centred square and ``hflip`` flips half the images
(seeded per consumer and epoch by the stream).
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any, Sequence, Unpack

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer

from pmd.loaders.errors import CorruptSampleError
from pmd.loaders.shards import RawSample, ShardStream, StreamOptions

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_EXTS: tuple[str, ...] = ("jpg", "jpeg", "png", "webp")


class ImageTransform:
    """Bytes of an image -> ``FloatTensor[3, size, size]`` (see module docstring)."""

    def __init__(
        self,
        size: int = 224,
        *,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        random_crop: bool = False,
        hflip: bool = False,
        resample: int = Image.Resampling.BICUBIC,
        draft: bool = True,
        normalize: bool = True,
    ) -> None:
        if size <= 0:
            raise ValueError(f"image size must be positive, got {size}")
        self.size = int(size)
        self.random_crop = random_crop
        self.hflip = hflip
        self.resample = resample
        self.draft = draft
        self.normalize = normalize
        self.mean, self.std = tuple(mean), tuple(std)
        std_a = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
        self._scale = (1.0 / (255.0 * std_a)).astype(np.float32)
        self._shift = (np.asarray(mean, dtype=np.float32).reshape(3, 1, 1) / std_a).astype(np.float32)

    def pil(self, data: bytes, rng: random.Random | None = None) -> Image.Image:
        """Decode, resize and crop to an RGB ``size`` x ``size`` PIL image."""
        size = self.size
        im = Image.open(io.BytesIO(data))
        if self.draft and im.format == "JPEG":
            im.draft("RGB", (size, size))
        im = im.convert("RGB")
        w, h = im.size
        scale = size / min(w, h)
        rw, rh = max(size, round(w * scale)), max(size, round(h * scale))
        if self.random_crop and rng is not None:
            left, top = rng.randint(0, rw - size), rng.randint(0, rh - size)
        else:
            left, top = (rw - size) // 2, (rh - size) // 2
        box = (left / scale, top / scale, (left + size) / scale, (top + size) / scale)
        im = im.resize((size, size), self.resample, box=box)
        if self.hflip and rng is not None and rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return im

    def to_tensor(self, im: Image.Image) -> torch.Tensor:
        if not self.normalize:
            return torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1)
        # numpy, not torch ops: small per-sample torch ops pay intra-op thread overhead (10x slower on a
        # busy machine), and workers should not spin up thread pools per image.
        chw = np.ascontiguousarray(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)).astype(np.float32)
        chw *= self._scale
        chw -= self._shift
        return torch.from_numpy(chw)

    def __call__(self, data: bytes, rng: random.Random | None = None) -> torch.Tensor:
        return self.to_tensor(self.pil(data, rng))


def normalize_images(images: torch.Tensor, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> torch.Tensor:
    """``uint8 [..., 3, H, W]`` -> normalised float, for streams built with ``normalize=False`` (do it on the
    training device, batched: cheaper than per sample in the workers)."""
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(3, 1, 1)
    return (images.to(torch.float32) / 255.0 - m) / s


class TextEncoder:
    """Text -> ``(input_ids, attention_mask)``, both ``LongTensor[max_len]``: ``[CLS] ... [SEP]`` truncated
    to ``max_len`` (``[SEP]`` kept) and right-padded with ``[PAD]``=0. Uses its own copy of the tokenizer,
    so the caller's keeps its settings."""

    def __init__(self, tokenizer: Tokenizer, max_len: int = 77) -> None:
        if max_len < 2:
            raise ValueError(f"max_text_len must be >= 2, got {max_len}")
        self.max_len = int(max_len)
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        pad_id = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_truncation(max_length=self.max_len)
        self.tokenizer.enable_padding(length=self.max_len, pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")

    def __call__(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer.encode(text)
        # via numpy: torch.tensor(list) costs ~0.1 ms per call
        return torch.from_numpy(np.asarray(enc.ids, dtype=np.int64)), torch.from_numpy(np.asarray(enc.attention_mask, dtype=np.int64))

    def __getstate__(self) -> dict[str, Any]:
        return {"max_len": self.max_len, "tokenizer": self.tokenizer.to_str()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.max_len = state["max_len"]
        self.tokenizer = Tokenizer.from_str(state["tokenizer"])


def image_member(raw: RawSample) -> bytes:
    """The sample's image bytes (first of .jpg/.jpeg/.png/.webp) or a ``missing_member`` error."""
    for ext in IMAGE_EXTS:
        data = raw.members.get(ext)
        if data is not None:
            return data  # type: ignore[return-value]
    raise CorruptSampleError("missing_member", f"no image member (.{'/.'.join(IMAGE_EXTS)}); has {sorted(raw.members)}")


def json_member(raw: RawSample, ext: str = "json", *, required: bool = False) -> dict[str, Any] | None:
    data = raw.members.get(ext)
    if data is None:
        if required:
            raise CorruptSampleError("missing_member", f"no .{ext} member; has {sorted(raw.members)}")
        return None
    try:
        meta = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptSampleError("bad_json", f".{ext} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise CorruptSampleError("bad_json", f".{ext} is a JSON {type(meta).__name__}, expected an object")
    return meta


def text_member(raw: RawSample, meta: dict[str, Any] | None) -> str:
    """The caption: the ``.txt`` member, else the JSON's ``text``."""
    data = raw.members.get("txt")
    if data is not None:
        try:
            return data if isinstance(data, str) else data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptSampleError("bad_text", f".txt is not UTF-8: {exc}") from exc
    if meta is not None and isinstance(meta.get("text"), str):
        return meta["text"]
    raise CorruptSampleError("missing_member", f"no .txt member and no JSON text; has {sorted(raw.members)}")


def decode_image(transform: ImageTransform, data: bytes, rng: random.Random | None) -> torch.Tensor:
    try:
        return transform(data, rng)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise CorruptSampleError("bad_image", f"cannot decode image: {type(exc).__name__}: {exc}") from exc


class PairDecoder:
    """RawSample -> ``{"image", "input_ids", "attention_mask", "key", "text"}``."""

    def __init__(self, transform: ImageTransform, encoder: TextEncoder) -> None:
        self.transform = transform
        self.encoder = encoder

    def __call__(self, raw: RawSample, rng: random.Random) -> dict[str, Any]:
        data = image_member(raw)
        meta = json_member(raw)
        text = text_member(raw, meta)
        image = decode_image(self.transform, data, rng)
        ids, mask = self.encoder(text)
        return {"image": image, "input_ids": ids, "attention_mask": mask, "key": raw.key, "text": text}


def pair_pipeline(
    urls: str | Path | Sequence[str | Path],
    *,
    tokenizer: Tokenizer,
    image_size: int = 224,
    max_text_len: int = 77,
    random_crop: bool = False,
    hflip: bool = False,
    normalize: bool = True,
    **options: Unpack[StreamOptions],
) -> ShardStream:
    """Image-text pairs from PMD pair shards, as an ``IterableDataset`` yielding
    ``{"image": FloatTensor[3, S, S], "input_ids": LongTensor[L], "attention_mask": LongTensor[L],
    "key": str, "text": str}`` (S = ``image_size``, L = ``max_text_len``).

    ``urls``: a build directory, its manifest, shard paths, brace patterns or fsspec URLs
    (:func:`pmd.loaders.shards.expand_shards`). Stream options (:class:`~pmd.loaders.shards.StreamOptions`,
    defaults and meaning as :class:`~pmd.loaders.shards.ShardStream`): ``shuffle=True`` shuffles shards
    per epoch (seeded by ``seed=0`` and the epoch) and samples through a ``shuffle_buffer=1000``;
    ``resampled=True`` draws shards with replacement forever (bound it with ``epoch_length``);
    ``epoch_length`` fixes the samples per consumer and iteration; ``on_error`` is ``"warn"`` (skip,
    count, warn) or ``"raise"``; ``verify`` checks the shards a manifest lists against it
    (``"samples"``: count and size, ``"sha256"``: also the hash, ``"none"``). ``normalize=False`` yields
    ``uint8`` images (a permuted ``[3, S, S]`` view) to normalise batched on the device with
    :func:`normalize_images` — saves ~0.5 ms of CPU per image in the workers. Batch with
    ``DataLoader(ds, batch_size=B, collate_fn=pmd.loaders.collate)``.
    """
    transform = ImageTransform(image_size, random_crop=random_crop, hflip=hflip, normalize=normalize)
    return ShardStream(
        urls,
        decode=PairDecoder(transform, TextEncoder(tokenizer, max_text_len)),
        **options,
    )
