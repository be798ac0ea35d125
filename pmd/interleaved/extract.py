"""Single-pass extraction of an interleaved document (text blocks and images in page order) from HTML.

One walk over the lexbor DOM (selectolax) collects text blocks and images in document order,
skipping boilerplate tags, hidden elements and comments, unwrapping inline tags and recording for
each block its container path and how much of its text sits inside links. Main-content selection
then works on those blocks only (no second DOM pass): a readability-style score of each container
(paragraph length and commas, class/id hints, link density) picks the article container and its
strong siblings; inside it, link-heavy blocks (menus, related-link lists) and blocks under
boilerplate containers (comments, share bars, sidebars) are dropped. Images are kept where their
position in the DOM falls inside the selected content, which is how M3W places images relative
to text.

The walk, selection and assembly also exist in C (pmd/interleaved/_walk.c, built by setup.py as an
optional extension): ``extract_document`` uses it when it is built, the installed selectolax is one
whose lexbor struct layout it was verified against (``VERIFIED_SELECTOLAX``) and a probe document
reads and extracts the same through both at import; otherwise (logged once at debug level) the Python
code below, which stays the reference. Both give identical documents (tests/test_interleaved_extract.py
compares them on every real page).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

from pmd.records import InterleavedDocument

log = logging.getLogger(__name__)

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
SEPARATORS = ("", "\n", "\n\n")
# Tags whose class/id are looked at (inline tags are unwrapped without a look).
CONTAINER_TAGS = frozenset({
    "div", "section", "article", "main", "ul", "ol", "dl", "table", "p", "span", "li", "figure",
    "blockquote", "td", "tr", "tbody", "center", "dd",
})
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
    "sr", "screenreader", "caption-credit", "credit", "credits",
})
POSITIVE_TOKENS = frozenset({
    "article", "body", "content", "entry", "main", "post", "text", "story", "blog", "hentry", "prose",
    "articlebody", "storybody", "postbody", "richtext", "paragraph",
})
_TOKEN_SPLIT = re.compile(r"[\s_\-]+")
TAG_BONUS = {"div": 5, "article": 10, "main": 5, "section": 2, "pre": 3, "td": 3, "blockquote": 3,
             "ol": -3, "ul": -3, "dl": -3, "li": -3, "dd": -3, "dt": -3, "address": -3,
             "h1": -5, "h2": -5, "h3": -5, "h4": -5, "h5": -5, "h6": -5, "th": -5}
# blocks whose score goes to their parent and up (not to themselves); sibling containers that may join
# the chosen one in the content region
_PARA_TAGS = frozenset({"p", "pre", "td", "blockquote", "li"})
_REGION_TAGS = frozenset({"p", "blockquote", "pre", "ul", "ol", "table", "h2", "h3", "h4", "figure", "div"})
_SENTENCE_END = re.compile(r"[.!?。！？]['\"”’)]*\s*$")

IMG_URL_ATTRS = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-hi-res-src",
                 "data-full-src", "data-img-src", "data-src-fg", "data-lateloadsrc", "data-gt-lazy-src", "src2",
                 "data-large-file", "data-orig-file", "src")
IMG_SRCSET_ATTRS = ("data-srcset", "data-lazy-srcset", "srcset")
_PLACEHOLDER = re.compile(r"(?:^data:|blank\.|spacer|placeholder|pixel\.gif|transparent\.|lazy\.(?:gif|png|svg))", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_BOILERPLATE_LINE = re.compile(
    r"^(advertisement|anzeige|werbung|share( this)?( article| story)?|read more|continue reading|"
    r"related( articles| stories)?|comments?|loading\.*|sponsored|click here|skip to (main )?content|"
    r"sign up|subscribe( now)?|follow us|print|e-?mail|tweet|facebook|twitter|linkedin|whatsapp)\W*$",
    re.I,
)


@dataclass(slots=True)
class _Block:
    text: str
    path: tuple[int, ...]
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
    path: tuple[int, ...]


# --------------------------------------------------------------------------- decoding


def decode_html(data: bytes | str, charset: str | None = None) -> tuple[str, str]:
    """Bytes → text: the HTTP header's charset, else a ``<meta charset>`` in the first 4 KB, else UTF-8;
    a wrong or unknown declaration falls back to UTF-8 and then cp1252 (which never fails)."""
    if isinstance(data, str):
        return data, "str"
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):  # a byte-order mark outranks any declaration (WHATWG)
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                break
    cands: list[str] = []
    if charset:
        cands.append(charset.strip().strip("\"'").lower())
    m = _META_CHARSET.search(data[:4096])
    if m:
        cands.append(m.group(1).decode("ascii", "replace").lower())
    cands.append("utf-8")
    for enc in cands:
        if enc in ("iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"):
            enc = "cp1252"  # what browsers do (WHATWG encoding standard)
        try:
            return data.decode(enc), enc
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace"), "cp1252"


_UTF8 = ("utf-8", "utf8")


def _utf8_valid_py(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


_utf8_valid = _utf8_valid_py  # the compiled check when pmd.interleaved._walk is built (end of module)


def to_utf8(data: bytes, charset: str | None = None) -> tuple[bytes, str]:
    """Bytes for lexbor (which reads bytes as UTF-8): the input itself when it is valid UTF-8 and
    nothing else is declared (no decode/encode round trip), else ``decode_html``'s text re-encoded."""
    declared = (charset or "").strip().strip("\"'").lower()
    if not declared:
        m = _META_CHARSET.search(data[:4096])
        declared = m.group(1).decode("ascii", "replace").lower() if m else ""
    if (not declared or declared in _UTF8) and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        if data.isascii() or _utf8_valid(data):
            return data, "utf-8"
    text, enc = decode_html(data, charset)
    return text.encode("utf-8", errors="replace"), enc


