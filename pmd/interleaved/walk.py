"""The single DOM walk: text blocks and images in document order, with the containers they sit in.

One DFS over the lexbor DOM (selectolax) skips boilerplate tags, hidden elements and comments,
unwraps inline tags and records for each block its container and how much of its text sits inside
links, and for each container its parent, tag and class/id hints. Main-content selection
(``pmd.interleaved.select``) then works on these records only (no second DOM pass).

This is the reference; ``_walk.c`` does the same in C (``pmd.interleaved.compiled`` loads it).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from pmd.interleaved.budgets import NO_LIMITS, Limits, OverBudget
from pmd.interleaved.image_src import _image_src, parse_srcset
from pmd.interleaved.urls import resolve_url

# Subtrees never read: code, styling, non-content widgets and page chrome.
DROP_TAGS = frozenset({
    "script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object", "embed",
    "nav", "header", "footer", "aside", "button", "select", "input", "textarea", "option",
    "label", "dialog", "menu", "head", "video", "audio", "map", "area", "-comment", "link", "meta",
})
# Block tags and the separator they put between texts (2 = paragraph break, 1 = line break).
BLOCK_SEP = {
    "p": 2, "h1": 2, "h2": 2, "h3": 2, "h4": 2, "h5": 2, "h6": 2, "ul": 2, "ol": 2, "dl": 2,
    "blockquote": 2, "pre": 2, "table": 2, "hr": 2, "figure": 2,
    "div": 1, "section": 1, "article": 1, "main": 1, "li": 1, "dd": 1, "dt": 1, "tr": 1, "td": 1,
    "th": 1, "figcaption": 1, "address": 1, "center": 1, "caption": 1, "details": 1, "summary": 1,
    "body": 2, "html": 2, "tbody": 1, "thead": 1, "tfoot": 1, "picture": 1, "hgroup": 1,
    "fieldset": 1, "legend": 1, "amp-img": 1,
}
_NEVER_NEGATIVE = frozenset({"html", "body", "article", "main"})
# class/id tokens of containers that are boilerplate wherever they appear.
NEGATIVE_TOKENS = frozenset({
    "comment", "comments", "commentlist", "disqus", "sidebar", "related", "share", "sharing", "social",
    "sociallinks", "newsletter", "subscribe", "subscription", "signup", "cookie", "cookies", "consent",
    "breadcrumb", "breadcrumbs", "nav", "navbar", "navigation", "menu", "footer", "masthead", "advert",
    "advertisement", "ads", "ad", "adsense", "sponsor", "sponsored", "promo", "popup", "modal", "widget",
    "pagination", "pager", "outbrain", "taboola", "recommended", "recommendations", "tags", "tagcloud",
    "byline", "toolbar", "skip", "login", "paywall", "rating", "print", "dateline", "timestamp",
    "trending", "popular", "mostread", "newsletters", "shares", "icons", "hidden", "visually",
    "sr", "screenreader", "caption-credit", "credit", "credits", "bio", "respond", "commentform",
})
# Token beginnings that are negative however the token goes on: class names glued from a widget's role
# and a word ("relatedposts", "relatedContent", "sidebar2", "socialshare", "newsletterbox") name the same
# boxes as the tokens above. Only roles that no article's own container is named after.
NEGATIVE_PREFIXES = ("related", "sidebar", "social", "newsletter", "sharing", "breadcrumb")
# the negative tokens of comment threads: readers' posts under an article are prose, often more of it
# than the article, so their blocks never elect the article container (``THREAD_WEIGHT``)
THREAD_TOKENS = frozenset({"comment", "comments", "commentlist", "disqus"})
# the class/id weight of a comment-thread container (other negative ones weigh -25, positive +25)
THREAD_WEIGHT = -50
# Parts of class/id tokens of image galleries, slideshows and carousels ("gallery", "photogallery",
# "cnnGalleryContainer", "slideshow"): their images belong to the article, in page order, but the
# captions of their slides are not its text (the ground truths of news pages leave them out; a slideshow
# of forty captions outweighs a short article). Such a container is not negative (its images stay);
# it weighs GALLERY_WEIGHT, which also marks it for main-content selection: its text blocks score nothing
# and are dropped. A container with a negative token as well ("related-gallery") is negative.
GALLERY_PARTS = ("gallery", "slideshow", "carousel")
GALLERY_WEIGHT = -30
POSITIVE_TOKENS = frozenset({
    "article", "body", "content", "entry", "main", "post", "text", "story", "blog", "hentry", "prose",
    "articlebody", "storybody", "postbody", "richtext", "paragraph",
})
SLUG_MIN_WORDS = 4  # an id with this many words is a heading slug (see _hints_of)
_TOKEN_SPLIT = re.compile(r"[\s_\-]+")


@dataclass(slots=True)
class _Block:
    """A run of text; ``el`` is its innermost container (its ancestors follow from ``parent_of``, so a
    block costs the same at any depth: memory stays linear in the page)."""

    text: str
    el: int
    link_chars: int
    sep: int
    tag: str


@dataclass(slots=True)
class _Image:
    url: str
    src: str
    alt: str | None
    width: str | None
    height: str | None
    el: int

_TOKEN_CACHE: dict[str, tuple[bool, bool, bool, bool]] = {}


def _class_hints(attrs: dict[str, str | None]) -> tuple[bool, bool, bool, bool]:
    """(negative, positive, comment thread, gallery) class/id hints of an element, cached by the class+id
    string (pages and sites repeat the same few class names, so the split is done once per distinct string)."""
    s = (attrs.get("class") or "") + " " + (attrs.get("id") or "")
    hit = _TOKEN_CACHE.get(s)
    return _hints_of(s) if hit is None else hit


def _hints_of(s: str) -> tuple[bool, bool, bool, bool]:
    """The hints of a "class id" string not in the cache yet (added to it). An id of four or more words
    is a slug of a heading's text (``id="sharing-with-a-single-developer"`` on a documentation section),
    not the name of a widget, so its words give no hint."""
    cls, _, ident = s.lower().rpartition(" ")
    id_toks = [t for t in _TOKEN_SPLIT.split(ident) if t]
    toks = set(_TOKEN_SPLIT.split(cls))
    if len(id_toks) < SLUG_MIN_WORDS:
        toks.update(id_toks)
    neg = not toks.isdisjoint(NEGATIVE_TOKENS) or any(t.startswith(NEGATIVE_PREFIXES) for t in toks)
    hit = (neg, not toks.isdisjoint(POSITIVE_TOKENS),
           not toks.isdisjoint(THREAD_TOKENS), any(p in t for t in toks for p in GALLERY_PARTS))
    if len(_TOKEN_CACHE) > 100_000:
        _TOKEN_CACHE.clear()
    _TOKEN_CACHE[s] = hit
    return hit


def _is_hidden(attrs: dict[str, str | None]) -> bool:
    if "hidden" in attrs or attrs.get("aria-hidden") == "true":
        return True
    st = attrs.get("style")
    if st:
        st = st.replace(" ", "").lower()
        return "display:none" in st or "visibility:hidden" in st
    return False


_ImageFields = tuple[str, str, "str | None", "str | None", "str | None"]


def _image_fields(src: str | None, attrs: dict[str, str | None], base: str) -> _ImageFields | None:
    """(url, src, alt, width, height) of an image with the chosen ``src``, or None (no usable URL)."""
    if not src:
        return None
    url = resolve_url(base, src)
    if url is None:
        return None
    return url, src, attrs.get("alt"), attrs.get("width"), attrs.get("height")


def _image_fields_of(src: str, base: str, alt: str | None, width: str | None, height: str | None) -> _ImageFields | None:
    """``_image_fields`` for the compiled ``<img>`` path, which has chosen ``src`` already."""
    url = resolve_url(base, src)
    return None if url is None else (url, src, alt, width, height)


def _img_item(attrs: dict[str, str | None], base: str) -> _ImageFields | None:
    """An ``<img>``/``<amp-img>``: hidden ones are skipped, then the best URL."""
    if _is_hidden(attrs):
        return None
    return _image_fields(_image_src(attrs), attrs, base)


def _picture_item(children: list[tuple[str, dict[str, str | None]]], base: str) -> _ImageFields | None:
    """A ``<picture>`` from its ``<source>``/``<img>`` children in order: the first usable source srcset,
    else the ``<img>``'s own choice (the last ``<img>``'s attributes)."""
    best: str | None = None
    img_attrs: dict[str, str | None] = {}
    for tag, a in children:
        if tag == "source":
            best = best or parse_srcset(a.get("srcset") or a.get("data-srcset") or "")
        else:
            img_attrs = a
    return _image_fields(best or _image_src(img_attrs), img_attrs, base)


def _fix_nul(text: str) -> str:
    """A block's text with ``<br>`` markers (NUL) as line breaks, each line stripped."""
    return "\n".join(x.strip() for x in text.split("\x00")).strip()


