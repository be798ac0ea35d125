"""Deduplication of interleaved documents (OBELICS §2.6 + MinHash near-duplicates).

In order: document URL (keep the latest crawl), image URLs seen in more than N documents (ads,
icons), duplicate images inside a document, paragraphs repeated >= K times within a domain,
documents left without images or text, documents with an identical image set (keep the latest),
near-duplicate documents by MinHash on the text (keep the latest). Document removals are counted
in the ``dedup`` stage, paragraph/image removals in ``dedup_nodes``; nothing is removed silently.

These steps need global counts (how many documents share a URL, an image, a paragraph).
``dedup_documents`` runs them in memory (the reference, and what unit tests exercise); the build runs
the same steps as Spark jobs (``pmd.spark.interleaved_dedup``), with the per-document parts
(``dedup_nodes``, the ``*_batches`` bodies below) shared, so both give the same answer.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from pmd.counters import CounterBook
from pmd.interleaved.config import DedupConfig
from pmd.interleaved.filters import node_reject, words_of
from pmd.interleaved.minhash import band_keys, near_duplicates, shingle_hashes, signature
from pmd.interleaved.stages import ROW_SCHEMA, counters_row, doc_drop_row, doc_row, rows_batch
from pmd.records import InterleavedDocument
from pmd.verdict import Dropped

PARA_SEP = "\n\n"


def crawl_key(doc: InterleavedDocument) -> tuple[str, str, int]:
    """Sorts crawls oldest → newest: WARC date, then WARC filename (CC names sort by time), then offset."""
    gm = doc.general_metadata
    return (str(gm.get("date") or ""), str(gm.get("warc_filename") or ""), int(gm.get("warc_record_offset") or 0))


def domain(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def _para_hash(p: str) -> str:
    return hashlib.blake2b(" ".join(p.split()).lower().encode("utf-8"), digest_size=8).hexdigest()


def _rebuild(doc: InterleavedDocument, keep_image: list[bool], drop_para: set[str], nodes: Any,
             sink: list[dict[str, Any]] | None = None) -> InterleavedDocument:
    """The document without the removed images/paragraphs, consecutive texts merged (node counts here)."""
    texts: list[str | None] = []
    images: list[str | None] = []
    metadata: list[dict[str, Any] | None] = []
    img_i = 0
    for t, im, md in zip(doc.texts, doc.images, doc.metadata):
        if t is not None:
            paras = t.split(PARA_SEP)
            pms = (md or {}).get("paragraphs")
            kept, kept_m = [], []
            for j, p in enumerate(paras):
                nodes.add_input()
                if drop_para and _para_hash(p) in drop_para:
                    nodes.add_dropped("dup_domain_paragraph")
                    if sink is not None:
                        sink.append(node_reject("dedup_nodes", "dup_domain_paragraph", doc, text=p))
                    continue
                nodes.add_kept()
                kept.append(p)
                if pms is not None and j < len(pms):
                    kept_m.append(pms[j])
            if not kept:
                continue
            if texts and texts[-1] is not None:
                texts[-1] = texts[-1] + PARA_SEP + PARA_SEP.join(kept)
                if metadata[-1] is not None and pms is not None:
                    metadata[-1].setdefault("paragraphs", []).extend(kept_m)
            else:
                texts.append(PARA_SEP.join(kept))
                images.append(None)
                metadata.append({**(md or {}), "paragraphs": kept_m} if pms is not None else md)
        else:
            ok = keep_image[img_i]
            img_i += 1
            if not ok:
                continue
            texts.append(None)
            images.append(im)
            metadata.append(md)
    return InterleavedDocument(doc.url, texts, images, metadata, dict(doc.general_metadata))


def para_hashes(doc: InterleavedDocument) -> set[str]:
    """The normalised hashes of a document's paragraphs (what domain paragraph counts count)."""
    return {_para_hash(p) for t in doc.texts if t for p in t.split(PARA_SEP)}


