"""Single-pass extraction of an interleaved document (text blocks and images in page order) from HTML.

``extract_document`` is the entry point: bytes are decoded (``pmd.interleaved.charset``) and parsed
once by lexbor (selectolax); one walk over the DOM (``pmd.interleaved.walk``) collects text blocks
and images in document order with the containers they sit in; main-content selection
(``pmd.interleaved.select``) picks the article region from those records only (no second DOM pass),
and assembly (``pmd.interleaved.assemble``) merges the kept blocks into texts between images, which is
how M3W/OBELICS place images relative to text. Image URLs: ``pmd.interleaved.image_src`` and
``pmd.interleaved.urls``.

The walk, selection and assembly also exist in C (pmd/interleaved/_walk.c, built by setup.py as an
optional extension): ``extract_document`` uses it when ``pmd.interleaved.compiled`` could load and
verify it at import; otherwise (a WARNING, once) the Python code, which stays the reference. Both give
identical documents (tests/test_interleaved_extract.py compares them on every real page).
``runtime_info()`` says which walker and text-statistics module run (the build manifest records it).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from pmd.interleaved.assemble import EMPTY_WALK, assemble
from pmd.interleaved.budgets import NO_LIMITS, Limits, OverBudget, depth_estimate_py
from pmd.interleaved.charset import decode_html, to_utf8, to_utf8_counted
from pmd.interleaved.compiled import load_compiled
from pmd.interleaved.config import ExtractBudgets
from pmd.interleaved.image_src import parse_srcset
from pmd.interleaved.urls import resolve_url
from pmd.interleaved.walk import _walk_py
from pmd.records import InterleavedDocument

__all__ = ["extract_document", "OverBudget", "ExtractBudgets", "decode_html", "to_utf8", "parse_srcset", "resolve_url", "use_walker",
           "runtime_info", "WALKER"]

log = logging.getLogger(__name__)


def _walk_c(root: Any, base: str, limits: Limits = NO_LIMITS) -> tuple:
    """``_walk_py`` in C (pmd/interleaved/_walk.c); the caller keeps the tree alive."""
    return _cwalk.walk(root.mem_id, root.tag, base, limits.max_nodes, limits.max_depth, limits.deadline)


# the compiled walk when it is built, for a verified selectolax, and passes the layout check at import
_cwalk: Any = load_compiled()
_walk = _walk_c if _cwalk is not None else _walk_py
WALKER = "compiled" if _cwalk is not None else "python"
_depth_estimate = _cwalk.depth_estimate if _cwalk is not None else depth_estimate_py
DEFAULT_BUDGETS = ExtractBudgets()


def use_walker(name: str) -> str:
    """Switch the walk used by ``extract_document`` (``"python"``, ``"compiled"``, or ``"auto"``: compiled
    when available); returns the walker now in use. For tests and benchmarks."""
    global _walk, WALKER
    if name == "compiled" and _cwalk is None:
        raise RuntimeError("the compiled interleaved walk is not available")
    if name not in ("python", "compiled", "auto"):
        raise ValueError(f"unknown walker {name!r}")
    use_c = _cwalk is not None and name != "python"
    _walk = _walk_c if use_c else _walk_py
    WALKER = "compiled" if use_c else "python"
    return WALKER


def runtime_info() -> dict[str, str]:
    """Which implementations run in this process: ``{"walker": "compiled"|"python", "textstats":
    "compiled"|"python"}`` (the extraction walk and the filters' text statistics); same outputs either
    way, only the speed differs, so a build records it next to its throughput."""
    from pmd.interleaved import metrics

    return {"walker": WALKER, "textstats": metrics.TEXTSTATS}


def extract_document(
    html: bytes | str,
    url: str,
    *,
    charset: str | None = None,
    general_metadata: dict[str, Any] | None = None,
    main_content: bool = True,
    budgets: ExtractBudgets = DEFAULT_BUDGETS,
) -> InterleavedDocument:
    """Extract text blocks and images in page order as an ``InterleavedDocument``.

    ``charset`` is the HTTP header's (if any); ``main_content=False`` keeps every non-boilerplate block
    and image of the page instead of only the article region. Consecutive kept blocks merge into one
    text with paragraph separators, so texts and images alternate as in OBELICS. A page over one of
    ``budgets`` raises ``OverBudget`` (its ``reason`` is the drop reason to count).
    """
    start = time.monotonic()
    limits = Limits(budgets.max_dom_nodes or 0, budgets.max_dom_depth or 0,
                    start + budgets.max_seconds if budgets.max_seconds else 0.0)
    size = len(html)
    if budgets.max_page_bytes and size > budgets.max_page_bytes:
        raise OverBudget("page_too_large", f"{size} bytes > {budgets.max_page_bytes}")
    decode_errors = 0
    if isinstance(html, str):
        tree, enc = LexborHTMLParser(html), "str"
    else:
        data, enc, decode_errors = to_utf8_counted(html, charset)
        # each level of nesting takes at least 3 bytes ("<b>"): the scan runs only where the limit is reachable
        if limits.max_depth and len(data) > 3 * limits.max_depth:
            est = _depth_estimate(data)
            if est > limits.max_depth:
                raise OverBudget("dom_too_deep", f"about {est} nested tags > {limits.max_depth}")
        tree = LexborHTMLParser(data)
    limits.check_time("parsing")
    base = url
    title = None
    head = tree.head
    if head is not None:
        b = head.css_first("base[href]")
        if b is not None:
            href = (b.attributes.get("href") or "").strip()
            if href:
                try:
                    base = urljoin(url, href)
                except ValueError:  # e.g. "http://[::1": an invalid base is ignored, as browsers do
                    pass
        t = head.css_first("title")
        if t is not None:
            title = " ".join(t.text().split()) or None
    root = tree.body or tree.root
    if root is not None and _walk is _walk_c:  # the walk, selection and assembly, in C
        texts, images, metadata = _cwalk.extract(root.mem_id, root.tag, base, main_content, limits.max_nodes,
                                                 limits.max_depth, limits.deadline)
    else:
        walked = _walk(root, base, limits) if root is not None else EMPTY_WALK
        texts, images, metadata = assemble(walked, main_content)
    gm: dict[str, Any] = {"url": url, "charset": enc, "title": title}
    if decode_errors:
        gm["decode_errors"] = decode_errors
    if general_metadata:
        gm.update(general_metadata)
    return InterleavedDocument(url=url, texts=texts, images=images, metadata=metadata, general_metadata=gm)