# Node kinds for the walk's single dispatch lookup (anything else: an inline tag, unwrapped).
_K_TEXT, _K_DROP, _K_BR, _K_IMG, _K_PICTURE, _K_LINK, _K_BLOCK, _K_BLOCK_ATTRS = 1, 2, 3, 4, 5, 6, 7, 8
_ATTR_TAGS = frozenset({"div", "section", "article", "main", "ul", "ol", "dl", "table", "figure", "center"})
KIND: dict[str, int] = {t: _K_DROP for t in DROP_TAGS}
KIND.update({t: (_K_BLOCK_ATTRS if t in _ATTR_TAGS else _K_BLOCK) for t in BLOCK_SEP})
KIND.update({"-text": _K_TEXT, "br": _K_BR, "img": _K_IMG, "amp-img": _K_IMG, "picture": _K_PICTURE, "a": _K_LINK,
             "-comment": _K_DROP, "-doctype": _K_DROP, "_comment": _K_DROP})
_EXIT_LINK, _EXIT_INLINE = -1, 0  # exit markers on the walk's stack (ints; block exits are their separator, > 0)


# The walk dispatches on lexbor's integer tag id (no tag-name string per node). Ids of the standard
# tags are fixed; custom elements get per-document ids (pointers, far above any fixed id), so only
# ids below _FIXED_ID_LIMIT are cached and the others are classified by name every time.
_FIXED_ID_LIMIT = 1 << 16
_KIND_BY_ID: dict[int, int] = {}
_BLOCK_BY_ID: dict[int, tuple[str, int]] = {}  # block tag id -> (name, separator)


