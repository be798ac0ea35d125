"""Absolute http(s) URLs of image references, as ``urljoin`` gives them, with fast paths for the common cases."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urljoin, urlsplit


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
