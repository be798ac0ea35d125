"""Flamingo M3W training samples from interleaved documents (Flamingo, arXiv 2204.14198, §2.4, App. A.1.3).

Layout of a whole document (text chunks tokenised without special tokens)::

    [BOS] text0 [EOC] <image> text1 [EOC] <image> text2 ... [EOC] [EOS]

* ``<image>`` stands at each image position. ``<EOC>`` (end of chunk) precedes every ``<image>`` — except an
  image that is the very first element (it would end an empty chunk; this matches Flamingo's paired format
  ``<BOS><image>caption<EOC><EOS>``) — and ends the document, before ``<EOS>``. Two consecutive images give
  ``<EOC><image><EOC><image>``. With our BERT-style tokenizer ``[CLS]`` plays ``<BOS>`` and ``[SEP]`` ``<EOS>``.
* **Window**: a random subsequence of ``L = seq_len`` tokens: ``start`` uniform in ``[0, T - L]`` for a
  document of ``T > L`` tokens (drawn from the stream's seeded generator); a shorter document is used whole
  and right-padded with ``[PAD]`` (``attention_mask`` 0).
* **Images**: the first ``N = max_images`` images whose ``<image>`` token lies in the window are kept, in
  order; they are images 1..k. Further images are discarded (Flamingo: "to save compute"): their
  ``<image>`` tokens are removed from the window while their text, and the ``<EOC>`` before them, stay.
  The window is not extended to make up for removed tokens (it stays ``[start, start + L)`` of the
  document); it is right-padded instead. ``images`` is zero-padded to ``N`` with ``image_mask`` false.
* **φ (``image_index``)**, per token, 1-based index into the kept images, 0 = none:

  - previous mode: the last kept image whose ``<image>`` token is at or before the token (an ``<image>``
    token maps to its own image; tokens before the first kept image get 0);
  - next mode (chosen per sample with probability ``p_next``): the first kept image whose ``<image>``
    token is at or after the token (tokens after the last kept image get 0).

  Images outside the window or discarded never appear in φ: in previous mode the tokens after a
  discarded image keep pointing at image N, and the tokens at the window's start get 0 even if the page
  had an image just before the window. Padding has φ = 0.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Unpack

import torch
from tokenizers import Tokenizer

from pmd.loaders.errors import CorruptSampleError
from pmd.loaders.pairs import ImageTransform, decode_image, json_member
from pmd.loaders.shards import RawSample, ShardStream, StreamOptions
from pmd.loaders.tokenizer import CLS, EOC, IMAGE, PAD, SEP, special_id


@dataclass(frozen=True)
class M3WConfig:
    """Flamingo's defaults: L = 256 tokens, N = 5 images, p_next = 1/2."""

    seq_len: int = 256
    max_images: int = 5
    p_next: float = 0.5

    def __post_init__(self) -> None:
        if self.seq_len < 1 or self.max_images < 0:
            raise ValueError(f"seq_len must be >= 1 and max_images >= 0, got {self.seq_len}, {self.max_images}")
        if not 0.0 <= self.p_next <= 1.0:
            raise ValueError(f"p_next must be in [0, 1], got {self.p_next}")


@dataclass(frozen=True)
class SpecialIds:
    bos: int
    eos: int
    eoc: int
    image: int
    pad: int = 0

    @classmethod
    def from_tokenizer(cls, tok: Tokenizer, *, bos: str = CLS, eos: str = SEP, eoc: str = EOC, image: str = IMAGE) -> "SpecialIds":
        return cls(special_id(tok, bos), special_id(tok, eos), special_id(tok, eoc), special_id(tok, image), special_id(tok, PAD))


@dataclass
class DocumentLayout:
    """A whole document's tokens; ``image_positions[j]`` is where document image ``j`` (0-based, in page
    order) has its ``<image>`` token."""

    ids: list[int]
    image_positions: list[int]


def document_layout(chunks: Sequence[Sequence[int] | None], special: SpecialIds) -> DocumentLayout:
    """Build the layout from per-element token ids: a list for a text element, None for an image."""
    ids = [special.bos]
    positions: list[int] = []
    for chunk in chunks:
        if chunk is None:
            if len(ids) > 1:
                ids.append(special.eoc)
            positions.append(len(ids))
            ids.append(special.image)
        else:
            ids.extend(chunk)
    ids.extend((special.eoc, special.eos))
    return DocumentLayout(ids, positions)


@dataclass
class M3WSample:
    input_ids: list[int]
    attention_mask: list[int]
    image_index: list[int]  # φ
    images: list[int]  # document image ordinals (0-based) of the kept images, in order
    use_next: bool
    start: int


def sample_m3w(
    layout: DocumentLayout, config: M3WConfig, rng: random.Random, *, pad_id: int = 0, start: int | None = None
) -> M3WSample:
    """One Flamingo training window of ``layout`` (module docstring). Draws ``start`` (unless given), then
    ``use_next = rng.random() < p_next`` — so p_next = 0 and 1 are deterministic."""
    total, length = len(layout.ids), config.seq_len
    if start is None:
        start = rng.randint(0, max(0, total - length))
    elif not 0 <= start <= max(0, total - 1):
        raise ValueError(f"start {start} outside the document's {total} tokens")
    use_next = rng.random() < config.p_next
    image_at = {pos: j for j, pos in enumerate(layout.image_positions)}
    ids: list[int] = []
    marks: list[int] = []  # k (1-based) at a kept image's token, else 0
    kept: list[int] = []
    for pos in range(start, min(start + length, total)):
        j = image_at.get(pos)
        if j is None:
            ids.append(layout.ids[pos])
            marks.append(0)
        elif len(kept) < config.max_images:
            kept.append(j)
            ids.append(layout.ids[pos])
            marks.append(len(kept))
        # else: an image beyond the first N: discarded, its <image> token removed
    phi = [0] * len(marks)
    if use_next:
        upcoming = 0
        for i in range(len(marks) - 1, -1, -1):
            upcoming = marks[i] or upcoming
            phi[i] = upcoming
    else:
        last = 0
        for i, m in enumerate(marks):
            last = m or last
            phi[i] = last
    pad = length - len(ids)
    return M3WSample(
        input_ids=ids + [pad_id] * pad,
        attention_mask=[1] * len(ids) + [0] * pad,
        image_index=phi + [0] * pad,
        images=kept,
        use_next=use_next,
        start=start,
    )


