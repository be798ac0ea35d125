"""Joining downloaded images back into documents, with the filters that need pixels.

The download engine writes one ``download_status`` row per image key and the stored JPEG of each
success. Here each image position of each document is resolved against them: a failed download,
an image whose original size/aspect fails the profile, a single-colour image (M3W) or a second
copy of the same bytes inside a document removes that position (counted by reason in
``download_nodes``); a document keeps the positions whose images arrived and is dropped with a
reason when fewer than ``min_images`` remain. Image facts (sizes, sha256) go into the metadata.
"""

from __future__ import annotations

import io
from typing import Any, Iterable, Iterator

import pyarrow as pa

from pmd.counters import CounterBook
from pmd.ids import stable_id
from pmd.interleaved.config import FilterConfig
from pmd.interleaved.filters import image_reason, node_reject
from pmd.interleaved.stages import ROW_SCHEMA, counters_row, doc_drop_row, doc_row, rows_batch
from pmd.records import InterleavedDocument
from pmd.verdict import Dropped


def image_key(url: str) -> str:
    """The download key of an image URL (same as ``ImageRef(url=url).key()``)."""
    return stable_id("img", url)


def is_single_colour(jpg: bytes, tolerance: int = 8) -> bool:
    """True when every channel's pixel values span at most ``tolerance`` (a flat placeholder image)."""
    from PIL import Image

    with Image.open(io.BytesIO(jpg)) as im:
        im.draft("RGB", (64, 64))
        ext = im.convert("RGB").getextrema()
    return all(hi - lo <= tolerance for lo, hi in ext)


def join_images(
    docs: Iterable[InterleavedDocument],
    status: dict[str, dict[str, Any]],
    images: dict[str, dict[str, Any]],
    cfg: FilterConfig,
    book: CounterBook,
    dedup_content: bool = True,
    sink: list[dict[str, Any]] | None = None,
) -> Iterator[tuple[InterleavedDocument, list[bytes]] | Dropped]:
    """Documents with only their arrived images (and those images' JPEG bytes, in position order),
    or ``Dropped``. ``status``/``images`` map image key → download_status row / images row; an images
    row without ``jpg`` (facts only) gives None blobs and must carry ``single_colour`` when the
    profile drops single-colour images."""
    dc, nc = book.get("download"), book.get("download_nodes")
    for doc in docs:
        dc.add_input()
        texts: list[str | None] = []
        imgs: list[str | None] = []
        meta: list[dict[str, Any] | None] = []
        blobs: list[bytes] = []
        seen_sha: set[str] = set()
        for t, u, md in zip(doc.texts, doc.images, doc.metadata):
            if t is not None:
                if texts and texts[-1] is not None:
                    texts[-1] = texts[-1] + "\n\n" + t
                    if md and meta[-1] is not None and "paragraphs" in md:
                        meta[-1].setdefault("paragraphs", []).extend(md["paragraphs"])
                else:
                    texts.append(t)
                    imgs.append(None)
                    meta.append(md)
                continue
            nc.add_input()
            key = image_key(u)  # type: ignore[arg-type]
            st = status.get(key)
            if st is None or st.get("status") != "success" or key not in images:
                reason = "download_" + ((st or {}).get("error") or "missing")
                nc.add_dropped(reason)
                if sink is not None:
                    sink.append(node_reject("download_nodes", reason, doc, image_url=u,
                                            text=(st or {}).get("error_message")))
                continue
            row = images[key]
            jpg = row.get("jpg")  # absent when the caller joined facts only (``single_colour`` precomputed)
            if not cfg.drop_single_colour:
                single = None
            elif "single_colour" in row:
                single = row["single_colour"]
            else:
                single = is_single_colour(jpg)
            reason = image_reason(u, None, cfg, width=row.get("original_width"), height=row.get("original_height"),  # type: ignore[arg-type]
                                  single_colour=single)
            if reason is None and dedup_content and row.get("sha256") in seen_sha:
                reason = "dup_image_content"
            if reason:
                nc.add_dropped(reason)
                if sink is not None:
                    sink.append(node_reject("download_nodes", reason, doc, image_url=u))
                continue
            nc.add_kept()
            seen_sha.add(row.get("sha256"))
            texts.append(None)
            imgs.append(u)
            meta.append({**(md or {}), "image_key": key, "sha256": row.get("sha256"), "width": row.get("width"),
                         "height": row.get("height"), "original_width": row.get("original_width"),
                         "original_height": row.get("original_height"), "single_colour": single})
            blobs.append(jpg)
        if len(blobs) < cfg.min_images:
            dc.add_dropped("no_images_after_download")
            yield Dropped("no_images_after_download", doc.id, None, doc.url)
            continue
        if cfg.require_text and not any(texts):
            dc.add_dropped("doc_no_text")
            yield Dropped("doc_no_text", doc.id, None, doc.url)
            continue
        dc.add_kept()
        yield InterleavedDocument(doc.url, texts, imgs, meta, dict(doc.general_metadata)), blobs