# --------------------------------------------------------------------------- images


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


_CLEAN_ABSOLUTE = re.compile(r"https?://[^/?#\\;\[\]\x00-\x20\x7f-\U0010ffff][^;\[\]\x00-\x20\x7f-\U0010ffff]*\Z")


def resolve_url(base: str, src: str) -> str | None:
    """Absolute http(s) URL of ``src`` against ``base`` (RFC 3986 via urljoin); others are None."""
    src = src.strip()
    if not src or src.startswith(("data:", "javascript:", "about:", "blob:")):
        return None
    if _CLEAN_ABSOLUTE.match(src) and "?#" not in src and src[-1] not in "?#":
        # an absolute http(s) URL that urljoin would return unchanged (no parts its parse/unparse
        # round trip rewrites: empty query or fragment, params, brackets, controls, non-ASCII)
        return src
    if src.isascii() and _NO_CONTROLS.match(src):
        fast = _resolve_plain(base, src)
        if fast is not None:
            return fast
    try:
        url = urljoin(base, src)
    except ValueError:
        return None
    return url if url[:7].lower() == "http://" or url[:8].lower() == "https://" else None


_NO_CONTROLS = re.compile(r"[^\x00-\x20\x7f]+\Z")
_PLAIN_PATH = re.compile(r"[^:?#;\\]+\Z")


def _resolve_plain(base: str, src: str) -> str | None:
    """urljoin's result for the common relative references, without its parse/unparse round trips:
    network-path ("//host/...") and path references whose path has no scheme, params, dot segments or
    doubled slashes, with a query/fragment that unparses unchanged, against a plain http(s) base (RFC
    3986's merge); None for anything else (the caller uses urljoin). ``src`` is ASCII, no controls."""
    if src[:2] == "//":
        b = _base_dir(base)
        if b is None:
            return None
        full = b[0].partition(":")[0] + ":" + src
        if _CLEAN_ABSOLUTE.match(full) and "?#" not in src and src[-1] not in "?#":
            return full
        return None
    cut = len(src)
    for ch in "?#":
        i = src.find(ch)
        if 0 <= i < cut:
            cut = i
    path, rest = src[:cut], src[cut:]
    if not path or not _PLAIN_PATH.match(path) or "//" in path:
        return None
    segs = path.split("/")
    if "." in segs or ".." in segs:
        return None
    if rest:  # query and fragment must come back as they are (urlunparse drops empty ones)
        pre, hash_, frag = rest.partition("#")
        if (hash_ and not frag) or pre == "?":
            return None
    b = _base_dir(base)
    if b is None:
        return None
    return b[0] + src if src[0] == "/" else b[0] + b[1] + src


