"""Small pure text normalisers shared by the source parsers (and the interleaved pipeline).

Each function does one thing, is idempotent, and takes a fast path when there is nothing to do
(YFCC alone has ~100M rows, so the common case must cost one ``in`` test).
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Sequence
from urllib.parse import unquote_plus

_TAG = re.compile(r"<[^<]+?>")  # the HF-community YFCC recipe's tag pattern


def url_decode(text: str, errors: str = "strict") -> str:
    """Form-decode YFCC-style text: ``+`` is a space, ``%XX`` a UTF-8 byte.

    Equal to ``urllib.parse.unquote_plus(text, errors=errors)``, raising the same
    ``UnicodeDecodeError`` when the escaped bytes are not UTF-8 (latin-1 escapes such as ``caf%E9``,
    a multibyte sequence cut short, stray continuation bytes, encoded surrogates). Strict by default:
    ``errors="replace"`` would turn such text into U+FFFD characters that look like a caption and
    would be kept uncounted. A ``%`` not followed by two hex digits is kept literally (not an error).
    ASCII input (all of YFCC) takes a path made of C-level codec calls, ~3x faster than
    ``unquote_plus``'s per-escape Python loop; text without ``%`` costs one ``in`` test.
    """
    if "%" not in text:
        return text.replace("+", " ") if "+" in text else text
    if text.isascii():
        try:
            raw = text.replace("+", " ").replace("\\", "\\\\").replace("%", "\\x")
            escaped = raw.encode("ascii").decode("unicode_escape").encode("latin-1")
        except (UnicodeError, ValueError):
            return unquote_plus(text, errors=errors)  # a '%' not followed by two hex digits: kept literally
        return escaped.decode("utf-8", errors)
    return unquote_plus(text, errors=errors)


def utf8_problem(text: str) -> str | None:
    """Why ``url_decode(text)`` fails, for a drop's detail (``'%E9': invalid continuation byte``),
    or None when it decodes. ``unexpected end of data`` = an incomplete sequence at the end."""
    try:
        url_decode(text)
    except UnicodeDecodeError as e:
        bad = "".join("%%%02X" % b for b in e.object[e.start:e.end])
        return f"{bad!r}: {e.reason}"
    return None


def strip_html(text: str) -> str:
    """Replace HTML tags by a space (so ``a<br>b`` stays two words); repeated until none is left."""
    if "<" not in text:
        return text
    while True:
        text, n = _TAG.subn(" ", text)
        if n == 0 or "<" not in text:
            return text


def unescape_html(text: str) -> str:
    """``&amp;`` → ``&``, ``&#39;`` → ``'`` ... (only when an ``&`` is present)."""
    if "&" not in text:
        return text
    return html.unescape(text)


def collapse_whitespace(text: str) -> str:
    """Every run of whitespace (newlines, tabs, NBSP...) becomes one space; ends stripped."""
    return " ".join(text.split())


