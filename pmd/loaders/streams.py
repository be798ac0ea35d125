"""The unimodal streams FLAVA trains on, their mixture, and a collate function.

* ``image_pipeline``: images only — the images of pair shards or of any WebDataset image shards.
* ``text_pipeline``: text only — the captions of pair shards, or any corpus given as text files
  (``.txt``/``.txt.gz``, one text per non-empty line), JSON lines (``.jsonl``/``.jsonl.gz``, a field) or
  Parquet (a column). With fewer files than consumers, each consumer reads every file and keeps every
  ``consumers``-th record (so one big text file still splits across ranks and workers).
* ``mixture``: FLAVA samples one dataset per iteration — round-robin, or at random with ``weights`` — and
  trains on a whole batch of it. With ``batch_size`` set, the mixture yields collated batches tagged
  ``"stream": name`` (use ``DataLoader(mix, batch_size=None)``); without, single samples tagged the same.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import random
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, Unpack

import torch
from tokenizers import Tokenizer
from torch.utils.data import IterableDataset

from pmd.errors import UserError
from pmd.loaders.errors import CorruptSampleError
from pmd.loaders.pairs import ImageTransform, TextEncoder, decode_image, image_member, json_member, text_member
from pmd.loaders.shards import RawSample, ShardStream, StreamOptions, consumer_info, iter_tar, open_url, rng_for

TEXT_SUFFIXES = (".txt", ".txt.gz")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz")


class ImageDecoder:
    def __init__(self, transform: ImageTransform) -> None:
        self.transform = transform

    def __call__(self, raw: RawSample, rng: random.Random) -> dict[str, Any]:
        return {"image": decode_image(self.transform, image_member(raw), rng), "key": raw.key}


class TextDecoder:
    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder

    def __call__(self, raw: RawSample, rng: random.Random) -> dict[str, Any]:
        text = text_member(raw, json_member(raw) if "txt" not in raw.members else None)
        ids, mask = self.encoder(text)
        return {"input_ids": ids, "attention_mask": mask, "key": raw.key, "text": text}


def image_pipeline(
    urls: str | Path | Sequence[str | Path],
    *,
    image_size: int = 224,
    random_crop: bool = False,
    hflip: bool = False,
    normalize: bool = True,
    **options: Unpack[StreamOptions],
) -> ShardStream:
    """Images only, yielding ``{"image": FloatTensor[3, S, S], "key": str}`` from any WebDataset shards
    with an image member (pair shards included; their captions are not decoded). Options as
    :func:`pmd.loaders.pair_pipeline`."""
    return ShardStream(
        urls,
        decode=ImageDecoder(ImageTransform(image_size, random_crop=random_crop, hflip=hflip, normalize=normalize)),
        **options,
    )


def _open_text(url: str) -> io.TextIOBase:
    raw = open_url(url)
    if url.endswith(".gz"):
        raw = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict")


class CorpusReader:
    """Reads one text-corpus file into RawSamples ``{"txt": text}`` keyed ``<file stem>:<record index>``."""

    def __init__(self, field: str = "text") -> None:
        self.field = field

    def __call__(self, url: str) -> Iterator[RawSample]:
        stem = posixpath.basename(url).split(".")[0]
        if url.endswith(TAR_SUFFIXES):
            yield from iter_tar(url)
        elif url.endswith(PARQUET_SUFFIXES):
            yield from self._parquet(url, stem)
        elif url.endswith(JSONL_SUFFIXES):
            with _open_text(url) as f:
                for i, line in enumerate(f):
                    if not line.strip():
                        continue
                    try:
                        value = json.loads(line).get(self.field)
                    except (ValueError, AttributeError):
                        value = None
                    if not isinstance(value, str):
                        # a record index the decoder will reject (counted, warned)
                        yield RawSample(f"{stem}:{i}", url, {"__bad__": f"line {i + 1}: no string field {self.field!r}"})
                        continue
                    yield RawSample(f"{stem}:{i}", url, {"txt": value})
        else:
            with _open_text(url) as f:
                for i, line in enumerate(f):
                    line = line.rstrip("\n")
                    if line.strip():
                        yield RawSample(f"{stem}:{i}", url, {"txt": line})

    def _parquet(self, url: str, stem: str) -> Iterator[RawSample]:
        import pyarrow.parquet as pq

        with open_url(url) as f:
            pf = pq.ParquetFile(f)
            if self.field not in pf.schema_arrow.names:
                raise CorruptSampleError("shard", f"no column {self.field!r} (has {pf.schema_arrow.names})")
            i = 0
            for batch in pf.iter_batches(columns=[self.field], batch_size=4096):
                for value in batch.column(0).to_pylist():
                    if isinstance(value, str) and value.strip():
                        yield RawSample(f"{stem}:{i}", url, {"txt": value})
                    else:
                        yield RawSample(f"{stem}:{i}", url, {"__bad__": f"row {i}: {self.field!r} is not a non-empty string"})
                    i += 1


class CorpusDecoder(TextDecoder):
    def __call__(self, raw: RawSample, rng: random.Random) -> dict[str, Any]:
        if "__bad__" in raw.members:
            raise CorruptSampleError("bad_text", str(raw.members["__bad__"]))
        return super().__call__(raw, rng)


class TextStream(ShardStream):
    allow_record_split = True


def text_pipeline(
    source: str | Path | Sequence[str | Path],
    *,
    tokenizer: Tokenizer,
    max_text_len: int = 77,
    field: str = "text",
    **options: Unpack[StreamOptions],
) -> ShardStream:
    """Text only, yielding ``{"input_ids": LongTensor[L], "attention_mask": LongTensor[L], "key": str,
    "text": str}``: the captions of pair shards (``.txt``, else the JSON's ``text``), or a text corpus
    (``.txt``/``.jsonl``/``.parquet`` files; ``field`` names the JSON field / Parquet column)."""
    return TextStream(
        source,
        decode=CorpusDecoder(TextEncoder(tokenizer, max_text_len)),
        reader=CorpusReader(field),
        **options,
    )


def collate(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack tensors, turn numbers and bools into tensors, keep anything else (keys, texts) as lists."""
    if not samples:
        raise ValueError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for name in samples[0]:
        values = [s[name] for s in samples]
        first = values[0]
        if isinstance(first, torch.Tensor):
            out[name] = torch.stack(values)
        elif isinstance(first, bool):
            out[name] = torch.tensor(values, dtype=torch.bool)
        elif isinstance(first, (int, float)):
            out[name] = torch.tensor(values)
        else:
            out[name] = values
    return out


class Mixture(IterableDataset):
    """Several streams, one chosen per step (round-robin, or weighted at random), FLAVA-style.

    Mix ``streams`` per iteration: round-robin when ``weights`` is None, else a seeded weighted draw.
    ``batch_size`` set: each step draws a whole batch from one stream and yields it collated, with
    ``"stream"`` = its name (``DataLoader(mix, batch_size=None, num_workers=k)``). Otherwise each step
    yields one sample with ``"stream"`` added. The mixture ends when a stream runs out, unless
    ``restart`` (then that stream starts its next iteration, so the mixture runs until the caller stops).
    """

    def __init__(
        self,
        streams: Mapping[str, Iterable[dict[str, Any]]] | Sequence[Iterable[dict[str, Any]]],
        weights: Sequence[float] | None = None,
        *,
        batch_size: int | None = None,
        collate_fn: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]] = collate,
        seed: int = 0,
        restart: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(streams, Mapping):
            self.names, self.streams = list(streams), list(streams.values())
        else:
            self.streams = list(streams)
            self.names = [f"stream{i}" for i in range(len(self.streams))]
        if not self.streams:
            raise UserError("mixture needs at least one stream")
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(self.streams) or any(w < 0 for w in weights) or sum(weights) <= 0:
                raise UserError(f"weights must be {len(self.streams)} non-negative numbers with a positive sum, got {weights}")
        self.weights = weights
        if batch_size is not None and batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self.collate_fn = collate_fn
        self.seed = int(seed)
        self.restart = restart
        self._epoch = -1
        self._iterations = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch here and on every stream that has ``set_epoch``."""
        self._epoch = int(epoch)
        for s in self.streams:
            if hasattr(s, "set_epoch"):
                s.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = consumer_info()
        epoch = self._epoch if self._epoch >= 0 else self._iterations
        self._iterations += 1
        rng = rng_for("mixture", self.seed, epoch, info.rank, info.worker)
        iters = [iter(s) for s in self.streams]
        step = 0
        while True:
            if self.weights is None:
                i = step % len(iters)
            else:
                i = rng.choices(range(len(iters)), weights=self.weights)[0]
            step += 1
            items = self._take(i, iters)
            if items is None:
                return
            if self.batch_size is None:
                yield {**items[0], "stream": self.names[i]}
            else:
                batch = self.collate_fn(items)
                batch["stream"] = self.names[i]
                yield batch

    def _take(self, i: int, iters: list[Iterator[dict[str, Any]]]) -> list[dict[str, Any]] | None:
        n = self.batch_size or 1
        items: list[dict[str, Any]] = []
        restarted = False
        while len(items) < n:
            try:
                items.append(next(iters[i]))
            except StopIteration:
                if not self.restart or restarted:
                    return None  # a stream ran out: the mixture's epoch ends (a partial batch is dropped)
                iters[i] = iter(self.streams[i])
                restarted = True
        return items


#: ``mixture(streams, weights=None, *, batch_size=None, collate_fn=collate, seed=0, restart=False)``:
#: the factory name of :class:`Mixture` (webdataset style), the same callable.
mixture = Mixture
