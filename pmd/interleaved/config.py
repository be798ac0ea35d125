"""Typed configuration of the interleaved build: inputs, filter profile + overrides, dedup, download, shards.

Filter thresholds come from a profile (``obelics`` — OBELICS' shipped config, arXiv 2306.16527 —
or ``m3w`` — Flamingo App. A.3.1) and can be overridden key by key under ``filter_overrides``;
unknown keys are errors naming the key, like every pmd config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from pmd.config import ConfigError, bounds, from_dict, schema


@dataclass(frozen=True)
class FilterConfig:
    """Node- and document-level thresholds; ``None`` disables a check."""

    # paragraphs (texts[i].split("\n\n"))
    para_min_words: int | None = 4
    para_max_words: int | None = 1000
    para_max_char_rep: float | None = 0.1
    para_max_word_rep: float | None = 0.1
    para_max_special_ratio: float | None = 0.3
    para_min_stopword_ratio: float | None = 0.3
    para_max_flagged_ratio: float | None = 0.01
    para_min_punct_ratio: float | None = 0.001
    para_punct_min_words: int = 12
    # documents (all kept texts)
    doc_min_words: int | None = 10
    doc_max_words: int | None = 2000
    doc_max_char_rep: float | None = 0.1
    doc_max_word_rep: float | None = 0.2
    doc_max_special_ratio: float | None = 0.275
    doc_min_stopword_ratio: float | None = 0.35
    doc_max_flagged_ratio: float | None = 0.01
    doc_min_punct_ratio: float | None = 0.03
    lang: str | None = "en"
    doc_min_lang_score: float | None = 0.8
    lang_max_chars: int | None = 2000  # fastText reads the first N characters (cost grows with length)
    # images
    image_formats: tuple[str, ...] | None = ("jpg", "jpeg", "png", "webp")
    image_min_side: int | None = 150
    image_max_side: int | None = 20000
    image_max_aspect: float | None = 2.0
    image_url_bans: tuple[str, ...] = ("logo", "button", "icon", "plugin", "widget", "porn", "xxx", "sex")
    drop_single_colour: bool = False
    min_images: int = 1
    max_images: int | None = 30
    require_text: bool = True


PROFILES: dict[str, dict[str, Any]] = {
    "obelics": {},
    # Flamingo M3W: English only, Gopher-like document heuristics, images >= 64 px, aspect <= 3,
    # single-colour images dropped, documents need an image; no paragraph-level filters.
    "m3w": {
        "para_min_words": None, "para_max_words": None, "para_max_char_rep": None, "para_max_word_rep": None,
        "para_max_special_ratio": None, "para_min_stopword_ratio": None, "para_max_flagged_ratio": None,
        "para_min_punct_ratio": None, "doc_max_words": 100000, "doc_min_punct_ratio": None,
        "image_formats": None, "image_min_side": 64, "image_max_side": None, "image_max_aspect": 3.0,
        "image_url_bans": (), "drop_single_colour": True, "min_images": 1, "max_images": None,
    },
}


@dataclass(frozen=True)
class DedupConfig:
    url: bool = True
    max_image_url_docs: int | None = field(default=10, metadata=bounds(ge=1))
    in_doc_images: bool = True
    image_set: bool = True
    domain_paragraph_min_count: int | None = field(default=3, metadata=bounds(ge=1))
    minhash: bool = True
    minhash_perms: int = field(default=64, metadata=bounds(ge=1))
    minhash_bands: int = field(default=16, metadata=bounds(ge=1))
    minhash_shingle: int = field(default=5, metadata=bounds(ge=1))
    minhash_threshold: float = field(default=0.8, metadata=bounds(ge=0.0, le=1.0))
    image_content: bool = True


@dataclass(frozen=True)
class ShardConfig:
    docs_per_shard: int = field(default=1000, metadata=bounds(ge=1))
    image_max_side: int = field(default=512, metadata=bounds(ge=1))
    jpeg_quality: int = field(default=90, metadata=bounds(ge=1, le=100))


@dataclass(frozen=True)
class ExtractBudgets:
    """Per-page limits of extraction (pmd.interleaved.extract): a page over one is dropped with the
    reason named here, so no page can take unbounded memory or time. ``None`` disables a limit."""

    max_page_bytes: int | None = field(default=8 << 20, metadata=bounds(ge=1))  # page_too_large
    max_dom_nodes: int | None = field(default=1_000_000, metadata=bounds(ge=1))  # dom_too_many_nodes
    max_dom_depth: int | None = field(default=1_000, metadata=bounds(ge=1))  # dom_too_deep
    max_seconds: float | None = field(default=10.0, metadata=bounds(gt=0))  # extract_timeout


@dataclass(frozen=True)
class InterleavedConfig:
    """``inputs``: WARC paths (globs allowed), or ``path@offset:length`` ranges; empty = the embedded sample."""

    inputs: tuple[str, ...] = ()
    profile: Literal["obelics", "m3w"] = "obelics"
    filter_overrides: dict[str, Any] = field(default_factory=dict)
    main_content: bool = True
    extract: ExtractBudgets = ExtractBudgets()
    dedup: DedupConfig = DedupConfig()
    shard: ShardConfig = ShardConfig()
    # pmd.download.DownloadConfig fields, checked at load (a misspelt key fails before any work)
    download: dict[str, Any] = field(default_factory=dict, metadata=schema("pmd.download:DownloadConfig"))
    partitions: int = field(default=4, metadata=bounds(ge=1))
    spark_master: str | None = None

    def filters(self) -> FilterConfig:
        return resolve_filters(self.profile, self.filter_overrides)


def resolve_filters(profile: str, overrides: dict[str, Any] | None = None) -> FilterConfig:
    """The profile's thresholds with ``overrides`` applied (strict: unknown keys raise ``ConfigError``)."""
    if profile not in PROFILES:
        raise ConfigError(f"profile: {profile!r} is not one of {sorted(PROFILES)}")
    base = dataclasses.asdict(FilterConfig())
    base.update(PROFILES[profile])
    merged = from_dict(FilterConfig, {k: (list(v) if isinstance(v, tuple) else v) for k, v in base.items()})
    if overrides:
        known = {f.name for f in dataclasses.fields(FilterConfig)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise ConfigError(f"unknown config key 'filter_overrides.{bad[0]}'; known keys: {', '.join(sorted(known))}")
        data = dataclasses.asdict(merged)
        data.update(overrides)
        merged = from_dict(FilterConfig, {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()},
                           "filter_overrides")
    return merged
