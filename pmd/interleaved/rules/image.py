"""Image rules: the URL, the declared or decoded size, the pixels.

Before download only the URL and the page's declared sizes (``rendered_width``/``rendered_height``
in the image position's metadata) are known; after download the decoded size and pixels are
(``original_width``/``original_height``, ``single_colour``). Each rule reads one of these; a size rule
is tried on every known size in turn (declared first), each size against all size rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pmd.interleaved.config import FilterConfig
from pmd.interleaved.rules.base import Rule, enabled

#: Extensions that name an image format; a URL with another (or none) is decided after download.
KNOWN_IMAGE_EXTS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "svg", "bmp", "tif", "tiff", "ico", "avif", "heic"})


@dataclass(frozen=True)
class ImageFacts:
    """What is known of one image: its URL, format (URL extension or decoded), sizes, pixel checks."""

    url: str
    fmt: str | None
    sizes: tuple[tuple[int, int], ...]
    single_colour: bool | None = None


@dataclass(frozen=True)
class UrlBans(Rule):
    """Drop an image whose URL contains one of ``words`` (logos, buttons, icons, ads...)."""

    words: tuple[str, ...]
    SETTING: ClassVar[str] = "{words}"
    KEEPS: ClassVar[str] = "url contains none of them"

    def __call__(self, img: ImageFacts) -> str | None:  # type: ignore[override]
        low = img.url.lower()
        return self.reason if any(ban in low for ban in self.words) else None


@dataclass(frozen=True)
class Formats(Rule):
    """Keep images in ``formats``; a URL whose extension is not an image format passes (decided later)."""

    formats: tuple[str, ...]
    SETTING: ClassVar[str] = "{formats}"
    KEEPS: ClassVar[str] = "format in the list (or unknown)"

    def __call__(self, img: ImageFacts) -> str | None:  # type: ignore[override]
        fmt = img.fmt
        if fmt is not None and fmt in KNOWN_IMAGE_EXTS and fmt not in self.formats:
            return self.reason
        return None


@dataclass(frozen=True)
class SizeRule(Rule):
    """A check of one (width, height); ``kind``: ``min_side``, ``max_side`` or ``max_aspect``."""

    kind: str
    limit: float
    SETTING: ClassVar[str] = "{limit}"
    _KEEPS = {"min_side": "min(w, h) >= {limit}", "max_side": "max(w, h) <= {limit}",
              "max_aspect": "max(w, h) / min(w, h) <= {limit}"}

    @property
    def keeps(self) -> str:
        return self._KEEPS[self.kind].format(limit=self.limit)

    def size_reason(self, w: int, h: int) -> str | None:
        if self.kind == "min_side":
            bad = min(w, h) < self.limit
        elif self.kind == "max_side":
            bad = max(w, h) > self.limit
        else:
            bad = max(w, h) / max(min(w, h), 1) > self.limit
        return self.reason if bad else None

    def __call__(self, img: ImageFacts) -> str | None:  # type: ignore[override]
        for w, h in img.sizes:
            r = self.size_reason(w, h)
            if r:
                return r
        return None


@dataclass(frozen=True)
class SingleColour(Rule):
    """Drop an image whose decoded pixels are one colour (spacers, placeholders)."""

    KEEPS: ClassVar[str] = "more than one colour"

    def __call__(self, img: ImageFacts) -> str | None:  # type: ignore[override]
        return self.reason if img.single_colour else None


def url_rules(cfg: FilterConfig) -> tuple[Rule, ...]:
    """Rules on the URL and format, tried first (cheap; no size needed)."""
    i = "image"
    return enabled(
        UrlBans("image_url_bans", i, "url", "image_url_banned", tuple(cfg.image_url_bans)) if cfg.image_url_bans else None,
        None if cfg.image_formats is None else Formats("image_formats", i, "format", "image_format", tuple(cfg.image_formats)),
    )


def size_rules(cfg: FilterConfig) -> tuple[SizeRule, ...]:
    i, m = "image", "width,height"
    return tuple(r for r in (
        None if cfg.image_min_side is None else SizeRule("image_min_side", i, m, "image_too_small", "min_side", cfg.image_min_side),
        None if cfg.image_max_side is None else SizeRule("image_max_side", i, m, "image_too_large", "max_side", cfg.image_max_side),
        None if cfg.image_max_aspect is None else
        SizeRule("image_max_aspect", i, m, "image_aspect_ratio", "max_aspect", cfg.image_max_aspect),
    ) if r is not None)


def pixel_rules(cfg: FilterConfig) -> tuple[Rule, ...]:
    return enabled(SingleColour("drop_single_colour", "image", "single_colour", "image_single_colour")
                   if cfg.drop_single_colour else None)


def image_facts(url: str, meta: dict[str, Any] | None, *, width: int | None = None, height: int | None = None,
                fmt: str | None = None, single_colour: bool | None = None) -> ImageFacts:
    """The facts the image rules read: declared size from ``meta`` first, then the decoded one."""
    from pmd.interleaved.metrics import image_format, pixel_size

    sizes = []
    if meta:
        rw, rh = pixel_size(meta.get("rendered_width")), pixel_size(meta.get("rendered_height"))
        if rw and rh:
            sizes.append((rw, rh))
    if width and height:
        sizes.append((width, height))
    return ImageFacts(url, fmt or image_format(url), tuple(sizes), single_colour)