# ---------------------------------------------------------------------------------------------
# Per-batch bodies of the distributed download join (``pmd.spark.interleaved``).

REQUEST_SCHEMA = pa.schema([pa.field("image_key", pa.string()), pa.field("url", pa.string())])
SINGLE_COLOUR_SCHEMA = pa.schema([pa.field("image_key", pa.string()), pa.field("single_colour", pa.bool_())])
#: Documents after the join: ``ROW_SCHEMA`` plus the image key of each kept image, in position order.
JOINED_SCHEMA = pa.schema(list(ROW_SCHEMA) + [pa.field("image_keys", pa.list_(pa.string()))])
#: Per image the download facts a document needs (no bytes: those join in at shard time).
FACT_FIELDS = ("image_key", "status", "error", "error_message", "width", "height", "original_width",
               "original_height", "sha256", "single_colour")


def request_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: distinct image URLs (``url``) in, download requests ``(image_key, url)`` out."""
    for batch in batches:
        urls = batch.column("url").to_pylist()
        if urls:
            yield pa.RecordBatch.from_arrays([pa.array([image_key(u) for u in urls], pa.string()),
                                              pa.array(urls, pa.string())], schema=REQUEST_SCHEMA)


def single_colour_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: ``(image_key, jpg)`` in, ``(image_key, single_colour)`` out."""
    for batch in batches:
        keys = batch.column("image_key").to_pylist()
        flags = [is_single_colour(j) for j in batch.column("jpg").to_pylist()]
        if keys:
            yield pa.RecordBatch.from_arrays([pa.array(keys, pa.string()), pa.array(flags, pa.bool_())],
                                             schema=SINGLE_COLOUR_SCHEMA)


def join_batches(batches: Iterator[pa.RecordBatch], cfg: FilterConfig, dedup_content: bool = True
                 ) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body of the join: document rows with ``facts`` (a list of ``FACT_FIELDS``
    structs, one per distinct image key of the document) in; joined documents (``JOINED_SCHEMA``),
    reject rows and one counters row (``download``, ``download_nodes``) out."""
    book = CounterBook()
    for batch in batches:
        rows: list[dict[str, Any]] = []
        for r in batch.to_pylist():
            doc = InterleavedDocument.from_row(r)
            status: dict[str, dict[str, Any]] = {}
            images: dict[str, dict[str, Any]] = {}
            for f in r["facts"] or ():
                status[f["image_key"]] = f
                if f["status"] == "success" and f["sha256"] is not None:
                    images[f["image_key"]] = {k: f[k] for k in FACT_FIELDS if k != "single_colour" or cfg.drop_single_colour}
            sink: list[dict[str, Any]] = []
            for res in join_images([doc], status, images, cfg, book, dedup_content=dedup_content, sink=sink):
                if isinstance(res, Dropped):
                    rows.append(doc_drop_row("download", res))
                else:
                    kept, _ = res
                    keys = [m["image_key"] for m, u in zip(kept.metadata, kept.images) if u is not None]
                    rows.append({**doc_row(kept), "image_keys": keys})
            rows += [{**x, "kind": "reject"} for x in sink]
        if rows:
            yield rows_batch(rows, JOINED_SCHEMA)
    yield rows_batch([counters_row(book)], JOINED_SCHEMA)
