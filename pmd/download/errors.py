"""Stable error classes for failed downloads, from img2dataset's free-text error messages.

img2dataset reports a failure as ``str(exception)`` (``HTTP Error 404: Not Found``,
``<urlopen error timed out>``, ``Image decoding error``...). Counters, rejects and
``pmd retry-failed`` need a short stable class instead; the message is kept beside it.
"""

from __future__ import annotations

import re

#: HTTP codes that get their own class; other codes become ``http_error``.
KNOWN_HTTP_CODES = frozenset({400, 401, 403, 404, 408, 410, 429, 500, 502, 503, 504})
#: Classes worth retrying later (``pmd retry-failed``): the server or network may recover.
TRANSIENT_ERRORS = frozenset({
    "timeout", "http_408", "http_429", "http_500", "http_502", "http_503", "http_504", "http_error",
    "connection_refused", "connection_reset", "dns_error", "truncated_image", "download_error",
    "missing_from_downloader", "download_deadline",
})

_HTTP = re.compile(r"HTTP Error (\d{3})")
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\burl_refused_[a-z_]+"), ""),  # keeps the matched class itself (redirect guard)
    (re.compile(r"\b(?:response_too_large|download_deadline)\b"), ""),  # budgets (pmd.download.fetch_hooks)
    (re.compile(r"X-Robots-Tag|disallowed_by_header", re.I), "disallowed_by_header"),
    (re.compile(r"IncompleteRead|truncated|Premature end", re.I), "truncated_image"),
    (re.compile(r"timed out|timeout", re.I), "timeout"),
    (re.compile(r"Image decoding error|cannot identify image|not an image|unknown file format", re.I),
     "not_an_image"),
    (re.compile(r"image too small"), "image_too_small"),
    (re.compile(r"image area too large"), "image_too_large"),
    (re.compile(r"aspect ratio too large"), "bad_aspect_ratio"),
    (re.compile(r"hash mismatch"), "hash_mismatch"),
    (re.compile(r"redirect", re.I), "too_many_redirects"),
    (re.compile(r"Name or service not known|nodename nor servname|Temporary failure in name resolution|"
                r"No address associated|getaddrinfo failed", re.I), "dns_error"),
    (re.compile(r"Connection refused", re.I), "connection_refused"),
    (re.compile(r"Connection reset|Connection aborted|RemoteDisconnected|BadStatusLine", re.I),
     "connection_reset"),
    (re.compile(r"SSL|CERTIFICATE", re.I), "ssl_error"),
    (re.compile(r"unknown url type|no host given|URL can't contain control", re.I), "bad_url"),
]


def classify_error(message: str | None, status: str | None = None) -> str:
    """The stable class of one img2dataset failure (``http_404``, ``timeout``, ``not_an_image``,
    ``truncated_image``, ``disallowed_by_header``, ``url_refused_*``, ... or ``download_error``)."""
    text = message or ""
    m = _HTTP.search(text)
    if m:
        code = int(m.group(1))
        return f"http_{code}" if code in KNOWN_HTTP_CODES else "http_error"
    for pattern, cls in _RULES:
        hit = pattern.search(text)
        if hit:
            return cls or hit.group(0)
    if status == "failed_to_resize":
        return "decode_error"
    return "download_error"


def is_transient(error: str) -> bool:
    """True for failures a later retry may fix (timeouts, 5xx, resets), False for 404, not_an_image..."""
    return error in TRANSIENT_ERRORS