def nfc(text: str) -> str:
    """Unicode NFC (composed form), so equal captions compare equal; ASCII is returned as is."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", text)


def ascii_only(text: str) -> str:
    """Drop every non-ASCII character (WIT's rule: keep ``ord(c) < 128``)."""
    if text.isascii():
        return text
    return text.encode("ascii", "ignore").decode("ascii")


def replace_newlines(text: str) -> str:
    """Newlines as spaces: fastText's predict raises on a newline inside a text."""
    if "\n" not in text and "\r" not in text:
        return text
    return text.replace("\r", " ").replace("\n", " ")


def clean_caption(text: str) -> str:
    """The cleaning every source applies to its caption: NFC, then whitespace collapsed."""
    return collapse_whitespace(nfc(text))


def clean_yfcc_text(text: str) -> str | None:
    """YFCC title/description: URL-decode, strip HTML tags, unescape entities, NFC, collapse spaces.

    Same as ``collapse_whitespace(nfc(unescape_html(strip_html(url_decode(text)))))``, inlined:
    it runs on every title and description of 100M rows. None when the field's ``%XX`` escapes are
    not UTF-8 (``url_decode`` raises): such a field is not a usable caption, the caller decides
    what that means (the YFCC source falls back to the title, or drops the photo with a reason).

    An incomplete sequence at the very end (``...caf%C3``) is treated the same way, not trimmed:
    the YFCC format notes (shared docs, ``pmd-sources.md`` §4.8) give the fields as form-encoded
    UTF-8 and document no length limit or truncation, and the same bytes are what a latin-1 escape at the
    end gives (``caf%E9`` is ``café`` in latin-1, a cut 3-byte lead in UTF-8), so trimming would turn
    a mis-encoded word into a silently wrong one. The drop's detail names the bytes and
    ``unexpected end of data`` (``utf8_problem``), so such cuts can be counted if they ever matter.
    """
    if not text:
        return text
    if "%" in text or "+" in text:
        try:
            text = url_decode(text)
        except UnicodeDecodeError:
            return None
    if "<" in text:
        text = strip_html(text)
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


_SEP = "\x1f"  # unit separator: never inside URL-encoded YFCC text
_TAG_NOSEP = re.compile(r"<[^<\x1f]+?>")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_yfcc_texts(texts: Sequence[str]) -> list[str | None]:
    """``[clean_yfcc_text(t) for t in texts]``, computed on one joined string.

    Decoding, tag stripping, unescaping and NFC run once over the whole batch (C-level calls),
    leaving only the whitespace collapse per text. None of these steps can cross the separator
    (tags are matched without it; entities, escapes and compositions never contain it), so the
    result is identical to the per-text function, which is used whenever a text holds the separator
    (raw or as ``%1F``), is not ASCII, or has a ``%`` that is not an escape.

    Escapes that are not UTF-8 do not send the batch to the per-text path (one latin-1 field would
    slow its 8k neighbours ~3x): the batch is decoded again with ``surrogateescape``, each bad byte
    becomes a lone surrogate inside its own text (the separator is ASCII, which a UTF-8 decoder
    never swallows into a bad sequence), and exactly the texts holding one right after decoding
    (before a tag could strip it) become None.
    """
    if not texts:
        return []
    blob = _SEP.join(texts)
    if blob.count(_SEP) != len(texts) - 1 or not blob.isascii():
        return [clean_yfcc_text(t) for t in texts]
    bad: list[int] = []  # texts whose escapes are not UTF-8
    if "%" in blob:
        try:
            raw = (blob.replace("+", " ").replace("\\", "\\\\").replace("%", "\\x").encode("ascii")
                   .decode("unicode_escape").encode("latin-1"))
        except (UnicodeError, ValueError):
            return [clean_yfcc_text(t) for t in texts]
        try:
            blob = raw.decode("utf-8")
        except UnicodeDecodeError:  # rare: some text's escapes are not UTF-8
            blob = raw.decode("utf-8", "surrogateescape")
            bad = [i for i, t in enumerate(blob.split(_SEP)) if not t.isascii() and _SURROGATE.search(t)]
        if blob.count(_SEP) != len(texts) - 1:  # a '%1F' decoded into the separator
            return [clean_yfcc_text(t) for t in texts]
    elif "+" in blob:
        blob = blob.replace("+", " ")
    if "<" in blob:
        while True:
            blob, n = _TAG_NOSEP.subn(" ", blob)
            if n == 0 or "<" not in blob:
                break
    if "&" in blob:
        blob = html.unescape(blob)
    if not blob.isascii():
        blob = unicodedata.normalize("NFC", blob)
    out: list[str | None] = collapse_whitespace_many(blob.split(_SEP))  # type: ignore[assignment]
    for i in bad:
        out[i] = None
    return out


def collapse_whitespace_many(texts: Sequence[str]) -> list[str]:
    """``[collapse_whitespace(t) for t in texts]``, skipping the split/join for texts already collapsed.

    A text is already collapsed when its only whitespace is ``' '`` (``isprintable`` is False for
    every other whitespace character), never doubled and not at either end; three C-level checks
    cost a third of the split and join, and most cleaned YFCC texts pass them.
    """
    return [t if t.isprintable() and "  " not in t and t.strip(" ") == t else " ".join(t.split())
            for t in texts]


def word_count(text: str) -> int:
    """Words = whitespace-separated tokens (the unit of FLAVA's 'more than two words')."""
    return len(text.split())
