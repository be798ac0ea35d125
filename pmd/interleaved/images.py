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

from pmd.counters import CounterBook
from pmd.ids import stable_id
from pmd.interleaved.config import FilterConfig
from pmd.interleaved.filters import image_reason, node_reject
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
    or ``Dropped``. ``status``/``images`` map image key → download_status row / images row."""
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
            jpg = row["jpg"]
            single = is_single_colour(jpg) if cfg.drop_single_colour else None
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
