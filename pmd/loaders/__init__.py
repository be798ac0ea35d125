"""Streaming loaders for PMD pair shards, unimodal streams, and interleaved (M3W / mmc4) documents.

Public API (all return ``torch.utils.data.IterableDataset``s that split by node and DataLoader worker):

* ``pair_pipeline(urls, *, tokenizer, image_size=224, max_text_len=77, shuffle=True, shuffle_buffer=1000,
  resampled=False, seed=0, epoch_length=None, on_error="warn", verify="samples", normalize=True)`` — FLAVA image-text pairs
  ``{"image", "input_ids", "attention_mask", "key", "text"}``; ``.set_epoch(e)``, ``.with_epoch(n)``,
  ``.errors`` (skipped-sample counts, also from DataLoader workers).
* ``image_pipeline(urls, ...)`` / ``text_pipeline(source, *, tokenizer, ...)`` — unimodal streams.
* ``mixture(streams, weights=None, *, batch_size=None, ...)`` — round-robin / weighted per iteration.
* ``collate(samples)`` — stack tensors, keep strings as lists.
* ``m3w_pipeline(urls, *, tokenizer, ...)`` — Flamingo M3W samples from interleaved builds
  (:mod:`pmd.loaders.m3w`); ``mmc4_pipeline`` — OpenFlamingo-style mmc4 samples (:mod:`pmd.loaders.openflamingo`).
* ``train_wordpiece`` / ``load_tokenizer`` / ``save_tokenizer`` — the shared WordPiece tokenizer.
* ``expand_shards``, ``register_fsspec_opener`` — shard URLs (local, braces, fsspec, build directories).
* ``read_pairs_table`` / ``read_interleaved_table`` / ``iter_parquet_rows`` — the Parquet sidecars.
* ``ErrorCounts``, ``CorruptSampleWarning``, ``CorruptSampleError`` — the corrupt-sample policy.

Shards a build's manifest lists are checked against it as they are read (``verify=``; a missing,
empty or short shard is a counted ``shard`` error). Importing this package changes no global state
(WebDataset's ``gopen`` table is left alone; call ``register_fsspec_opener()`` to use fsspec URLs with
``wds.WebDataset`` itself) and never imports pyspark.
"""

from pmd.loaders.errors import KINDS as ERROR_KINDS
from pmd.loaders.errors import CorruptSampleError, CorruptSampleWarning, ErrorCounts
from pmd.loaders.m3w import M3WConfig, m3w_pipeline, sample_m3w
from pmd.loaders.openflamingo import MMC4Config, mmc4_pipeline, preprocess_mmc4
from pmd.loaders.pairs import ImageTransform, TextEncoder, normalize_images, pair_pipeline
from pmd.loaders.parquet import iter_parquet_rows, parquet_files, read_interleaved_table, read_pairs_table
from pmd.loaders.shards import (
    ConsumerInfo,
    NotEnoughShardsError,
    ShardStream,
    consumer_info,
    expand_shard_entries,
    expand_shards,
    register_fsspec_opener,
)
from pmd.loaders.streams import Mixture, collate, image_pipeline, mixture, text_pipeline
from pmd.loaders.tokenizer import SPECIAL_TOKENS, load_tokenizer, train_wordpiece
from pmd.loaders.tokenizer import save as save_tokenizer

__all__ = [
    "ERROR_KINDS",
    "SPECIAL_TOKENS",
    "ConsumerInfo",
    "CorruptSampleError",
    "CorruptSampleWarning",
    "ErrorCounts",
    "ImageTransform",
    "M3WConfig",
    "MMC4Config",
    "Mixture",
    "NotEnoughShardsError",
    "ShardStream",
    "TextEncoder",
    "collate",
    "consumer_info",
    "expand_shard_entries",
    "expand_shards",
    "image_pipeline",
    "iter_parquet_rows",
    "load_tokenizer",
    "m3w_pipeline",
    "mixture",
    "mmc4_pipeline",
    "normalize_images",
    "pair_pipeline",
    "parquet_files",
    "preprocess_mmc4",
    "read_interleaved_table",
    "read_pairs_table",
    "register_fsspec_opener",
    "sample_m3w",
    "save_tokenizer",
    "text_pipeline",
    "train_wordpiece",
]