@lru_cache(maxsize=256)
def _base_dir(base: str) -> tuple[str, str] | None:
    """("scheme://netloc", directory of the path ending in "/") of a base URL whose parse urljoin uses as
    is (http(s), a host, a path without params, dot segments or doubled slashes), else None."""
    try:
        parts = urlsplit(base)
    except ValueError:
        return None
    path = parts.path
    if (parts.scheme not in ("http", "https") or not parts.netloc or ";" in path or "//" in path
            or "." in path.split("/")[:-1] or ".." in path.split("/") or path.endswith("/.")):
        return None
    if path and path[0] != "/":
        return None
    return parts.scheme + "://" + parts.netloc, path[:path.rfind("/") + 1] or "/"


# --------------------------------------------------------------------------- the walk


_TOKEN_CACHE: dict[str, tuple[bool, bool]] = {}


def _class_hints(attrs: dict[str, str | None]) -> tuple[bool, bool]:
    """(negative, positive) class/id hints of an element, cached by the class+id string (pages and
    sites repeat the same few class names, so the split is done once per distinct string)."""
    s = (attrs.get("class") or "") + " " + (attrs.get("id") or "")
    hit = _TOKEN_CACHE.get(s)
    return _hints_of(s) if hit is None else hit


def _hints_of(s: str) -> tuple[bool, bool]:
    """The hints of a class+id string not in the cache yet (added to it)."""
    toks = set(_TOKEN_SPLIT.split(s.lower()))
    hit = (not toks.isdisjoint(NEGATIVE_TOKENS), not toks.isdisjoint(POSITIVE_TOKENS))
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
            b = _Block(text, tuple(path), link_chars, pending, tag_of[path[-1]])
            blocks.append(b)
            items.append(("t", b))
            return 0
    return pending


def _walk_py(root: Any, base: str) -> tuple[list[_Block], list[tuple[str, Any]], list[int], list[str], set[int], dict[int, int]]:
    """One DFS over the DOM; returns blocks, the ordered item list, parents, tags, negative elements and
    class/id weights of the container elements. Block elements are numbered 1, 2, ... in document
    (pre)order; ``parent_of[e]`` and ``tag_of[e]`` are lists indexed by that number (0: no element)."""
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
        items.append(("i", _Image(*fields, tuple(path))))
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
                        neg, pos = _class_hints(attrs)
                        if neg or pos:
                            eid = len(tag_of)  # the number this element gets below
                            neg = neg and tag not in _NEVER_NEGATIVE
                            if neg:
                                negative.add(eid)
                            w = (25 if pos else 0) - (25 if neg else 0)
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
            push(node.next)
            push(sep)
            node = node.child
            continue
        elif k == 0:  # inline: unwrapped
            ch = node.child
            if ch is not None:
                push(node.next)
                push(_EXIT_INLINE)
                node = ch
                continue
        elif k == _K_LINK:
            ch = node.child
            if ch is not None:
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


# --------------------------------------------------------------------------- the compiled walk

