"""OpenFlamingo-compatible samples from mmc4-style documents (``open_flamingo/train/data.py``).

Input: WebDataset shards whose ``{key}.json`` is an mmc4 document — ``text_list`` (sentences),
``image_info`` (one dict per image) and ``similarity_matrix`` (images × sentences, CLIP scores as mmc4
ships them). An image's bytes come from ``image_info[i]["image_base64"]`` (OpenFlamingo's shards) or
from the member ``{key}.<image_info[i]["member"]>`` (e.g. ``"000.jpg"``, our tar layout).

Steps, as OpenFlamingo does them:

1. keep images that have bytes and are larger than ``min_image_kb`` (``len(bytes) // 1000 > 10``);
2. one-to-one image↔sentence assignment by ``scipy.optimize.linear_sum_assignment`` on ``-similarity``;
   drop pairs whose similarity is below ``sim_threshold`` (0.24 as in OpenFlamingo's README — its argparse
   default of 30 would drop every image on mmc4's cosine scale);
3. keep the first ``max_images`` = 6 assigned images (document order);
4. text: each matched sentence is prefixed with ``<|endofchunk|><image>``, sentences are concatenated, the
   first ``<|endofchunk|>`` is removed, ``<|endofchunk|><EOS>`` is appended; tokenised, right-truncated
   and padded to ``seq_len`` = 256;
5. reject (counted as ``filtered``): fewer than ``min_images`` ``<image>`` tokens after truncation; one
   image and ``rng.random() <= drop_single_image_p`` (0.5); one image whose ``<image>`` is the last token.

Our tokenizer's ``<EOC>`` plays ``<|endofchunk|>`` and ``[CLS]``/``[SEP]`` play BOS/EOS. φ
(``image_index``) is OpenFlamingo's ``media_locations.cumsum()`` — each token sees the immediately
preceding image (an ``<image>`` token its own) — with no p_next choice.

Differences from OpenFlamingo, on purpose:

* images are ordered by the position of their ``<image>`` token, so image k is the one φ = k points at;
  OpenFlamingo keeps them in document order, which mismatches text and image whenever two assignments
  cross (image 0 → sentence 5, image 1 → sentence 2);
* images whose ``<image>`` token was truncated away are dropped (``image_mask`` false) instead of being
  kept in the tensor where no token can attend to them;
* an undecodable image is a counted, warned corrupt sample (OpenFlamingo's handler drops it silently);
* images are transformed with :class:`pmd.loaders.ImageTransform`, not a CLIP processor.

Unlike Flamingo's M3W sampler (:mod:`pmd.loaders.m3w`) there is no random window (the document start is
always kept), images are placed by similarity not DOM position, at most 6 not 5, and no next-image φ.
"""

from __future__ import annotations

import base64
import binascii
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Unpack

import numpy as np
from tokenizers import Tokenizer

from pmd.loaders.errors import CorruptSampleError, SkipSample
from pmd.loaders.m3w import DocumentDecoder, SpecialIds, flamingo_tensors, stack_images
from pmd.loaders.pairs import ImageTransform, decode_image, json_member
from pmd.loaders.shards import RawSample, ShardStream, StreamOptions


@dataclass(frozen=True)
class MMC4Config:
    seq_len: int = 256
    max_images: int = 6
    min_images: int = 1
    sim_threshold: float = 0.24
    min_image_kb: int | None = 10
    drop_single_image_p: float = 0.5


@dataclass
class MMC4Sample:
    input_ids: list[int]
    attention_mask: list[int]
    image_index: list[int]
    images: list[int]  # image_info indices, in <image>-token order


def assign_images(similarity: np.ndarray, valid: Sequence[int], threshold: float) -> list[tuple[int, int]]:
    """(image index, sentence index) pairs of a one-to-one max-similarity assignment over the ``valid``
    image rows, with pairs below ``threshold`` dropped; in image order."""
    if not valid or similarity.size == 0:
        return []
    from scipy.optimize import linear_sum_assignment  # scipy only for the mmc4 mode

    sub = similarity[list(valid)]
    rows, cols = linear_sum_assignment(-sub)
    return [(valid[r], int(c)) for r, c in zip(rows, cols) if sub[r, c] >= threshold]


