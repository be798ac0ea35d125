"""Which URL an ``<img>``/``<picture>`` shows: srcset candidates, lazy-load attributes, placeholders.

The compiled walk has its own ``<img>`` path with the same attribute and placeholder lists
(``_walk.c``; ``pmd.interleaved.compiled`` checks that they agree before using it).
"""

from __future__ import annotations

import re

IMG_URL_ATTRS = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-hi-res-src",
                 "data-full-src", "data-img-src", "data-src-fg", "data-lateloadsrc", "data-gt-lazy-src", "src2",
                 "data-large-file", "data-orig-file", "src")
IMG_SRCSET_ATTRS = ("data-srcset", "data-lazy-srcset", "srcset")
_PLACEHOLDER = re.compile(r"(?:^data:|blank\.|spacer|placeholder|pixel\.gif|transparent\.|lazy\.(?:gif|png|svg))", re.I)


def parse_srcset(value: str) -> str | None:
    """The largest candidate of a ``srcset`` (by width descriptor, else density, else the first).

    A token scan instead of a regex: candidates end at a comma that ends a token; a token after a
    URL is its descriptor (``640w``, ``2x``); no descriptor means ``1x``."""
    cands: list[tuple[str, str | None]] = []
    url: str | None = None
    desc: str | None = None
    if " " not in value.strip() and "," in value:  # "a.jpg,b.jpg": no descriptors at all
        toks = [t + "," for t in value.split(",") if t]
    else:
        toks = value.split()
    for tok in toks:
        end = tok.endswith(",")
        tok = tok.rstrip(",")
        if tok:
            if url is None:
                url = tok
            else:
                desc = tok
        if end and url is not None:
            cands.append((url, desc))
            url = desc = None
    if url is not None:
        cands.append((url, desc))
    best, best_key = None, (-1, -1.0)
    for u, d in cands:
        key = (1, 1.0)
        if d:
            try:
                num = float(d[:-1])
            except ValueError:
                num = None
            if num is not None and d[-1] == "w":
                key = (2, num)
            elif num is not None and d[-1] == "x":
                key = (1, num)
        if key > best_key:
            best, best_key = u, key
    return best


_PLACEHOLDER_PARTS = ("blank.", "spacer", "placeholder", "pixel.gif", "transparent.", "lazy.gif", "lazy.png", "lazy.svg")


_PLACEHOLDER_ANY = re.compile("|".join(map(re.escape, _PLACEHOLDER_PARTS)))  # any of the substrings
# every attribute _image_src reads, by priority (srcset-like first)
_IMG_ATTR_PRIO = {a: i for i, a in enumerate(IMG_SRCSET_ATTRS + IMG_URL_ATTRS)}


def _is_placeholder(url: str) -> bool:
    """``_PLACEHOLDER.search(url)``; ASCII URLs (nearly all) by substring tests on the lower-cased URL,
    which is what the case-insensitive regex matches there."""
    if url.isascii():
        low = url.lower()
        return low.startswith("data:") or _PLACEHOLDER_ANY.search(low) is not None
    return _PLACEHOLDER.search(url) is not None


def _image_src(attrs: dict[str, str | None]) -> str | None:
    """The best URL of an ``<img>``: largest srcset candidate, then lazy-load attributes, then ``src``;
    placeholders (``data:``, spacer gifs) never win over a real URL."""
    present = attrs.keys() & _IMG_ATTR_PRIO.keys()  # the same order, visiting only the attributes there
    if len(present) > 1:
        present = sorted(present, key=_IMG_ATTR_PRIO.__getitem__)
    n_srcset = len(IMG_SRCSET_ATTRS)
    for a in present:
        v = attrs[a]
        if not v:
            continue
        if _IMG_ATTR_PRIO[a] < n_srcset:
            u = parse_srcset(v)
            if u and not _is_placeholder(u):
                return u
        else:
            v = v.strip()
            if v and not _is_placeholder(v):
                return v
    return None