# selectolax releases whose lexbor struct layouts pmd/interleaved/_walk.c was checked against (lexbor
# 3.1.0 in selectolax 1.0.2). Any other version uses the Python walk.
VERIFIED_SELECTOLAX = frozenset({"1.0.2"})
_PROBE_HTML = (
    "<!DOCTYPE html><html><head><title>t</title></head><body class='b'><!-- c --><div id='m' class=\"x  y\" "
    "hidden data-x>\u00a0<p>Caf\u00e9 <b>a</b><br>b<a href='/l'> link \u2003</a>\v</p><amp-img src='a.jpg' "
    "width=3></amp-img><my-el Foo='1' xlink:href='h' style='display: NONE'>x</my-el><picture><source "
    "srcset='s.webp 2x'><!-- n --><img src='i.jpg' alt=''></picture><svg><path d='M0'/></svg>"
    "<table><tr><td>c\u3000d</td></tr></table><fb:like aria-hidden=true>f</fb:like></div>\ud83d\ude00"
    "<img srcset='' src=''><section style='visibility:hidden'>h</section><ul class='menu share'><li>l</li>"
    "</ul></body></html>"
)


def _check_layout(mod: Any) -> str | None:
    """Compare what the C side reads from every node of a probe document with selectolax's own API
    (tag id, links, text, attributes, names) and both walks' results; the problem, or None."""
    tree = LexborHTMLParser(_PROBE_HTML)
    root = tree.root
    if root is None or tree.body is None:
        return "probe document has no root"
    nodes = [root, *root.traverse(include_text=True)]
    for n in nodes:
        tid, _type, nxt, parent, child, text, attrs, name = mod.probe(n.mem_id)
        want_text = n.text_content.encode("utf-8") if n.text_content is not None else None
        want = (n.tag_id, n.next.mem_id if n.next else 0, n.parent.mem_id if n.parent else 0,
                n.first_child.mem_id if n.first_child else 0, want_text, n.tag)
        got = (tid, nxt, parent, child, text, name)
        if got != want:
            return f"node {n.tag!r}: C read {got!r}, selectolax says {want!r}"
        if attrs is not None and attrs != n.attributes:
            return f"node {n.tag!r}: C attributes {attrs!r}, selectolax says {n.attributes!r}"
    for body in (tree.body, root):
        a = _walk_py(body, "https://example.org/a/")
        b = mod.walk(body.mem_id, body.tag, "https://example.org/a/")
        if _walk_key(a) != _walk_key(b):
            return "walk results differ on the probe document"
        for mc in (True, False):
            if _assemble(body, "https://example.org/a/", mc, _walk_py) != mod.extract(body.mem_id, body.tag, "https://example.org/a/", mc):
                return "documents differ on the probe document"
    return None


def _walk_key(res: tuple) -> tuple:
    """A walk's result in comparable form (blocks and images as tuples)."""
    blocks, items, parent_of, tag_of, negative, weight = res
    conv = [(k, (it.text, it.path, it.link_chars, it.sep, it.tag) if k == "t" else
             (it.url, it.src, it.alt, it.width, it.height, it.path)) for k, it in items]
    return ([(b.text, b.path, b.link_chars, b.sep, b.tag) for b in blocks], conv, parent_of, tag_of, negative, weight)


def _load_compiled() -> Any:
    """The compiled walk module, initialised and layout-checked; None (logged at debug level) when it
    is not built, the selectolax version is not a verified one, or the check fails."""
    try:
        import ctypes
        import importlib
        import os
        from importlib.metadata import version

        import selectolax.lexbor as lexbor_mod

        mod = importlib.import_module("pmd.interleaved._walk")
    except ImportError as e:
        log.debug("compiled interleaved walk not available (%s); using the Python walk", e)
        return None
    try:
        sv = version("selectolax")
        if sv not in VERIFIED_SELECTOLAX:
            log.debug("selectolax %s is not a version the compiled walk was verified with (%s); using the "
                      "Python walk", sv, ", ".join(sorted(VERIFIED_SELECTOLAX)))
            return None
        # the loaded selectolax extension itself (RTLD_NOLOAD): its two qualified-name functions
        lib = ctypes.CDLL(lexbor_mod.__file__, mode=os.RTLD_NOLOAD | os.RTLD_LOCAL)
        attr_qname = ctypes.cast(lib.lxb_dom_attr_qualified_name, ctypes.c_void_p).value
        elem_qname = ctypes.cast(lib.lxb_dom_element_qualified_name, ctypes.c_void_p).value
        special = {tid: name for tid, name in lexbor_mod._TAG_TO_NAME.items()}
        mod.init(attr_qname, elem_qname, KIND, BLOCK_SEP, special, _NEVER_NEGATIVE, _TOKEN_CACHE, _hints_of,
                 _is_hidden, _img_item, _picture_item, _fix_nul, _Block, _Image, TAG_BONUS, _PARA_TAGS,
                 _REGION_TAGS, _BOILERPLATE_LINE.match)
        # its own <img> path: only with the same attribute and placeholder lists as here
        attrs, parts = mod.set_image_fields(_image_fields_of)
        if attrs != IMG_SRCSET_ATTRS + IMG_URL_ATTRS or parts != _PLACEHOLDER_PARTS:
            mod.set_image_fields(None)
            log.debug("compiled <img> path disabled: its attribute lists differ from extract.py's")
        problem = _check_layout(mod)
    except Exception as e:  # noqa: BLE001 - any failure means: do not use it
        problem = f"{type(e).__name__}: {e}"
    if problem:
        log.debug("compiled interleaved walk disabled: %s; using the Python walk", problem)
        return None
    return mod


