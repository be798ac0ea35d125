"""Configuration of the PMD corpus build (``pmd build --config``): frozen dataclasses, loaded strictly.

The download section is kept as a mapping here and validated at load by ``pmd.download``'s own
``DownloadConfig`` (``config_lib.schema``), so that this file never duplicates its fields and a
misspelt download key fails before any work. Ranges are field metadata (``config_lib.bounds``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pmd import config as config_lib
from pmd.config import bounds
from pmd.ids import stable_id

STAGES = ("ingest", "filter", "dedup", "download", "dedup_images", "shard")


@dataclass(frozen=True)
class SourceConfig:
    """One PMD source: its raw files, parser options and its filter rules."""

    paths: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    # language filter: keep captions whose fastText label is one of ``languages`` with score >= min_lang_score
    # (None = no language filter for this source, e.g. when the parser already applied one)
    languages: list[str] | None = None
    min_lang_score: float = field(default=0.0, metadata=bounds(ge=0.0, le=1.0))
    # caption length in whitespace words (inclusive bounds)
    min_words: int = field(default=1, metadata=bounds(ge=0))
    max_words: int | None = field(default=None, metadata=bounds(ge=1))


@dataclass(frozen=True)
class SparkConfig:
    """Where Spark runs. ``master`` None: spark-submit's master, else ``local[*]``."""

    master: str | None = None
    shuffle_partitions: int = field(default=4, metadata=bounds(ge=1))
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestConfig:
    # one Spark task per ~this many input bytes of a splittable file
    target_bytes: int = field(default=64 * 1024 * 1024, metadata=bounds(ge=1))
    # records per Arrow batch; at most a Parquet row group (1Mi rows), so a part's row groups are its batches
    batch_size: int = field(default=4096, metadata=bounds(ge=1, le=1 << 20))


@dataclass(frozen=True)
class DedupConfig:
    exact: bool = True
    # order that decides which duplicate survives; sources not listed come after, by name
    source_priority: list[str] = field(default_factory=list)
    # Karpathy caption_datasets dataset_coco.json: drop VG / LN-COCO images in its val+test splits
    karpathy_file: str | None = None
    karpathy_sources: list[str] = field(default_factory=lambda: ["visual_genome", "localized_narratives__coco"])


@dataclass(frozen=True)
class ImageDedupConfig:
    method: Literal["sha256", "dhash"] = "sha256"
    max_distance: int = field(default=0, metadata=bounds(ge=0, le=64))  # dhash: Hamming distance still counted as the same image


@dataclass(frozen=True)
class ShardConfig:
    samples_per_shard: int = field(default=1000, metadata=bounds(ge=1))
    prefix: str = "pairs"


@dataclass(frozen=True)
class BuildConfig:
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    base_dir: str | None = None  # relative source paths resolve here (default: the config file's folder)
    spark: SparkConfig = field(default_factory=SparkConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    download: dict[str, Any] = field(default_factory=dict,  # pmd.download.DownloadConfig fields
                                     metadata=config_lib.schema("pmd.download:DownloadConfig"))
    dedup_images: ImageDedupConfig = field(default_factory=ImageDedupConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    progress_interval: float = field(default=5.0, metadata=bounds(gt=0))

    def enabled_sources(self) -> dict[str, SourceConfig]:
        return {n: s for n, s in sorted(self.sources.items()) if s.enabled}

    def priority(self) -> dict[str, int]:
        """Source → rank for dedup winners: listed sources first, then the rest by name."""
        order = list(self.dedup.source_priority) + sorted(set(self.sources) - set(self.dedup.source_priority))
        return {name: i for i, name in enumerate(order)}


def resolve_path(p: str, base_dir: str | None) -> str:
    """Absolute local path or fsspec URL; relative paths are taken from ``base_dir``."""
    if "://" in p or base_dir is None or Path(p).is_absolute():
        return p
    if "://" in base_dir:
        return base_dir.rstrip("/") + "/" + p
    return str(Path(base_dir) / p)


def load_build_config(source: str | Path | dict[str, Any] | None, overrides: dict[str, Any] | None = None) -> BuildConfig:
    """Load a ``BuildConfig``; a file's folder becomes ``base_dir`` unless the file sets one."""
    cfg = config_lib.load(BuildConfig, source, overrides)
    if cfg.base_dir is None and isinstance(source, (str, Path)):
        cfg = replace(cfg, base_dir=str(config_lib.resolve_config_path(source).resolve().parent))
    return cfg


def stage_fingerprint(cfg: BuildConfig, stage: str) -> str:
    """Hash of the config parts a stage (and every stage before it) depends on: a rerun with a
    different value redoes that stage and everything after it."""
    d = config_lib.to_dict(cfg)
    parts: list[Any] = [d["sources"], d["base_dir"], d["ingest"]]
    idx = STAGES.index(stage)
    if idx >= 1:
        parts.append("filter")
    if idx >= 2:
        parts.append(d["dedup"])
    if idx >= 3:
        parts.append(d["download"])
    if idx >= 4:
        parts.append(d["dedup_images"])
    if idx >= 5:
        parts.append(d["shard"])
    import json

    return stable_id(stage, json.dumps(parts, sort_keys=True, default=str), length=32)