def _learn_kind(node: Any, tid: int) -> int:
    tag = node.tag
    k = KIND.get(tag, 0)
    if tid < _FIXED_ID_LIMIT:
        _KIND_BY_ID[tid] = k
        if k >= _K_BLOCK:
            _BLOCK_BY_ID[tid] = (tag, BLOCK_SEP[tag])
    return k


def _emit(parts: list[str], link_chars: int, pending: int, path: list[int], tag_of: list[str],
          blocks: list[_Block], items: list[tuple[str, Any]]) -> int:
    """Close the current run of inline text as a block; returns the new pending separator."""
    text = " ".join("".join(parts).split())
    if text:
        if "\x00" in text:
            text = _fix_nul(text)
        if text:
            b = _Block(text, path[-1], link_chars, pending, tag_of[path[-1]])
            blocks.append(b)
            items.append(("t", b))
            return 0
    return pending


def _walk_py(root: Any, base: str, limits: Limits = NO_LIMITS,
             ) -> tuple[list[_Block], list[tuple[str, Any]], list[int], list[str], set[int], dict[int, int]]:
    """One DFS over the DOM; returns blocks, the ordered item list, parents, tags, negative elements and
    class/id weights of the container elements. Block elements are numbered 1, 2, ... in document
    (pre)order; ``parent_of[e]`` and ``tag_of[e]`` are lists indexed by that number (0: no element).
    Raises ``OverBudget`` past ``limits`` (nodes visited, open elements, deadline)."""
    items: list[tuple[str, Any]] = []
    blocks: list[_Block] = []
    parent_of: list[int] = [0]
    tag_of: list[str] = [""]
    negative: set[int] = set()
    weight: dict[int, int] = {}
    path: list[int] = []
    parts: list[str] = []
    link_chars = 0
    in_link = 0
    pending = 2
    kind_of = _KIND_BY_ID.get
    block_of = _BLOCK_BY_ID.get

    def add_image(fields: _ImageFields | None, parts: list[str], link_chars: int,
                  pending: int) -> tuple[list[str], int, int]:
        if fields is None:
            return parts, link_chars, pending
        if parts:
            pending = _emit(parts, link_chars, pending, path, tag_of, blocks, items)
            parts = []
        if pending < 1:
            pending = 1
        items.append(("i", _Image(*fields, path[-1])))
        return parts, 0, pending

    # the root is a block of its own (body): its id heads every path
    parent_of.append(0)
    tag_of.append(root.tag)
    path.append(1)
    # Siblings are followed in the inner loop (node = node.next); entering an element pushes the
    # sibling to resume with and an int exit marker (a block's separator, _EXIT_LINK, or
    # _EXIT_INLINE), so a text node costs no stack operation.
    stack: list[Any] = []
    pop, push = stack.pop, stack.append
    max_nodes = limits.max_nodes or sys.maxsize
    max_stack = 2 * limits.max_depth or sys.maxsize  # two stack entries per open element
    nodes = 0
    node = root.child
    while True:
        if node is None:
            if not stack:
                break
            x = pop()
            if x > 0:  # a block's exit: its separator
                if parts:
                    pending = _emit(parts, link_chars, pending, path, tag_of, blocks, items)
                    parts = []
                    link_chars = 0
                if x > pending:
                    pending = x
                path.pop()
            elif x == _EXIT_LINK:
                in_link -= 1
            node = pop()
            continue
        nodes += 1
        if nodes > max_nodes:
            raise OverBudget("dom_too_many_nodes", "the walk")
        if not nodes & 4095:
            limits.check_time("the walk")
        tid = node.tag_id
        k = kind_of(tid)
        if k is None:
            k = _learn_kind(node, tid)
        if k == _K_TEXT:
            # whitespace before any text of a block adds nothing (the block's text is whitespace-
            # normalised), so it is not collected: most such nodes sit between block tags, and
            # lexbor tells ASCII-whitespace nodes without a str being made
            if parts:
                t = node.text_content
                if t:
                    parts.append(t)
                    if in_link:
                        link_chars += len(t.strip())
            elif not node.is_empty_text_node:
                t = node.text_content
                if t and not t.isspace():
                    parts.append(t)
                    if in_link:
                        link_chars += len(t.strip())
        elif k >= _K_BLOCK:
            tag, sep = block_of(tid) or (node.tag, BLOCK_SEP[node.tag])
            if k == _K_BLOCK_ATTRS:
                attrs = node.attributes
                if attrs:
                    if "hidden" in attrs or "style" in attrs or "aria-hidden" in attrs:
                        if _is_hidden(attrs):
                            node = node.next
                            continue
                    if "class" in attrs or "id" in attrs:
                        neg, pos, thread, gallery = _class_hints(attrs)
                        if neg or pos or gallery:
                            eid = len(tag_of)  # the number this element gets below
                            ok = tag not in _NEVER_NEGATIVE
                            neg = neg and ok
                            if neg:
                                negative.add(eid)
                            w = (THREAD_WEIGHT if thread else -25 + (25 if pos else 0)) if neg else (
                                GALLERY_WEIGHT if gallery and ok else (25 if pos else 0))
                            if w:
                                weight[eid] = w
            if parts:
                pending = _emit(parts, link_chars, pending, path, tag_of, blocks, items)
                parts = []
                link_chars = 0
            if sep > pending:
                pending = sep
            path.append(len(tag_of))
            parent_of.append(path[-2])
            tag_of.append(tag)
            if len(stack) >= max_stack:
                raise OverBudget("dom_too_deep", "the walk")
            push(node.next)
            push(sep)
            node = node.child
            continue
        elif k == 0:  # inline: unwrapped
            ch = node.child
            if ch is not None:
                if len(stack) >= max_stack:
                    raise OverBudget("dom_too_deep", "the walk")
                push(node.next)
                push(_EXIT_INLINE)
                node = ch
                continue
        elif k == _K_LINK:
            ch = node.child
            if ch is not None:
                if len(stack) >= max_stack:
                    raise OverBudget("dom_too_deep", "the walk")
                in_link += 1
                push(node.next)
                push(_EXIT_LINK)
                node = ch
                continue
        elif k == _K_DROP:  # skipped with its subtree
            pass
        elif k == _K_BR:
            parts.append(" \x00 ")
        elif k == _K_IMG:
            parts, link_chars, pending = add_image(_img_item(node.attributes, base), parts, link_chars, pending)
        elif k == _K_PICTURE:
            children = [(t, ch.attributes) for ch in node.iter() if (t := ch.tag) in ("source", "img")]
            parts, link_chars, pending = add_image(_picture_item(children, base), parts, link_chars, pending)
        node = node.next
    if parts:
        _emit(parts, link_chars, pending, path, tag_of, blocks, items)
    return blocks, items, parent_of, tag_of, negative, weight
