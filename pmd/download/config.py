"""``DownloadConfig``: how images are fetched, stored, and bounded.

One frozen dataclass shared by URL downloads (img2dataset), local images and crops, so every source
comes out resized and encoded the same way. The budgets (``max_image_area``, ``max_response_bytes``,
``download_deadline``) exist because a corpus is fetched from strangers' servers: a decompression
bomb, a 300 MB body or a server trickling one byte per read must cost a bounded amount of memory and
time and end as a counted error class, never as an OOM-killed executor or a stuck task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pmd.download.guard import UrlPolicy


@dataclass(frozen=True)
class DownloadConfig:
    """How images are fetched and stored. Defaults follow PMD/FLAVA practice: 256 px short side,
    never upscaled, JPEG q90, an honest User-Agent, and opt-out headers (``noai``...) respected.

    ``samples_per_shard`` is img2dataset's unit of work (one Spark task each); ``thread_count``
    threads download inside each task. ``processes_count`` only matters if img2dataset had to make
    its own session, which ``download_urls`` prevents. ``allow_loopback``/``allow_private`` open the
    guard for tests and on-prem mirrors; metadata endpoints stay refused.

    Budgets, each ending as its own error class when hit: ``max_image_area`` pixels (w*h, read from
    the image header before anything is decoded: ``image_too_large``), ``max_response_bytes`` per
    response body (reading stops at the cap: ``response_too_large``), and ``download_deadline``
    seconds for one whole fetch attempt - connect, redirects, headers and body - where ``timeout``
    bounds each single socket operation only (``download_deadline``).
    """

    image_size: int = 256
    resize_mode: Literal["keep_ratio", "center_crop", "no"] = "keep_ratio"
    resize_only_if_bigger: bool = True
    encode_format: Literal["jpg"] = "jpg"
    encode_quality: int = 90
    timeout: int = 10
    retries: int = 1
    thread_count: int = 32
    processes_count: int = 2
    user_agent_token: str = "pmd (+https://github.com/pmd-data/pmd)"
    disallowed_header_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    allow_loopback: bool = False
    allow_private: bool = False
    samples_per_shard: int = 10000
    min_image_size: int = 0
    max_aspect_ratio: float = math.inf
    max_image_area: int = 100_000_000
    max_response_bytes: int = 32 * 1024 * 1024
    download_deadline: float = 60.0
    subjob_size: int = 1000
    max_shard_retry: int = 1
    keep_raw: bool = False

    def __post_init__(self) -> None:
        if self.image_size <= 0:
            raise ValueError(f"image_size must be > 0, got {self.image_size}")
        if not 1 <= self.encode_quality <= 100:
            raise ValueError(f"encode_quality must be in [1, 100], got {self.encode_quality}")
        if self.samples_per_shard <= 0 or self.thread_count <= 0 or self.timeout <= 0:
            raise ValueError("samples_per_shard, thread_count and timeout must be > 0")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.max_image_area <= 0:
            raise ValueError(f"max_image_area must be > 0 pixels, got {self.max_image_area}")
        if self.max_response_bytes <= 0:
            raise ValueError(f"max_response_bytes must be > 0, got {self.max_response_bytes}")
        if not self.download_deadline > 0:
            raise ValueError(f"download_deadline must be > 0 seconds, got {self.download_deadline}")

    @property
    def policy(self) -> UrlPolicy:
        return UrlPolicy(allow_loopback=self.allow_loopback, allow_private=self.allow_private)

    @property
    def robots_token(self) -> str:
        """The product token matched against ``X-Robots-Tag: <token>: noai`` (first word, lower case)."""
        return (self.user_agent_token.split() or ["pmd"])[0].lower()

    @property
    def user_agent(self) -> str:
        """The User-Agent sent with every request: names the project and how to reach it."""
        return f"Mozilla/5.0 (compatible; {self.user_agent_token}; img2dataset)"

    @property
    def fetch_budget(self) -> "FetchBudget":
        return FetchBudget(max_bytes=self.max_response_bytes, deadline_s=float(self.download_deadline))


@dataclass(frozen=True)
class FetchBudget:
    """What one fetch attempt may cost: body bytes and wall-clock seconds (connect to last byte)."""

    max_bytes: int = 32 * 1024 * 1024
    deadline_s: float = 60.0