def dedup_nodes(d: InterleavedDocument, frequent: set[str], drop_para: set[str], cfg: DedupConfig, nodes: Any,
                min_images: int = 1, sink: list[dict[str, Any]] | None = None
                ) -> tuple[InterleavedDocument | None, str | None]:
    """Steps 2-4 for one document, given the global facts that concern it: ``frequent`` (its image
    URLs seen in more than ``max_image_url_docs`` documents) and ``drop_para`` (hashes repeated in
    its domain). Returns the rebuilt document, or None and the reason the document goes."""
    seen: set[str] = set()
    keep_image = []
    for u in d.image_urls:
        nodes.add_input()
        if u in frequent:
            nodes.add_dropped("image_url_too_frequent")
            keep_image.append(False)
            if sink is not None:
                sink.append(node_reject("dedup_nodes", "image_url_too_frequent", d, image_url=u))
        elif cfg.in_doc_images and u in seen:
            nodes.add_dropped("dup_image_in_doc")
            keep_image.append(False)
            if sink is not None:
                sink.append(node_reject("dedup_nodes", "dup_image_in_doc", d, image_url=u))
        else:
            nodes.add_kept()
            keep_image.append(True)
        seen.add(u)
    nd = _rebuild(d, keep_image, drop_para, nodes, sink)
    if len(nd.image_urls) < min_images:
        return None, "doc_no_images_after_dedup"
    if not any(t for t in nd.texts):
        return None, "doc_no_text_after_dedup"
    return nd, None


def text_signature(doc: InterleavedDocument, cfg: DedupConfig) -> Any:
    """The MinHash signature of a document's text (what near-duplicate detection compares)."""
    return signature(shingle_hashes(words_of(" ".join(t for t in doc.texts if t)), cfg.minhash_shingle),
                     cfg.minhash_perms)


def dedup_documents(
    docs: Iterable[InterleavedDocument],
    cfg: DedupConfig,
    book: CounterBook,
    min_images: int = 1,
    sink: list[dict[str, Any]] | None = None,
) -> tuple[list[InterleavedDocument], list[Dropped]]:
    """Kept documents (sorted by id) and the dropped ones with their reasons (``input_file`` = doc id);
    removed images and paragraphs become reject rows in ``sink`` when given."""
    dc, nc = book.get("dedup"), book.get("dedup_nodes")
    dropped: list[Dropped] = []
    docs = list(docs)
    dc.add_input(len(docs))

    def drop(d: InterleavedDocument, reason: str, detail: str | None = None) -> None:
        dc.add_dropped(reason)
        dropped.append(Dropped(reason, d.id, None, detail or d.url))

    # 1. document URL: keep the latest crawl
    if cfg.url:
        latest: dict[str, InterleavedDocument] = {}
        for d in docs:
            cur = latest.get(d.url)
            if cur is None or crawl_key(d) > crawl_key(cur):
                latest[d.url] = d
        keep_ids = {id(d) for d in latest.values()}
        for d in docs:
            if id(d) not in keep_ids:
                drop(d, "dup_url")
        docs = [d for d in docs if id(d) in keep_ids]

    # 2-4. node level: frequent image URLs, in-document duplicate images, domain-repeated paragraphs
    img_docs: Counter = Counter()
    for d in docs:
        img_docs.update(set(d.image_urls))
    para_docs: dict[str, Counter] = defaultdict(Counter)
    if cfg.domain_paragraph_min_count:
        for d in docs:
            para_docs[domain(d.url)].update(para_hashes(d))
    rebuilt = []
    for d in docs:
        frequent = {u for u in set(d.image_urls)
                    if cfg.max_image_url_docs is not None and img_docs[u] > cfg.max_image_url_docs}
        drop_para: set[str] = set()
        if cfg.domain_paragraph_min_count:
            counts = para_docs[domain(d.url)]
            drop_para = {h for h, c in counts.items() if c >= cfg.domain_paragraph_min_count}
        nd, reason = dedup_nodes(d, frequent, drop_para, cfg, nc, min_images, sink)
        if nd is None:
            drop(d, reason)  # type: ignore[arg-type]
        else:
            rebuilt.append(nd)
    docs = rebuilt

    # 5. identical image sets: keep the latest crawl
    if cfg.image_set:
        by_set: dict[tuple[str, ...], InterleavedDocument] = {}
        for d in docs:
            key = tuple(sorted(set(d.image_urls)))
            if not key:
                continue
            cur = by_set.get(key)
            if cur is None or crawl_key(d) > crawl_key(cur):
                by_set[key] = d
        keep_ids = {id(d) for d in by_set.values()}
        out = []
        for d in docs:
            if d.image_urls and id(d) not in keep_ids:
                drop(d, "dup_image_set")
            else:
                out.append(d)
        docs = out

    # 6. near-duplicate text (MinHash/LSH), the latest crawl first so it is the one kept
    if cfg.minhash and docs:
        order = sorted(docs, key=lambda d: (crawl_key(d), d.id), reverse=True)
        sigs = ((d.id, text_signature(d, cfg)) for d in order)
        dups = near_duplicates(sigs, cfg.minhash_bands, cfg.minhash_threshold)
        out = []
        for d in docs:
            if d.id in dups:
                drop(d, "near_duplicate", f"{d.url} ~ {dups[d.id]}")
            else:
                out.append(d)
        docs = out

    docs.sort(key=lambda d: d.id)
    dc.add_kept(len(docs))
    return docs, dropped