def _walk_c(root: Any, base: str) -> tuple[list[_Block], list[tuple[str, Any]], list[int], list[str], set[int], dict[int, int]]:
    """``_walk_py`` in C (pmd/interleaved/_walk.c); the caller keeps the tree alive."""
    return _cwalk.walk(root.mem_id, root.tag, base)


_walk = _walk_py  # set at the end of the module, once everything the check runs is defined
_cwalk: Any = None
WALKER = "python"


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


# --------------------------------------------------------------------------- main content


def _select(blocks: list[_Block], parent_of: list[int], tag_of: list[str], negative: set[int],
            weight: dict[int, int]) -> tuple[set[int] | None, set[int]]:
    """The content region (a set of container ids; None = whole page) and the negative containers that
    still apply (those that are not ancestors of the chosen container)."""
    n_el = len(tag_of)
    text_len = [0] * n_el
    link_len = [0] * n_el
    score: dict[int, float] = {}
    for b in blocks:  # text of each block on its innermost container, then summed up the tree once
        e = b.path[-1]
        text_len[e] += len(b.text)
        link_len[e] += b.link_chars
    for e in range(n_el - 1, 0, -1):  # document (pre)order: children come after their parents
        t = text_len[e]
        if t:
            par = parent_of[e]
            if par:
                text_len[par] += t
                link_len[par] += link_len[e]
    for b in blocks:
        own = len(b.text) - b.link_chars
        if own < 25 or len(b.path) < 2:
            continue
        s = 1.0 + b.text.count(",") + b.text.count("，") + b.text.count("、") + min(own / 100.0, 3.0)
        for level, e in enumerate(reversed(b.path[:-1][-3:]) if b.tag in _PARA_TAGS
                                  else reversed(b.path[-3:])):
            if e not in score:
                score[e] = float(TAG_BONUS.get(tag_of[e], 0) + weight.get(e, 0))
            score[e] += s / (1.0, 2.0, 6.0)[level]
    if not score:
        return None, negative
    final = {e: s * (1.0 - link_len[e] / max(text_len[e] or 1, 1)) for e, s in score.items()}
    top = max(final, key=final.__getitem__)
    if final[top] < 5:
        return None, negative
    ancestors = set()
    e = top
    while e:
        ancestors.add(e)
        e = parent_of[e]
    region = {top}
    parent = parent_of[top]
    threshold = max(10.0, final[top] * 0.2)
    if parent:
        for e in range(1, n_el):
            if parent_of[e] != parent or e == top or e in negative:
                continue
            if final.get(e, 0.0) >= threshold:
                region.add(e)
                continue
            tl = text_len[e]
            ld = link_len[e] / tl if tl else 1.0
            if tag_of[e] in _REGION_TAGS:
                if (tl > 80 and ld < 0.25) or (0 < tl <= 80 and ld == 0):
                    region.add(e)
    return region, negative - ancestors


