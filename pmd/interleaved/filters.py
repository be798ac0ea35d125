"""Node- and document-level quality filters with every metric stored on the record.

Metrics are computed once and stored: each kept text position carries
``metadata[i]["paragraphs"]`` (one metrics dict per paragraph of ``texts[i].split("\\n\\n")``), each
image position its URL/declared-size checks, and ``general_metadata["metrics"]`` the document's. A
stricter threshold can therefore be re-applied to a finished build without re-parsing HTML
(``refilter_document``). Every removed paragraph or image is counted by reason (node level) and
every removed document by reason (document level).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache
from math import isqrt
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

import numpy as np

from pmd.counters import StageCounters
from pmd.interleaved.config import FilterConfig
from pmd.records import InterleavedDocument
from pmd.verdict import Dropped

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



def node_reject(stage: str, reason: str, doc: InterleavedDocument, image_url: str | None = None,
                text: str | None = None) -> dict[str, Any]:
    """A reject row for one removed paragraph or image (the document's WARC pointer as its input)."""
    gm = doc.general_metadata
    return {"stage": stage, "outcome": "dropped", "reason": reason, "message": None if text is None else text[:200],
            "input_file": gm.get("warc_filename"), "input_line": gm.get("warc_record_offset"),
            "image_url": image_url, "url": doc.url}


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


def paragraph_reason(m: dict[str, float], cfg: FilterConfig) -> str | None:
    """Why a paragraph with metrics ``m`` is removed, or None to keep it."""
    w = m["words"]
    if cfg.para_min_words is not None and w < cfg.para_min_words:
        return "para_too_few_words"
    if cfg.para_max_words is not None and w > cfg.para_max_words:
        return "para_too_many_words"
    if cfg.para_max_char_rep is not None and m["char_rep"] > cfg.para_max_char_rep:
        return "para_char_repetition"
    if cfg.para_max_word_rep is not None and m["word_rep"] > cfg.para_max_word_rep:
        return "para_word_repetition"
    if cfg.para_max_special_ratio is not None and m["special_ratio"] > cfg.para_max_special_ratio:
        return "para_special_characters"
    if cfg.para_min_stopword_ratio is not None and m["stopword_ratio"] < cfg.para_min_stopword_ratio:
        return "para_few_stopwords"
    if cfg.para_max_flagged_ratio is not None and m["flagged_ratio"] > cfg.para_max_flagged_ratio:
        return "para_flagged_words"
    if (cfg.para_min_punct_ratio is not None and w >= cfg.para_punct_min_words
            and m["punct_ratio"] < cfg.para_min_punct_ratio):
        return "para_little_punctuation"
    return None


def document_reason(m: dict[str, Any], cfg: FilterConfig) -> str | None:
    """Why a document with metrics ``m`` is removed (text and language checks), or None."""
    w = m["words"]
    if cfg.require_text and w == 0:
        return "doc_no_text"
    if cfg.doc_min_words is not None and w < cfg.doc_min_words:
        return "doc_too_few_words"
    if cfg.doc_max_words is not None and w > cfg.doc_max_words:
        return "doc_too_many_words"
    if cfg.doc_max_char_rep is not None and m["char_rep"] > cfg.doc_max_char_rep:
        return "doc_char_repetition"
    if cfg.doc_max_word_rep is not None and m["word_rep"] > cfg.doc_max_word_rep:
        return "doc_word_repetition"
    if cfg.doc_max_special_ratio is not None and m["special_ratio"] > cfg.doc_max_special_ratio:
        return "doc_special_characters"
    if cfg.doc_min_stopword_ratio is not None and m["stopword_ratio"] < cfg.doc_min_stopword_ratio:
        return "doc_few_stopwords"
    if cfg.doc_max_flagged_ratio is not None and m["flagged_ratio"] > cfg.doc_max_flagged_ratio:
        return "doc_flagged_words"
    if cfg.doc_min_punct_ratio is not None and m["punct_ratio"] < cfg.doc_min_punct_ratio:
        return "doc_little_punctuation"
    if cfg.lang is not None and cfg.doc_min_lang_score is not None:
        if m.get("lang") != cfg.lang or float(m.get("lang_score") or 0.0) < cfg.doc_min_lang_score:
            return "doc_language"
    return None


def image_format(url: str) -> str | None:
    """The image format named by the URL path's extension (``jpg``, ``png``...), or None if it has none."""
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    if dot < 0 or "/" in path[dot:]:
        return None
    ext = path[dot + 1:]
    return ext if 2 <= len(ext) <= 5 and ext.isalnum() else None


def _int(v: Any) -> int | None:
    try:
        s = str(v).strip().lower().removesuffix("px")
        return int(float(s)) if s and not s.endswith("%") else None
    except (TypeError, ValueError):
        return None


def image_reason(url: str, meta: dict[str, Any] | None, cfg: FilterConfig, *, width: int | None = None,
                 height: int | None = None, fmt: str | None = None, single_colour: bool | None = None) -> str | None:
    """Why an image is removed, or None. Before download only the URL and declared sizes are known;
    after download pass ``width``/``height``/``fmt``/``single_colour`` (the pixels' truth)."""
    low = url.lower()
    for ban in cfg.image_url_bans:
        if ban in low:
            return "image_url_banned"
    fmt = fmt or image_format(url)
    if cfg.image_formats is not None and fmt is not None:
        allowed = set(cfg.image_formats)
        known_ext = fmt in {"jpg", "jpeg", "png", "webp", "gif", "svg", "bmp", "tif", "tiff", "ico", "avif", "heic"}
        if known_ext and fmt not in allowed:
            return "image_format"
    sizes = []
    if meta:
        rw, rh = _int(meta.get("rendered_width")), _int(meta.get("rendered_height"))
        if rw and rh:
            sizes.append((rw, rh))
    if width and height:
        sizes.append((width, height))
    for w, h in sizes:
        if cfg.image_min_side is not None and min(w, h) < cfg.image_min_side:
            return "image_too_small"
        if cfg.image_max_side is not None and max(w, h) > cfg.image_max_side:
            return "image_too_large"
        if cfg.image_max_aspect is not None and max(w, h) / max(min(w, h), 1) > cfg.image_max_aspect:
            return "image_aspect_ratio"
    if cfg.drop_single_colour and single_colour:
        return "image_single_colour"
    return None


def filter_nodes(doc: InterleavedDocument, cfg: FilterConfig, nodes: StageCounters,
                 images_checked: bool = False, sink: list[dict[str, Any]] | None = None) -> InterleavedDocument:
    """Drop failing paragraphs and images (counted in ``nodes`` by reason), store paragraph metrics,
    merge the remaining consecutive texts. Image counts per document are checked later."""
    return _filter_nodes(doc, cfg, nodes, images_checked, sink)[0]


def _filter_nodes(doc: InterleavedDocument, cfg: FilterConfig, nodes: StageCounters, images_checked: bool,
                  sink: list[dict[str, Any]] | None) -> tuple[InterleavedDocument, list[str]]:
    """``filter_nodes`` and the words of the kept paragraphs in order (the document's words: a word
    never spans the paragraph separator, so the document need not be tokenised again)."""
    doc_words: list[str] = []
    texts: list[str | None] = []
    images: list[str | None] = []
    metadata: list[dict[str, Any] | None] = []
    paras_of = [[p for p in (x.strip() for x in t.split(_PARA_SPLIT)) if p] if t is not None else []
                for t in doc.texts]
    flat = [p for ps in paras_of for p in ps]
    # rounded once for all paragraphs (numpy's rounding, as ``round`` on each numpy scalar did)
    reps = iter(np.round(np.asarray(char_repetition_ratios(flat), dtype=np.float64), 4).tolist()) if flat else iter(())
    for t, im, md, paras in zip(doc.texts, doc.images, doc.metadata, paras_of):
        if t is not None:
            kept, kept_m = [], []
            for para in paras:
                nodes.add_input()
                m, words = _text_metrics(para, next(reps))
                reason = paragraph_reason(m, cfg)
                if reason:
                    nodes.add_dropped(reason)
                    if sink is not None:
                        sink.append(node_reject("filter_nodes", reason, doc, text=para))
                    continue
                nodes.add_kept()
                kept.append(para)
                kept_m.append(m)
                doc_words += words
            if not kept:
                continue
            if texts and texts[-1] is not None:  # merge with the previous text (an image was removed between)
                texts[-1] = texts[-1] + _PARA_SPLIT + _PARA_SPLIT.join(kept)
                metadata[-1]["paragraphs"].extend(kept_m)  # type: ignore[index]
            else:
                texts.append(_PARA_SPLIT.join(kept))
                images.append(None)
                metadata.append({"paragraphs": kept_m})
        else:
            if not images_checked:
                nodes.add_input()
                reason = image_reason(im, md, cfg)  # type: ignore[arg-type]
                if reason:
                    nodes.add_dropped(reason)
                    if sink is not None:
                        sink.append(node_reject("filter_nodes", reason, doc, image_url=im))
                    continue
                nodes.add_kept()
            texts.append(None)
            images.append(im)
            metadata.append(dict(md or {}))
    return InterleavedDocument(doc.url, texts, images, metadata, dict(doc.general_metadata)), doc_words


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


def image_count_reason(n_images: int, cfg: FilterConfig) -> str | None:
    if n_images < cfg.min_images:
        return "doc_too_few_images"
    if cfg.max_images is not None and n_images > cfg.max_images:
        return "doc_too_many_images"
    return None


def filter_documents(
    docs: Iterable[InterleavedDocument],
    cfg: FilterConfig,
    doc_counters: StageCounters,
    node_counters: StageCounters,
    batch_size: int = 256,
    sink: list[dict[str, Any]] | None = None,
) -> Iterator[InterleavedDocument | Dropped]:
    """Node filters, then document metrics (with a batched fastText language score), then document
    filters. Yields the kept document or a ``Dropped`` with the reason (input_file = document id);
    removed paragraphs and images become rows in ``sink`` when given."""
    batch: list[InterleavedDocument] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= batch_size:
            yield from _filter_batch(batch, cfg, doc_counters, node_counters, sink)
            batch = []
    if batch:
        yield from _filter_batch(batch, cfg, doc_counters, node_counters, sink)


def _prefilter_images(doc: InterleavedDocument, cfg: FilterConfig, nc: StageCounters,
                      sink: list[dict[str, Any]] | None = None) -> tuple[InterleavedDocument, int]:
    """Image nodes first (URL and declared-size checks are cheap): a document left with too few
    images is dropped before language ID and text metrics are spent on it."""
    texts, images, metadata = [], [], []
    n = 0
    for t, im, md in zip(doc.texts, doc.images, doc.metadata):
        if t is None:
            nc.add_input()
            reason = image_reason(im, md, cfg)  # type: ignore[arg-type]
            if reason:
                nc.add_dropped(reason)
                if sink is not None:
                    sink.append(node_reject("filter_nodes", reason, doc, image_url=im))
                continue
            nc.add_kept()
            n += 1
        texts.append(t)
        images.append(im)
        metadata.append(md)
    return InterleavedDocument(doc.url, texts, images, metadata, doc.general_metadata), n


def _filter_batch(batch: list[InterleavedDocument], cfg: FilterConfig, dc: StageCounters,
                  nc: StageCounters, sink: list[dict[str, Any]] | None = None) -> Iterator[InterleavedDocument | Dropped]:
    todo = []
    for d in batch:
        dc.add_input()
        pre, n_img = _prefilter_images(d, cfg, nc, sink)
        reason = image_count_reason(n_img, cfg)
        if reason:
            dc.add_dropped(reason)
            yield Dropped(reason, d.id, None, d.url)
            continue
        todo.append((d, pre))
    # language next (Flamingo M3W's first text step; spares the metrics of pages dropped anyway)
    langs: list[tuple[str, float] | None] = [None] * len(todo)
    if todo and cfg.lang is not None and cfg.doc_min_lang_score is not None:
        from pmd.text.langid import get_identifier

        cut = cfg.lang_max_chars
        langs = list(get_identifier().predict([" ".join(t for t in p.texts if t)[:cut] for _, p in todo]))
    for (d, pre), lang in zip(todo, langs):
        if lang is not None and (lang[0] != cfg.lang or lang[1] < cfg.doc_min_lang_score):  # type: ignore[operator]
            dc.add_dropped("doc_language")
            yield Dropped("doc_language", d.id, None, d.url)
            continue
        f, words = _filter_nodes(pre, cfg, nc, True, sink)
        m = document_metrics(f, words)
        if lang is not None:
            m["lang"], m["lang_score"] = lang[0], round(lang[1], 4)
        f.general_metadata = {**f.general_metadata, "metrics": m}
        reason = document_reason(m, cfg) or image_count_reason(m["images"], cfg)
        if reason:
            dc.add_dropped(reason)
            yield Dropped(reason, d.id, None, d.url)
            continue
        dc.add_kept()
        yield f


def refilter_document(doc: InterleavedDocument, cfg: FilterConfig) -> tuple[InterleavedDocument | None, Counter]:
    """Re-apply (stricter) thresholds from the stored metrics alone, without re-parsing or recomputing.

    Returns the document (or None when it is now dropped) and the reasons counted."""
    reasons: Counter = Counter()
    texts: list[str | None] = []
    images: list[str | None] = []
    metadata: list[dict[str, Any] | None] = []
    for t, im, md in zip(doc.texts, doc.images, doc.metadata):
        if t is not None:
            paras = t.split(_PARA_SPLIT)
            ms = (md or {}).get("paragraphs") or []
            keep = [(p, m) for p, m in zip(paras, ms) if not (r := paragraph_reason(m, cfg)) or reasons.update([r])]
            if keep:
                texts.append(_PARA_SPLIT.join(p for p, _ in keep))
                images.append(None)
                metadata.append({**(md or {}), "paragraphs": [m for _, m in keep]})
        else:
            r = image_reason(im, md, cfg, width=(md or {}).get("original_width"),  # type: ignore[arg-type]
                             height=(md or {}).get("original_height"), single_colour=(md or {}).get("single_colour"))
            if r:
                reasons[r] += 1
                continue
            texts.append(None)
            images.append(im)
            metadata.append(md)
    out = InterleavedDocument(doc.url, texts, images, metadata, dict(doc.general_metadata))
    m = dict(doc.general_metadata.get("metrics") or {})
    m["images"] = len(out.image_urls)
    r = document_reason(m, cfg) or image_count_reason(m["images"], cfg)
    if r:
        reasons[r] += 1
        return None, reasons
    return out, reasons