def preprocess_mmc4(
    sentences: Sequence[Sequence[int]],
    assignment: Sequence[tuple[int, int]],
    config: MMC4Config,
    special: SpecialIds,
    rng: random.Random,
) -> MMC4Sample:
    """Token layout of one mmc4 document from tokenised sentences and the image→sentence assignment.
    Raises :class:`SkipSample` for OpenFlamingo's rejection rules."""
    kept = list(assignment)[: config.max_images]
    image_of = {sent: img for img, sent in kept}
    ids: list[int] = [special.bos]
    order: list[int] = []
    first_eoc_removed = False
    for s, tokens in enumerate(sentences):
        if s in image_of:
            if first_eoc_removed:
                ids.append(special.eoc)
            first_eoc_removed = True
            ids.append(special.image)
            order.append(image_of[s])
        ids.extend(tokens)
    if first_eoc_removed:
        ids.append(special.eoc)
    else:  # no image at all: the appended <|endofchunk|> is the first one, and is removed
        first_eoc_removed = True
    ids.append(special.eos)
    ids = ids[: config.seq_len]
    n_images = ids.count(special.image)
    if n_images < config.min_images:
        raise SkipSample(f"{n_images} image(s) after truncation, fewer than {config.min_images}")
    if n_images == 1 and rng.random() <= config.drop_single_image_p:
        raise SkipSample("single-image sample dropped (p = drop_single_image_p)")
    if n_images == 1 and len(ids) == config.seq_len and ids[-1] == special.image:
        raise SkipSample("the only <image> is the last token")
    marks = []
    k = 0
    for t in ids:
        if t == special.image:
            k += 1
        marks.append(k)
    pad = config.seq_len - len(ids)
    return MMC4Sample(
        input_ids=ids + [special.pad] * pad,
        attention_mask=[1] * len(ids) + [0] * pad,
        image_index=marks + [0] * pad,
        images=order[:n_images],
    )


class MMC4Decoder(DocumentDecoder):
    """mmc4 / interleaved-build sample -> OpenFlamingo training sample."""

    config: MMC4Config

    def _image_bytes(self, raw: RawSample, info: Any) -> bytes | None:
        if not isinstance(info, dict):
            return None
        if isinstance(info.get("image_base64"), str):
            try:
                return base64.b64decode(info["image_base64"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise CorruptSampleError("bad_image", f"image_base64 of {info.get('image_name')!r} is not base64: {exc}") from exc
        member = info.get("member")
        data = raw.members.get(member) if isinstance(member, str) else None
        return data if isinstance(data, bytes) else None

    def __call__(self, raw: RawSample, rng: random.Random) -> dict[str, Any]:
        doc = json_member(raw, required=True)
        sentences, infos, sim = doc.get("text_list"), doc.get("image_info"), doc.get("similarity_matrix")  # type: ignore[union-attr]
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences) or not isinstance(infos, list):
            raise CorruptSampleError("bad_json", "mmc4 document needs 'text_list' (strings) and 'image_info' (list)")
        try:
            similarity = np.asarray(sim if sim is not None else [], dtype=np.float64).reshape(len(infos), len(sentences))
        except ValueError as exc:
            raise CorruptSampleError("bad_json", f"similarity_matrix is not {len(infos)} x {len(sentences)}: {exc}") from exc
        data: dict[int, bytes] = {}
        for i, info in enumerate(infos):
            b = self._image_bytes(raw, info)
            if b is None:
                continue  # missing image (404 at download time): skipped, as OpenFlamingo does
            if self.config.min_image_kb is not None and len(b) // 1000 <= self.config.min_image_kb:
                continue
            data[i] = b
        assignment = assign_images(similarity, sorted(data), self.config.sim_threshold)
        encoded = self.tokenizer.encode_batch(sentences, add_special_tokens=False) if sentences else []
        s = preprocess_mmc4([e.ids for e in encoded], assignment, self.config, self.special, rng)
        tensors = [decode_image(self.transform, data[i], rng) for i in s.images]
        images, mask = stack_images(tensors, self.config.max_images, self.transform.size)
        return {**flamingo_tensors(s, images, mask), "key": raw.key}


def mmc4_pipeline(
    urls: str | Path | Sequence[str | Path],
    *,
    tokenizer: Tokenizer,
    config: MMC4Config = MMC4Config(),
    image_size: int = 224,
    **options: Unpack[StreamOptions],
) -> ShardStream:
    """OpenFlamingo-style samples from mmc4-style shards, yielding ``{"input_ids", "attention_mask",
    "image_index" (φ), "images": FloatTensor[6, 3, S, S], "image_mask", "key"}``. Rejected documents are
    counted in ``stream.errors`` as ``filtered``."""
    return ShardStream(
        urls,
        decode=MMC4Decoder(tokenizer, config, ImageTransform(image_size)),
        **options,
    )
