"""Bytes of a web page → text: a byte-order mark, the HTTP header's charset, a ``<meta charset>``, UTF-8.

lexbor reads bytes as UTF-8, so a page that is UTF-8 already goes to it as it is (no decode/encode
round trip); anything else is decoded here and re-encoded. Only text encodings a browser knows are
honoured (a declared ``punycode``, ``idna`` or ``rot13`` is treated as unknown, not run). When no
candidate decodes cleanly, the first one that is still plausible wins with U+FFFD for the bad bytes
(one stray byte in a UTF-8 page keeps the page UTF-8 instead of turning it into cp1252 mojibake),
and the number of undecodable sequences is returned so the caller can count it.
"""

from __future__ import annotations

import codecs
import re

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)

# Python codec names of the WHATWG encoding standard's encodings (and their common aliases): the
# only declarations honoured.
_TEXT_CODECS = frozenset({
    "utf-8", "utf-16", "utf-16-be", "utf-16-le", "cp866", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5",
    "iso8859-6", "iso8859-7", "iso8859-8", "iso8859-10", "iso8859-11", "iso8859-13", "iso8859-14", "iso8859-15",
    "iso8859-16", "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic", "cp874", "tis-620", "cp1250", "cp1251", "cp1252",
    "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "gbk", "gb2312", "gb18030", "hz", "big5",
    "big5hkscs", "euc_jp", "euc_jis_2004", "iso2022_jp", "shift_jis", "shift_jisx0213", "cp932", "euc_kr",
    "cp949", "iso2022_kr",
})
_AS_CP1252 = frozenset({"iso8859-1", "ascii"})  # what browsers do (WHATWG encoding standard)
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _codec(label: str) -> str | None:
    """The encoding a declared charset label names (the label itself, lower-cased, which is what a
    document records; ``cp1252`` for the Latin-1/ASCII labels), or None when it is not a text encoding
    a browser would use (unknown names, ``punycode``, ``idna``, ``base64``, ...)."""
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):
        return None
    if name in _AS_CP1252:
        return "cp1252"
    return label if name in _TEXT_CODECS else None


def _candidates(data: bytes, charset: str | None) -> list[str]:
    """Declared encodings in priority order (HTTP header, then ``<meta>`` in the first 4 KB), then UTF-8."""
    cands: list[str] = []
    enc = _codec(charset) if charset else None
    if enc is not None:
        cands.append(enc)
    m = _META_CHARSET.search(data[:4096])
    if m:
        enc = _codec(m.group(1).decode("ascii", "replace"))
        if enc is not None and codecs.lookup(enc).name.startswith("utf-16"):
            enc = "utf-8"  # a <meta> that could be read as ASCII is not UTF-16 (WHATWG)
        if enc is not None and enc not in cands:
            cands.append(enc)
    if not any(codecs.lookup(c).name == "utf-8" for c in cands):
        cands.append("utf-8")
    return cands


def _lenient(data: bytes, enc: str) -> tuple[str, int, bool]:
    """``data`` decoded with U+FFFD for bad sequences: (text, how many were bad, whether ``enc`` is
    plausible: more well-formed non-ASCII characters than bad sequences)."""
    text = data.decode(enc, errors="replace")
    bad = text.count("\ufffd") - (data.count(b"\xef\xbf\xbd") if codecs.lookup(enc).name == "utf-8" else 0)
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    return text, bad, non_ascii - bad > bad


def decode_counted(data: bytes, charset: str | None = None) -> tuple[str, str, int]:
    """Bytes → (text, encoding used, undecodable sequences replaced by U+FFFD).

    A byte-order mark outranks any declaration (WHATWG); then the first candidate (``_candidates``)
    that decodes cleanly; else the first that is plausible with replacements; else cp1252."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            text, bad, _ = _lenient(data, enc)
            return text, enc, bad
    cands = _candidates(data, charset)
    for enc in cands:
        try:
            return data.decode(enc), enc, 0
        except UnicodeError:
            continue
    for enc in cands:
        if enc != "cp1252":
            text, bad, plausible = _lenient(data, enc)
            if plausible:
                return text, enc, bad
    text, bad, _ = _lenient(data, "cp1252")
    return text, "cp1252", bad


def decode_html(data: bytes | str, charset: str | None = None) -> tuple[str, str]:
    """Bytes → (text, encoding used); see ``decode_counted``."""
    if isinstance(data, str):
        return data, "str"
    text, enc, _ = decode_counted(data, charset)
    return text, enc


def _utf8_valid_py(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


_utf8_valid = _utf8_valid_py  # the compiled check when pmd.interleaved._walk is built (below)


def to_utf8_counted(data: bytes, charset: str | None = None) -> tuple[bytes, str, int]:
    """Bytes for lexbor (which reads bytes as UTF-8), the encoding used and the undecodable sequences:
    the input itself when it is valid UTF-8 and nothing else is declared (no decode/encode round
    trip), else ``decode_counted``'s text re-encoded."""
    if codecs.lookup(_candidates(data, charset)[0]).name == "utf-8" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        if data.isascii() or _utf8_valid(data):
            return data, "utf-8", 0
    text, enc, bad = decode_counted(data, charset)
    return text.encode("utf-8", errors="replace"), enc, bad


def to_utf8(data: bytes, charset: str | None = None) -> tuple[bytes, str]:
    """``to_utf8_counted`` without the count."""
    out, enc, _ = to_utf8_counted(data, charset)
    return out, enc


try:  # the compiled check (no lexbor layout needed): used whenever pmd.interleaved._walk is built
    from pmd.interleaved._walk import utf8_valid as _utf8_valid
except ImportError:
    pass