def parse_document(raw: RawSample) -> tuple[list[str | None], list[str | None]]:
    """``texts`` and ``images`` (member extensions) of an interleaved-build sample, validated."""
    doc = json_member(raw, required=True)
    texts, images = doc.get("texts"), doc.get("images")  # type: ignore[union-attr]
    if not isinstance(texts, list) or not isinstance(images, list) or len(texts) != len(images):
        raise CorruptSampleError("bad_json", "document needs aligned 'texts' and 'images' lists")
    for i, (t, im) in enumerate(zip(texts, images)):
        if (t is None) == (im is None) or (t is not None and not isinstance(t, str)) or (im is not None and not isinstance(im, str)):
            raise CorruptSampleError("bad_json", f"position {i}: exactly one of texts/images must be a string")
    return texts, images


def stack_images(tensors: list[torch.Tensor], n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``FloatTensor[n, 3, size, size]`` zero-padded, and ``BoolTensor[n]`` marking real images."""
    out = torch.zeros((n, 3, size, size), dtype=torch.float32)
    mask = torch.zeros(n, dtype=torch.bool)
    for i, t in enumerate(tensors[:n]):
        out[i] = t
        mask[i] = True
    return out, mask


def flamingo_tensors(s: Any, images: torch.Tensor, image_mask: torch.Tensor) -> dict[str, Any]:
    """The tensors of one Flamingo-style sample (M3W and mmc4 alike) from its sampled token ids."""
    return {
        "input_ids": torch.tensor(s.input_ids, dtype=torch.long),
        "attention_mask": torch.tensor(s.attention_mask, dtype=torch.long),
        "image_index": torch.tensor(s.image_index, dtype=torch.long),
        "images": images,
        "image_mask": image_mask,
    }


class DocumentDecoder:
    """What the interleaved-document decoders (M3W, mmc4) share: an untruncated, unpadded copy of the
    tokenizer (a whole document is tokenised, then cut), its special ids, the sampler config and the
    image transform; pickled with the tokenizer as JSON, so it travels to DataLoader workers."""

    def __init__(self, tokenizer: Tokenizer, config: Any, transform: ImageTransform) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.special = SpecialIds.from_tokenizer(self.tokenizer)
        self.config = config
        self.transform = transform

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "tokenizer": self.tokenizer.to_str()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.tokenizer = Tokenizer.from_str(state["tokenizer"])


class M3WDecoder(DocumentDecoder):
    """Interleaved-build sample -> Flamingo training sample (decodes only the kept images)."""

    config: M3WConfig

    def __call__(self, raw: RawSample, rng: random.Random) -> dict[str, Any]:
        texts, images = parse_document(raw)
        text_values = [t for t in texts if t is not None]
        encoded = iter(self.tokenizer.encode_batch(text_values, add_special_tokens=False)) if text_values else iter(())
        chunks = [None if t is None else next(encoded).ids for t in texts]
        layout = document_layout(chunks, self.special)
        s = sample_m3w(layout, self.config, rng, pad_id=self.special.pad)
        members = [m for m in images if m is not None]
        tensors = []
        for j in s.images:
            data = raw.members.get(members[j])
            if data is None:
                raise CorruptSampleError("missing_member", f"image member .{members[j]} (image {j}) is missing")
            tensors.append(decode_image(self.transform, data, rng))  # type: ignore[arg-type]
        image_tensor, image_mask = stack_images(tensors, self.config.max_images, self.transform.size)
        return {**flamingo_tensors(s, image_tensor, image_mask), "use_next": s.use_next, "key": raw.key}


def m3w_pipeline(
    urls: str | Path | Sequence[str | Path],
    *,
    tokenizer: Tokenizer,
    seq_len: int = 256,
    max_images: int = 5,
    p_next: float = 0.5,
    image_size: int = 224,
    **options: Unpack[StreamOptions],
) -> ShardStream:
    """Flamingo M3W samples from interleaved-build shards (``docs-NNNNNN.tar``), yielding
    ``{"input_ids": LongTensor[L], "attention_mask": LongTensor[L], "image_index": LongTensor[L] (φ),
    "images": FloatTensor[N, 3, S, S], "image_mask": BoolTensor[N], "use_next": bool, "key": str}``.
    The tokenizer needs ``[PAD] [CLS] [SEP] <EOC> <image>`` (:func:`pmd.loaders.train_wordpiece` has them).
    Stream options as :func:`pmd.loaders.pair_pipeline`."""
    config = M3WConfig(seq_len, max_images, p_next)
    return ShardStream(
        urls,
        decode=M3WDecoder(tokenizer, config, ImageTransform(image_size)),
        **options,
    )
