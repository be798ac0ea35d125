"""Text metrics of the interleaved filters: computed once per paragraph and document, stored on the record.

Each kept text position carries ``metadata[i]["paragraphs"]`` (one dict per paragraph of
``texts[i].split("\\n\\n")``) and ``general_metadata["metrics"]`` the document's; the rules
(:mod:`pmd.interleaved.rules`) only read these numbers, so a stricter threshold can be re-applied
to a finished build without re-parsing HTML. The word tokeniser, special-character counts and
repetition ratios run in C (``pmd/interleaved/_textstats.c``) when it is built, with the same values
(compared on every real paragraph in tests/test_interleaved_filters.py); :data:`TEXTSTATS` says which.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache
from math import isqrt
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from pmd.records import InterleavedDocument

WORDS_DIR = Path(__file__).resolve().parent / "words"
_SPECIAL = tuple(string.punctuation + string.digits + string.whitespace + "“”‘’«»…–—·•©®™°€£$¥§¶|")
_SENT_PUNCT = tuple(".!?,;:…。！？，；：")
_PARA_SPLIT = "\n\n"
# one regex scan instead of a str.count per special character; characters listed twice in _SPECIAL
# ("$", "|") were counted twice by the per-character counts and still are
_SPECIAL_RE = re.compile("[" + re.escape("".join(sorted(set(_SPECIAL)))) + "]")
_SPECIAL_TWICE = tuple(c for c in set(_SPECIAL) if _SPECIAL.count(c) > 1)
_SPECIAL_CHARS = "".join(_SPECIAL)  # as listed: "$" and "|" twice
_SENT_PUNCT_CHARS = "".join(_SENT_PUNCT)

# Compiled word tokeniser, special-character count and character repetition ratios
# (pmd/interleaved/_textstats.c; the same values, compared on every real paragraph in
# tests/test_interleaved_filters.py). Without it the Python/numpy code below is used.
try:
    from pmd.interleaved import _textstats as _ts
except ImportError:  # not built (no C compiler at install)
    _ts = None
#: Which text-statistics code runs ("compiled" or "python"), recorded in interleaved manifests.
TEXTSTATS = "compiled" if _ts is not None else "python"
_TS_COMPILED = _ts


def use_textstats(name: str) -> str:
    """Switch the text statistics to ``"python"`` or ``"compiled"`` (when built); returns the one in use.
    For tests and benchmarks (``bench/interleaved_extract.py --python``): the values are the same."""
    global _ts, TEXTSTATS
    if name not in ("python", "compiled"):
        raise ValueError(f"unknown text-statistics module {name!r}")
    _ts = _TS_COMPILED if name == "compiled" else None
    TEXTSTATS = "compiled" if _ts is not None else "python"
    return TEXTSTATS


@lru_cache(maxsize=None)
def word_list(name: str) -> frozenset[str]:
    """A bundled word list (``words/<name>.txt``; ``#`` starts a comment)."""
    lines = (WORDS_DIR / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def words_of(text: str) -> list[str]:
    """Lower-cased words: runs of letters/digits (inner apostrophes kept), punctuation dropped."""
    if _ts is not None:
        return _ts.words(text.lower())
    return _WORD.findall(text.lower())


def _count_special(text: str) -> int:
    """Characters of ``_SPECIAL`` in ``text`` (``$`` and ``|``, listed twice there, count twice)."""
    if _ts is not None:
        return _ts.count_chars(text, _SPECIAL_CHARS)
    return len(_SPECIAL_RE.findall(text)) + sum(map(text.count, _SPECIAL_TWICE))


def repetition_ratio(items: list[Any]) -> float:
    """Share of all n-gram occurrences taken by the most frequent repeated n-grams (the top
    ``floor(sqrt(distinct))`` among those seen more than once): 0 for text without repetition."""
    if not items:
        return 0.0
    counts = Counter(items)
    rep = sorted((c for c in counts.values() if c > 1), reverse=True)
    if not rep:
        return 0.0
    k = max(isqrt(len(counts)), 1)
    return sum(rep[:k]) / len(items)


def repeated_fraction(items: list[Any]) -> float:
    """Share of n-gram occurrences whose n-gram occurs more than once (word n-gram repetition)."""
    if not items:
        return 0.0
    counts = Counter(items)
    return sum(c for c in counts.values() if c > 1) / len(items)


def _word_rep(words: list[str], n: int) -> float:
    """``repeated_fraction(word_ngrams(words, n))``."""
    if _ts is not None:
        return _ts.word_rep(words if type(words) is list else list(words), n)
    return repeated_fraction(word_ngrams(words, n))


def char_ngrams(text: str, n: int) -> list[str]:
    return [text[i:i + n] for i in range(len(text) - n + 1)]


_MULT = 1099511628211


def _ngram_hashes(codes: np.ndarray, n: int) -> np.ndarray:
    """Hashes ``sum(codes[i + j] * _MULT ** (n - 1 - j)) mod 2**64`` of every length-``n`` window, the
    value the rolling loop ``h = h * _MULT + codes[i + j]`` gives, built by doubling window lengths
    (4 array steps of 2 operations for n = 10 instead of 10)."""
    size = codes.size
    acc: np.ndarray | None = None
    acc_len = 0
    cur, cur_len = codes, 1
    k = n
    with np.errstate(over="ignore"):
        while True:
            if k & 1:
                if acc is None:
                    acc, acc_len = cur, cur_len
                else:  # acc's window followed by cur's
                    cnt = size - acc_len - cur_len + 1
                    acc = acc[:cnt] * np.uint64(pow(_MULT, cur_len, 1 << 64)) + cur[acc_len:acc_len + cnt]
                    acc_len += cur_len
            k >>= 1
            if not k:
                break
            cnt = size - 2 * cur_len + 1
            cur = cur[:cnt] * np.uint64(pow(_MULT, cur_len, 1 << 64)) + cur[cur_len:cur_len + cnt]
            cur_len *= 2
    return acc[:size - n + 1]  # type: ignore[index]


def char_repetition_ratio(text: str, n: int = 10) -> float:
    """``repetition_ratio(char_ngrams(text, n))`` computed on 64-bit rolling hashes with numpy
    (a 10 k-character document costs well under a millisecond instead of 10 k string slices)."""
    m = len(text) - n + 1
    if m <= 0:
        return 0.0
    if m < 64:
        return repetition_ratio(char_ngrams(text, n))
    if _ts is not None:
        r = _ts.char_rep_ratio(text, n)
        if r is not None:
            return r
    return _char_repetition_ratio_np(text, n)


def _char_repetition_ratio_np(text: str, n: int) -> float:
    m = len(text) - n + 1
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    h = np.sort(_ngram_hashes(codes, n))  # np.unique's counts, without its extra passes
    bounds = np.flatnonzero(np.concatenate(([True], h[1:] != h[:-1], [True])))
    counts = np.diff(bounds)
    rep = counts[counts > 1]
    if rep.size == 0:
        return 0.0
    k = max(isqrt(counts.size), 1)
    top = np.sort(rep)[::-1][:k]
    return float(top.sum()) / m


def word_ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    """Consecutive word n-grams as tuples (built by ``zip`` over shifted views, in C)."""
    if len(words) < n:
        return []
    return list(zip(*(words[i:] for i in range(n))))


def char_repetition_ratios(texts: list[str], n: int = 10) -> list[float]:
    """``char_repetition_ratio`` of many texts in one vectorised pass (n-grams never cross texts):
    the hashes of all texts are sorted once by (text, hash), and each text's top-k repeated counts
    are summed with group ranks, so a document's paragraphs cost one numpy call, not one each."""
    if _ts is not None:
        r = _ts.char_rep_ratios(list(texts), n)
        if r is not None:
            return r
    return _char_repetition_ratios_np(texts, n)


def _char_repetition_ratios_np(texts: list[str], n: int = 10) -> list[float]:
    P = len(texts)
    if P == 0:
        return []
    lens = np.fromiter((len(t) for t in texts), dtype=np.int64, count=P)
    joined = "".join(texts)
    m = len(joined) - n + 1
    if m <= 0:
        return [0.0] * P
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    h = _ngram_hashes(codes, n)
    ends = np.cumsum(lens)
    pid = np.repeat(np.arange(P), lens)[:m]
    valid = np.arange(n, m + n) <= ends[pid]
    h, pid = h[valid], pid[valid]
    if h.size == 0:
        return [0.0] * P
    # group equal (text, hash) pairs: the dense rank of each hash, then one sort of rank * P + text
    # (an argsort and a plain sort are ~2x faster than lexsort on two keys; the groups are the same)
    order = np.argsort(h)
    hs = h[order]
    newh = np.empty(hs.size, dtype=bool)
    newh[0] = True
    newh[1:] = hs[1:] != hs[:-1]
    key = (np.cumsum(newh) - 1) * P + pid[order]
    key.sort()
    change = np.empty(key.size, dtype=bool)
    change[0] = True
    change[1:] = key[1:] != key[:-1]
    idx = np.flatnonzero(change)
    counts = np.diff(np.append(idx, key.size))
    upid = key[idx] % P
    distinct = np.bincount(upid, minlength=P)
    k = np.maximum(np.floor(np.sqrt(distinct) + 1e-9).astype(np.int64), 1)
    rep = counts > 1
    c2, p2 = counts[rep], upid[rep]
    o2 = np.lexsort((-c2, p2))
    c2, p2 = c2[o2], p2[o2]
    rank = np.arange(p2.size) - np.searchsorted(p2, np.arange(P))[p2]
    take = rank < k[p2]
    num = np.bincount(p2[take], weights=c2[take], minlength=P)
    total = np.bincount(pid, minlength=P)
    # one vectorised IEEE division (what float(a) / b did per text); texts without n-grams get 0.0
    return np.divide(num, total, out=np.zeros(P), where=total > 0).tolist()


def text_metrics(text: str, char_rep: float | None = None) -> dict[str, float]:
    """The OBELICS text metrics of one paragraph or document (``char_rep`` if already computed)."""
    return _text_metrics(text, char_rep)[0]


def _text_metrics(text: str, char_rep: float | None = None) -> tuple[dict[str, float], list[str]]:
    """``text_metrics`` and the words it counted (reused for the document's word repetition)."""
    words = words_of(text)
    n = len(words)
    n_chars = len(text) or 1
    if _ts is not None:
        n_special, n_punct, n_stop, n_flag = _ts.para_counts(text, _SPECIAL_CHARS, _SENT_PUNCT_CHARS, words,
                                                             word_list("stopwords_en"), word_list("flagged_en"))
    else:
        n_special = _count_special(text)
        n_punct = sum(map(text.count, _SENT_PUNCT))
        n_stop = n_flag = 0
        if n:
            n_stop = sum(map(word_list("stopwords_en").__contains__, words))
            n_flag = sum(map(word_list("flagged_en").__contains__, words))
    return {
        "words": n,
        "chars": len(text),
        "char_rep": round(char_repetition_ratio(text, 10) if char_rep is None else char_rep, 4),
        "word_rep": round(_word_rep(words, 5), 4),
        "special_ratio": round(n_special / n_chars, 4),
        "stopword_ratio": round(n_stop / n, 4) if n else 0.0,
        "flagged_ratio": round(n_flag / n, 4) if n else 0.0,
        "punct_ratio": round(n_punct / n, 4) if n else 0.0,
    }, words


def image_format(url: str) -> str | None:
    """The image format named by the URL path's extension (``jpg``, ``png``...), or None if it has none."""
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    if dot < 0 or "/" in path[dot:]:
        return None
    ext = path[dot + 1:]
    return ext if 2 <= len(ext) <= 5 and ext.isalnum() else None


def pixel_size(v: Any) -> int | None:
    """A declared HTML size (``"300"``, ``"300px"``, ``300.0``) as pixels; None for percentages and junk."""
    try:
        s = str(v).strip().lower().removesuffix("px")
        return int(float(s)) if s and not s.endswith("%") else None
    except (TypeError, ValueError):
        return None


def document_metrics(doc: InterleavedDocument, words: list[str] | None = None) -> dict[str, Any]:
    """Document metrics: the additive ones (words, characters, stop-word/flagged/special/punctuation
    ratios) aggregated from the stored paragraph metrics, the repetition ratios on the full text
    (``words``: the full text's words when already known, see ``_filter_nodes``)."""
    full = _PARA_SPLIT.join(t for t in doc.texts if t)
    paras = [m for md in doc.metadata if md and "paragraphs" in md for m in md["paragraphs"]]
    n = sum(p["words"] for p in paras)
    chars = len(full) or 1
    return {
        "words": n,
        "chars": len(full),
        "char_rep": round(char_repetition_ratio(full, 10), 4),
        "word_rep": round(_word_rep(words_of(full) if words is None else words, 5), 4),
        "special_ratio": round(sum(p["special_ratio"] * p["chars"] for p in paras) / chars, 4),
        "stopword_ratio": round(sum(p["stopword_ratio"] * p["words"] for p in paras) / n, 4) if n else 0.0,
        "flagged_ratio": round(sum(p["flagged_ratio"] * p["words"] for p in paras) / n, 4) if n else 0.0,
        "punct_ratio": round(sum(p["punct_ratio"] * p["words"] for p in paras) / n, 4) if n else 0.0,
        "images": len(doc.image_urls),
    }
