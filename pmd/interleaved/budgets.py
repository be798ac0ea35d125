"""Per-page extraction budgets: what a page over one is dropped for, and the checks made before parsing.

The limits themselves are ``pmd.interleaved.config.ExtractBudgets`` (page bytes, DOM nodes, DOM
depth, seconds). Bytes are checked before anything is decoded; a cheap scan of the raw markup
estimates the nesting depth before lexbor parses it (lexbor's tree building costs time quadratic in
the depth, so a page of 100,000 nested ``<div>`` would take seconds to parse, and the scan drops it
first); the walk then counts exact nodes, depth and time (``Limits``) and stops at the first one
exceeded. Each limit has its own reason, which the extract stage counts as a drop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

REASONS = ("page_too_large", "dom_too_many_nodes", "dom_too_deep", "extract_timeout")


class OverBudget(Exception):
    """A page over one of its extraction budgets; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Limits:
    """What the walk enforces (0: no limit); ``deadline`` is a ``time.monotonic()`` value."""

    max_nodes: int = 0
    max_depth: int = 0
    deadline: float = 0.0

    def check_time(self, what: str) -> None:
        if self.deadline and time.monotonic() > self.deadline:
            raise OverBudget("extract_timeout", what)


NO_LIMITS = Limits()

# Tags that take no end tag, that the parser closes implicitly when a sibling starts, or whose content
# is raw text: none of them deepens the tree the way an unclosed container does.
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                   "wbr", "param", "keygen", "frame", "basefont", "bgsound", "image"})
_IMPLIED = frozenset({"p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot",
                      "colgroup", "caption", "rb", "rt", "rp", "rtc", "html", "head", "body"})
RAW_TEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")
_NOT_NESTING = _VOID | _IMPLIED
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_MAX_NAME = 32


def depth_estimate_py(data: bytes) -> int:
    """The deepest nesting of start tags over end tags in raw markup (comments, ``<!...>``/``<?...>``,
    raw-text elements, void, self-closed and implicitly closed tags skipped; an end tag closes one
    level, never below zero). An estimate of the DOM depth lexbor builds, for dropping absurdly deep
    pages before parsing; ``_walk.c``'s ``depth_estimate`` is the same scan in C (tests compare)."""
    n = len(data)
    depth = best = 0
    i = data.find(b"<")
    while 0 <= i < n - 1:
        c = data[i + 1]
        if c == 0x21 and data.startswith(b"--", i + 2):  # <!-- ... -->
            j = data.find(b"-->", i + 4)
            i = data.find(b"<", j + 3) if j >= 0 else -1
            continue
        if c == 0x21 or c == 0x3F:  # <!DOCTYPE ...>, <?...>
            j = data.find(b">", i + 2)
            i = data.find(b"<", j + 1) if j >= 0 else -1
            continue
        end = c == 0x2F
        k = i + 2 if end else i + 1
        m = k
        while m < n and m - k <= _MAX_NAME and data[m] in _NAME_CHARS:
            m += 1
        if m == k or not (0x41 <= data[k] <= 0x5A or 0x61 <= data[k] <= 0x7A):  # not a tag: text
            i = data.find(b"<", i + 1)
            continue
        name = data[k:m].decode("ascii").lower()
        j = data.find(b">", m)
        if j < 0:
            break
        if end:
            if depth and name not in _NOT_NESTING:
                depth -= 1
        elif name in RAW_TEXT:
            close = _find_ci(data, b"</" + name.encode(), j + 1)
            i = data.find(b"<", close + 2) if close >= 0 else -1
            continue
        elif name not in _NOT_NESTING and data[j - 1] != 0x2F:
            depth += 1
            if depth > best:
                best = depth
        i = data.find(b"<", j + 1)
    return best


def _find_ci(data: bytes, needle: bytes, start: int) -> int:
    """``data.find(needle, start)`` ignoring ASCII case (needle is lower-case)."""
    first = needle[:2]
    i = start
    while True:
        i = data.find(first, i)
        if i < 0:
            return -1
        if data[i:i + len(needle)].lower() == needle:
            return i
        i += 1