# --------------------------------------------------------------------------- public API


def extract_document(
    html: bytes | str,
    url: str,
    *,
    charset: str | None = None,
    general_metadata: dict[str, Any] | None = None,
    main_content: bool = True,
) -> InterleavedDocument:
    """Extract text blocks and images in page order as an ``InterleavedDocument``.

    ``charset`` is the HTTP header's (if any); ``main_content=False`` keeps every non-boilerplate block
    and image of the page instead of only the article region. Consecutive kept blocks merge into one
    text with paragraph separators, so texts and images alternate as in OBELICS.
    """
    if isinstance(html, str):
        tree, enc = LexborHTMLParser(html), "str"
    else:
        data, enc = to_utf8(html, charset)
        tree = LexborHTMLParser(data)
    base = url
    title = None
    head = tree.head
    if head is not None:
        b = head.css_first("base[href]")
        if b is not None:
            href = (b.attributes.get("href") or "").strip()
            if href:
                base = urljoin(url, href)
        t = head.css_first("title")
        if t is not None:
            title = " ".join(t.text().split()) or None
    root = tree.body or tree.root
    if root is not None and _walk is _walk_c:  # the walk, selection and assembly below, in C
        texts, images, metadata = _cwalk.extract(root.mem_id, root.tag, base, main_content)
    else:
        texts, images, metadata = _assemble(root, base, main_content)
    gm: dict[str, Any] = {"url": url, "charset": enc, "title": title}
    if general_metadata:
        gm.update(general_metadata)
    return InterleavedDocument(url=url, texts=texts, images=images, metadata=metadata, general_metadata=gm)


def _assemble(root: Any, base: str, main_content: bool, walk: Any = None,
              ) -> tuple[list[str | None], list[str | None], list[dict[str, Any] | None]]:
    """The walk (``walk``, default: the one in use), main-content selection and the merge of kept blocks
    into texts between images."""
    if root is None:
        blocks, items, parent_of, tag_of, negative, weight = [], [], [0], [""], set(), {}
    else:
        blocks, items, parent_of, tag_of, negative, weight = (walk or _walk)(root, base)
    if main_content:
        region, neg = _select(blocks, parent_of, tag_of, negative, weight)
    else:
        region, neg = None, negative
    texts: list[str | None] = []
    images: list[str | None] = []
    metadata: list[dict[str, Any] | None] = []
    buf: list[str] = []
    skipped = False

    def flush_text() -> None:
        if buf:
            texts.append("".join(buf))
            images.append(None)
            metadata.append(None)
            buf.clear()

    for kind, it in items:
        # in the region and under no boilerplate container; then the block's own link density and
        # boilerplate-line checks
        p = it.path
        if (neg and not neg.isdisjoint(p)) or (region is not None and region.isdisjoint(p)):
            skipped = True
            continue
        if kind == "t":
            n = len(it.text)
            ld = it.link_chars / n if n else 1.0
            if ld > 0.5 or (ld > 0.25 and n < 200) or (n < 40 and _BOILERPLATE_LINE.match(it.text)):
                skipped = True
                continue
            if buf:
                buf.append("\n\n" if skipped else (SEPARATORS[it.sep] or " "))
            buf.append(it.text)
            skipped = False
        else:
            flush_text()
            skipped = False
            texts.append(None)
            images.append(it.url)
            metadata.append({"src": it.src, "alt_text": it.alt, "rendered_width": it.width,
                             "rendered_height": it.height})
    flush_text()
    return texts, images, metadata


# the compiled walk when it is built, for a verified selectolax, and passes the layout check at import
_cwalk = _load_compiled()
_walk = _walk_c if _cwalk is not None else _walk_py
WALKER = "compiled" if _cwalk is not None else "python"
try:  # the UTF-8 check needs no lexbor layout: used whenever the module is built
    from pmd.interleaved._walk import utf8_valid as _utf8_valid
except ImportError:
    pass
