"""Interleaved documents for people: render one document's text with its images inline.

The viewer reads the document and its image members straight from the tar shard (images are
separate members, never base64 in the JSON) and inlines the images as data URIs, so the HTML
is self-contained in a notebook output.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from pmd.stats.load import INTERLEAVED, Build, find_document
from pmd.errors import UserError

_MIME = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}


def _mime(member: str) -> str:
    return _MIME.get(member.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def document_html(doc: dict[str, Any], max_image_px: int = 320) -> str:
    """HTML of a shard document: header (url, id), then texts and images in page order."""
    parts = [
        '<div class="pmd-doc" style="font-family:sans-serif;max-width:760px;border:1px solid #ccc;'
        'padding:12px;border-radius:6px">',
        f'<div style="color:#555;font-size:12px">{html.escape(str(doc.get("url", "")))}<br>'
        f'id {html.escape(str(doc.get("id", doc.get("key", ""))))}</div>',
    ]
    texts, images = doc.get("texts", []), doc.get("images", [])
    blobs = doc.get("image_bytes") or [None] * len(images)
    metadata = doc.get("metadata") or [None] * len(texts)
    for i, (text, member) in enumerate(zip(texts, images)):
        if text is not None:
            parts.append(f'<p style="white-space:pre-wrap">{html.escape(text)}</p>')
            continue
        data = blobs[i] if i < len(blobs) else None
        alt = ""
        meta = metadata[i] if i < len(metadata) else None
        if isinstance(meta, dict):
            alt = str(meta.get("alt_text") or meta.get("alt") or "")
        if data:
            uri = f"data:{_mime(member)};base64,{base64.b64encode(data).decode('ascii')}"
            parts.append(f'<figure style="margin:8px 0"><img src="{uri}" alt="{html.escape(alt)}" '
                         f'style="max-width:{max_image_px}px;max-height:{max_image_px}px">'
                         f'<figcaption style="color:#777;font-size:11px">image {html.escape(str(member))}'
                         f'{" — " + html.escape(alt) if alt else ""}</figcaption></figure>')
        else:
            parts.append(f'<p style="color:#b00">[image {html.escape(str(member))} missing from the shard]</p>')
    gm = doc.get("general_metadata") or {}
    if gm:
        parts.append('<details><summary style="color:#555;font-size:12px">general metadata</summary><pre '
                     f'style="font-size:11px">{html.escape(json.dumps(gm, indent=1, sort_keys=True))}</pre></details>')
    parts.append("</div>")
    return "\n".join(parts)


def render_document(build: Build, doc_id: str | None = None, index: int = 0, max_image_px: int = 320) -> str:
    """HTML for one document of an interleaved build, by id or by position in the shards."""
    if build.kind != INTERLEAVED:
        raise UserError(f"{build.root} is a {build.kind} build; the document viewer needs an interleaved build")
    return document_html(find_document(build, doc_id=doc_id, index=index), max_image_px=max_image_px)
