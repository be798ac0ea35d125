"""The record model shared by every stage: image references, image-text pairs, interleaved documents.

Records are plain dataclasses so that pure functions can build and test them without Spark;
``to_row``/``from_row`` convert to the flat rows of ``schemas/pair.json`` and
``schemas/interleaved_document.json`` for Arrow and Parquet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pmd.ids import stable_id


@dataclass(frozen=True, slots=True)
class Crop:
    """A region of an image in pixels: left ``x``, top ``y``, ``width``, ``height`` (Visual Genome's convention)."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"crop must have positive size, got {self.width}x{self.height}")
        if self.x < 0 or self.y < 0:
            raise ValueError(f"crop origin must be >= 0, got ({self.x}, {self.y})")

    def box(self) -> tuple[int, int, int, int]:
        """PIL's ``(left, upper, right, lower)`` box."""
        return (self.x, self.y, self.x + self.width, self.y + self.height)


@dataclass(frozen=True, slots=True)
class ImageRef:
    """Where an image comes from: a URL to download or a local path (optionally ``archive.zip::member``),
    plus an optional crop. Exactly one of ``url`` and ``path`` is set, as in PMD's ``image_url``/``image``."""

    url: str | None = None
    path: str | None = None
    crop: Crop | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.path is None):
            raise ValueError("ImageRef needs exactly one of url or path")

    @property
    def location(self) -> str:
        return self.url if self.url is not None else self.path  # type: ignore[return-value]

    def key(self) -> str:
        """Id of the image itself (location + crop): captions of one image share it."""
        c = self.crop
        return stable_id("img", self.location, *(c.box() if c else ()))


@dataclass(slots=True)
class PairRecord:
    """One image-text pair: one row per caption, as PMD ships it."""

    source: str
    text: str
    image: ImageRef
    meta: dict[str, Any] = field(default_factory=dict)
    lang: str | None = None
    lang_score: float | None = None
    input_file: str | None = None
    input_line: int | None = None

    @property
    def id(self) -> str:
        """Deterministic: the same source, image and caption always give the same key."""
        return stable_id("pair", self.source, self.image.key(), self.text)

    def to_row(self) -> dict[str, Any]:
        c = self.image.crop
        return {
            "id": self.id,
            "source": self.source,
            "text": self.text,
            "image_url": self.image.url,
            "image_path": self.image.path,
            "crop_x": c.x if c else None,
            "crop_y": c.y if c else None,
            "crop_width": c.width if c else None,
            "crop_height": c.height if c else None,
            "image_key": self.image.key(),
            "meta": json.dumps(self.meta, ensure_ascii=False, sort_keys=True),
            "lang": self.lang,
            "lang_score": self.lang_score,
            "input_file": self.input_file,
            "input_line": self.input_line,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "PairRecord":
        crop = None
        if row.get("crop_width") is not None:
            crop = Crop(int(row["crop_x"]), int(row["crop_y"]), int(row["crop_width"]), int(row["crop_height"]))
        meta = row.get("meta") or "{}"
        return cls(
            source=row["source"],
            text=row["text"],
            image=ImageRef(url=row.get("image_url"), path=row.get("image_path"), crop=crop),
            meta=json.loads(meta) if isinstance(meta, str) else dict(meta),
            lang=row.get("lang"),
            lang_score=row.get("lang_score"),
            input_file=row.get("input_file"),
            input_line=row.get("input_line"),
        )


@dataclass(slots=True)
class InterleavedDocument:
    """A web page as text and images in page order (OBELICS layout).

    ``texts`` and ``images`` are aligned: at every position exactly one of them is not None.
    ``metadata`` holds one dict per position (image alt text, declared sizes, ...);
    ``general_metadata`` holds page provenance (url, WARC file, offset, length, record id, date).
    """

    url: str
    texts: list[str | None]
    images: list[str | None]
    metadata: list[dict[str, Any] | None] = field(default_factory=list)
    general_metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.images):
            raise ValueError(f"texts ({len(self.texts)}) and images ({len(self.images)}) must be aligned")
        for i, (t, im) in enumerate(zip(self.texts, self.images)):
            if (t is None) == (im is None):
                raise ValueError(f"position {i}: exactly one of text and image must be set")
        if not self.metadata:
            self.metadata = [None] * len(self.texts)
        elif len(self.metadata) != len(self.texts):
            raise ValueError("metadata must have one entry per position")

    @property
    def id(self) -> str:
        crawl = self.general_metadata.get("warc_record_id") or self.general_metadata.get("date") or ""
        return stable_id("doc", self.url, crawl)

    @property
    def image_urls(self) -> list[str]:
        return [u for u in self.images if u is not None]

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "texts": list(self.texts),
            "images": list(self.images),
            "metadata": json.dumps(self.metadata, ensure_ascii=False),
            "general_metadata": json.dumps(self.general_metadata, ensure_ascii=False, sort_keys=True),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "InterleavedDocument":
        md = row.get("metadata")
        gm = row.get("general_metadata")
        return cls(
            url=row["url"],
            texts=list(row["texts"]),
            images=list(row["images"]),
            metadata=json.loads(md) if isinstance(md, str) else list(md or []),
            general_metadata=json.loads(gm) if isinstance(gm, str) else dict(gm or {}),
        )
