"""The counting driver of the interleaved filters: which units meet which rules, counted by reason.

The rules (each a named unit with its config key, reason and metric) are :mod:`pmd.interleaved.rules`;
the metrics they read, computed once and stored on the record, are :mod:`pmd.interleaved.metrics`.
Per document: image rules first (cheap, and a document left without enough images is dropped before
language ID and text metrics are spent on it), then the language rule on a batch's fastText
predictions, then paragraph rules (each removed paragraph or image is a counted node-level drop and,
with a ``sink``, a reject row), document metrics and the document rules. A stricter threshold can be
re-applied to a finished build from the stored metrics alone (``refilter_document``).

The metric helpers are re-exported here (``words_of``, ``text_metrics``, ...) for the stages that
import them from this module.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Iterator

import numpy as np

from pmd.counters import StageCounters
from pmd.interleaved.config import FilterConfig
from pmd.interleaved.metrics import (_PARA_SPLIT, _SENT_PUNCT, _SENT_PUNCT_CHARS, _SPECIAL, _SPECIAL_CHARS,  # noqa: F401
                                     _SPECIAL_RE, _SPECIAL_TWICE, _WORD, TEXTSTATS, WORDS_DIR, _char_repetition_ratio_np,
                                     _char_repetition_ratios_np, _text_metrics, _ts, char_ngrams, char_repetition_ratio,
                                     char_repetition_ratios, document_metrics, image_format, repeated_fraction,
                                     repetition_ratio, text_metrics, use_textstats, word_list, word_ngrams, words_of)
from pmd.interleaved.rules import RuleSet, image_facts, rules_for
from pmd.records import InterleavedDocument
from pmd.verdict import Dropped


def node_reject(stage: str, reason: str, doc: InterleavedDocument, image_url: str | None = None,
                text: str | None = None) -> dict[str, Any]:
    """A reject row for one removed paragraph or image (the document's WARC pointer as its input)."""
    gm = doc.general_metadata
    return {"stage": stage, "outcome": "dropped", "reason": reason, "message": None if text is None else text[:200],
            "input_file": gm.get("warc_filename"), "input_line": gm.get("warc_record_offset"),
            "image_url": image_url, "url": doc.url}


def paragraph_reason(m: dict[str, float], cfg: FilterConfig) -> str | None:
    """Why a paragraph with metrics ``m`` is removed (the first failing paragraph rule), or None."""
    return rules_for(cfg).paragraph_reason(m)


def document_reason(m: dict[str, Any], cfg: FilterConfig) -> str | None:
    """Why a document with metrics ``m`` is removed (text and language rules), or None."""
    return rules_for(cfg).document_reason(m)


def image_reason(url: str, meta: dict[str, Any] | None, cfg: FilterConfig, *, width: int | None = None,
                 height: int | None = None, fmt: str | None = None, single_colour: bool | None = None) -> str | None:
    """Why an image is removed, or None. Before download only the URL and declared sizes are known;
    after download pass ``width``/``height``/``fmt``/``single_colour`` (the pixels' truth)."""
    return rules_for(cfg).image_reason(image_facts(url, meta, width=width, height=height, fmt=fmt,
                                                   single_colour=single_colour))


def _counted(reason: str | None, nodes: StageCounters, sink: list[dict[str, Any]] | None, doc: InterleavedDocument,
             image_url: str | None = None, text: str | None = None) -> bool:
    """Count one paragraph or image: kept (True), or dropped for ``reason`` with a reject row in ``sink``."""
    nodes.add_input()
    if reason:
        nodes.add_dropped(reason)
        if sink is not None:
            sink.append(node_reject("filter_nodes", reason, doc, image_url=image_url, text=text))
        return False
    nodes.add_kept()
    return True


def filter_nodes(doc: InterleavedDocument, cfg: FilterConfig, nodes: StageCounters,
                 images_checked: bool = False, sink: list[dict[str, Any]] | None = None) -> InterleavedDocument:
    """Drop failing paragraphs and images (counted in ``nodes`` by reason), store paragraph metrics,
    merge the remaining consecutive texts. Image counts per document are checked later."""
    return _filter_nodes(doc, rules_for(cfg), nodes, images_checked, sink)[0]


def _filter_nodes(doc: InterleavedDocument, rules: RuleSet, nodes: StageCounters, images_checked: bool,
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
                m, words = _text_metrics(para, next(reps))
                if not _counted(rules.paragraph_reason(m), nodes, sink, doc, text=para):
                    continue
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
            if not images_checked and not _counted(rules.image_reason(image_facts(im, md)),  # type: ignore[arg-type]
                                                   nodes, sink, doc, image_url=im):
                continue
            texts.append(None)
            images.append(im)
            metadata.append(dict(md or {}))
    return InterleavedDocument(doc.url, texts, images, metadata, dict(doc.general_metadata)), doc_words


def image_count_reason(n_images: int, cfg: FilterConfig) -> str | None:
    """Why a document with ``n_images`` kept images is dropped (too few, too many), or None."""
    return rules_for(cfg).image_count_reason(n_images)


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
    rules = rules_for(cfg)
    batch: list[InterleavedDocument] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= batch_size:
            yield from _filter_batch(batch, rules, doc_counters, node_counters, sink)
            batch = []
    if batch:
        yield from _filter_batch(batch, rules, doc_counters, node_counters, sink)


def _prefilter_images(doc: InterleavedDocument, rules: RuleSet, nc: StageCounters,
                      sink: list[dict[str, Any]] | None = None) -> tuple[InterleavedDocument, int]:
    """Image nodes first (URL and declared-size checks are cheap): a document left with too few
    images is dropped before language ID and text metrics are spent on it."""
    texts, images, metadata = [], [], []
    n = 0
    for t, im, md in zip(doc.texts, doc.images, doc.metadata):
        if t is None:
            if not _counted(rules.image_reason(image_facts(im, md)), nc, sink, doc, image_url=im):  # type: ignore[arg-type]
                continue
            n += 1
        texts.append(t)
        images.append(im)
        metadata.append(md)
    return InterleavedDocument(doc.url, texts, images, metadata, doc.general_metadata), n


def _filter_batch(batch: list[InterleavedDocument], rules: RuleSet, dc: StageCounters,
                  nc: StageCounters, sink: list[dict[str, Any]] | None = None) -> Iterator[InterleavedDocument | Dropped]:
    todo = []
    for d in batch:
        dc.add_input()
        pre, n_img = _prefilter_images(d, rules, nc, sink)
        reason = rules.image_count_reason(n_img)
        if reason:
            dc.add_dropped(reason)
            yield Dropped(reason, d.id, None, d.url)
            continue
        todo.append((d, pre))
    # language next (Flamingo M3W's first text step; spares the metrics of pages dropped anyway)
    langs: list[tuple[str, float] | None] = [None] * len(todo)
    lang_rule = rules.language
    if todo and lang_rule is not None:
        from pmd.text.langid import get_identifier

        cut = lang_rule.max_chars
        langs = list(get_identifier().predict([" ".join(t for t in p.texts if t)[:cut] for _, p in todo]))
    for (d, pre), lang in zip(todo, langs):
        if lang is not None and lang_rule is not None and not lang_rule.accepts(*lang):
            dc.add_dropped(lang_rule.reason)
            yield Dropped(lang_rule.reason, d.id, None, d.url)
            continue
        f, words = _filter_nodes(pre, rules, nc, True, sink)
        m = document_metrics(f, words)
        if lang is not None:
            m["lang"], m["lang_score"] = lang[0], round(lang[1], 4)
        f.general_metadata = {**f.general_metadata, "metrics": m}
        reason = rules.document_reason(m) or rules.image_count_reason(m["images"])
        if reason:
            dc.add_dropped(reason)
            yield Dropped(reason, d.id, None, d.url)
            continue
        dc.add_kept()
        yield f


def refilter_document(doc: InterleavedDocument, cfg: FilterConfig) -> tuple[InterleavedDocument | None, Counter]:
    """Re-apply (stricter) thresholds from the stored metrics alone, without re-parsing or recomputing.

    Returns the document (or None when it is now dropped) and the reasons counted."""
    rules = rules_for(cfg)
    reasons: Counter = Counter()
    texts: list[str | None] = []
    images: list[str | None] = []
    metadata: list[dict[str, Any] | None] = []
    for t, im, md in zip(doc.texts, doc.images, doc.metadata):
        if t is not None:
            paras = t.split(_PARA_SPLIT)
            ms = (md or {}).get("paragraphs") or []
            keep = [(p, m) for p, m in zip(paras, ms) if not (r := rules.paragraph_reason(m)) or reasons.update([r])]
            if keep:
                texts.append(_PARA_SPLIT.join(p for p, _ in keep))
                images.append(None)
                metadata.append({**(md or {}), "paragraphs": [m for _, m in keep]})
        else:
            md_ = md or {}
            r = rules.image_reason(image_facts(im, md, width=md_.get("original_width"),  # type: ignore[arg-type]
                                               height=md_.get("original_height"), single_colour=md_.get("single_colour")))
            if r:
                reasons[r] += 1
                continue
            texts.append(None)
            images.append(im)
            metadata.append(md)
    out = InterleavedDocument(doc.url, texts, images, metadata, dict(doc.general_metadata))
    m = dict(doc.general_metadata.get("metrics") or {})
    m["images"] = len(out.image_urls)
    r = rules.document_reason(m) or rules.image_count_reason(m["images"])
    if r:
        reasons[r] += 1
        return None, reasons
    return out, reasons