# ---------------------------------------------------------------------------------------------
# Per-batch bodies of the distributed dedup (``pmd.spark.interleaved_dedup``): the global facts
# (counts over all documents) are Spark jobs; what happens to one document given those facts is here.

#: Document rows with the keys the global steps group and order by.
KEYED_SCHEMA = pa.schema(list(ROW_SCHEMA) + [
    pa.field("crawl_date", pa.string()), pa.field("crawl_file", pa.string()), pa.field("crawl_offset", pa.int64()),
    pa.field("domain", pa.string()), pa.field("image_set", pa.string()),
    pa.field("image_urls", pa.list_(pa.string())), pa.field("para_hashes", pa.list_(pa.string())),
])
#: ``KEYED_SCHEMA`` plus the per-document facts of steps 2-4.
FACTS_SCHEMA = pa.schema(list(KEYED_SCHEMA) + [pa.field("frequent_images", pa.list_(pa.string())),
                                               pa.field("drop_paras", pa.list_(pa.string()))])
SIGNATURE_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("sig", pa.list_(pa.int64())),
                              pa.field("bands", pa.list_(pa.string()))])
IMAGE_SET_SEP = "\x00"


def keyed_row(doc: InterleavedDocument, cfg: DedupConfig) -> dict[str, Any]:
    """A document row with its crawl key (``crawl_key``), domain, image set and paragraph hashes."""
    date, wfile, offset = crawl_key(doc)
    urls = sorted(set(doc.image_urls))
    return {**doc_row(doc), "crawl_date": date, "crawl_file": wfile, "crawl_offset": offset,
            "domain": domain(doc.url), "image_set": IMAGE_SET_SEP.join(urls), "image_urls": urls,
            "para_hashes": sorted(para_hashes(doc)) if cfg.domain_paragraph_min_count else []}


def key_batches(batches: Iterator[pa.RecordBatch], cfg: DedupConfig) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: document rows in, ``KEYED_SCHEMA`` rows out."""
    for batch in batches:
        rows = [keyed_row(InterleavedDocument.from_row(r), cfg) for r in batch.to_pylist()]
        if rows:
            yield rows_batch(rows, KEYED_SCHEMA)


def node_batches(batches: Iterator[pa.RecordBatch], cfg: DedupConfig, min_images: int) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body of steps 2-4: ``FACTS_SCHEMA`` rows in; rebuilt documents (``KEYED_SCHEMA``),
    reject rows (dropped documents, removed images and paragraphs) and one counters row out."""
    book = CounterBook()
    nc = book.get("dedup_nodes")
    for batch in batches:
        rows: list[dict[str, Any]] = []
        for r in batch.to_pylist():
            d = InterleavedDocument.from_row(r)
            sink: list[dict[str, Any]] = []
            nd, reason = dedup_nodes(d, set(r["frequent_images"] or ()), set(r["drop_paras"] or ()), cfg, nc,
                                     min_images, sink)
            rows += [{**x, "kind": "reject"} for x in sink]
            if nd is None:
                rows.append(doc_drop_row("dedup", Dropped(reason, d.id, None, d.url)))  # type: ignore[arg-type]
            else:
                rows.append(keyed_row(nd, cfg))
        if rows:
            yield rows_batch(rows, KEYED_SCHEMA)
    yield rows_batch([counters_row(book)], KEYED_SCHEMA)


def signature_batches(batches: Iterator[pa.RecordBatch], cfg: DedupConfig) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: ``(id, texts)`` rows in; the MinHash signature (uint64 slots viewed as int64)
    and its LSH band keys out."""
    for batch in batches:
        ids, sigs, bands = [], [], []
        for r in batch.to_pylist():
            words = words_of(" ".join(t for t in r["texts"] if t))
            sig = signature(shingle_hashes(words, cfg.minhash_shingle), cfg.minhash_perms)
            ids.append(r["id"])
            sigs.append(sig.view(np.int64).tolist())
            bands.append(band_keys(sig, cfg.minhash_bands))
        if ids:
            yield pa.RecordBatch.from_arrays([pa.array(ids, pa.string()), pa.array(sigs, pa.list_(pa.int64())),
                                              pa.array(bands, pa.list_(pa.string()))], schema=SIGNATURE_SCHEMA)
