"""Join-back of downloaded images: failures, pixel filters, in-document content duplicates, dropped docs."""

from __future__ import annotations

import io

from PIL import Image

from pmd.counters import CounterBook
from pmd.interleaved.config import resolve_filters
from pmd.interleaved.images import image_key, is_single_colour, join_images
from pmd.records import InterleavedDocument
from pmd.verdict import Dropped


def _jpg(colour=None, size=(200, 160)) -> bytes:
    im = Image.new("RGB", size, colour or (10, 20, 30))
    if colour is None:
        for x in range(0, size[0], 3):
            im.putpixel((x, x % size[1]), (250, 250, 250))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _rows(spec: dict[str, tuple[bytes | None, int, int, str | None]]):
    status, images = {}, {}
    for url, (jpg, w, h, sha) in spec.items():
        k = image_key(url)
        if jpg is None:
            status[k] = {"image_key": k, "status": "failed", "error": "http_404", "error_message": "HTTP Error 404"}
        else:
            status[k] = {"image_key": k, "status": "success", "error": None}
            images[k] = {"image_key": k, "jpg": jpg, "width": w, "height": h, "original_width": w,
                         "original_height": h, "sha256": sha}
    return status, images


def test_single_colour_detection():
    assert is_single_colour(_jpg((128, 0, 0)))
    assert not is_single_colour(_jpg())


def test_join_keeps_arrived_images_and_counts_every_removal():
    u = [f"https://x.org/{i}.jpg" for i in range(5)]
    doc = InterleavedDocument("https://x.org/p", ["intro", None, "mid", None, None, None, None, "end"],
                              [None, u[0], None, u[1], u[2], u[3], u[4], None])
    good = _jpg()
    status, images = _rows({u[0]: (good, 200, 160, "a"), u[1]: (None, 0, 0, None), u[2]: (_jpg((5, 5, 5)), 200, 160, "b"),
                            u[3]: (good, 200, 160, "a"), u[4]: (good, 900, 160, "c")})
    book, sink = CounterBook(), []
    out = list(join_images([doc], status, images, resolve_filters("m3w"), book, sink=sink))
    (kept, blobs), = out
    assert kept.images == [None, u[0], None] and kept.texts == ["intro", None, "mid\n\nend"]  # texts merge
    assert blobs == [good] and kept.metadata[1]["sha256"] == "a" and kept.metadata[1]["original_width"] == 200
    nodes = book.get("download_nodes")
    assert nodes.kept == 1 and nodes.dropped == {"download_http_404": 1, "image_single_colour": 1,
                                                 "dup_image_content": 1, "image_aspect_ratio": 1}
    assert sorted(r["reason"] for r in sink) == sorted(nodes.dropped)
    book.check_reconciled()


def test_document_without_arrived_images_is_dropped():
    doc = InterleavedDocument("https://x.org/q", ["text", None], [None, "https://x.org/gone.jpg"])
    status, images = _rows({"https://x.org/gone.jpg": (None, 0, 0, None)})
    book = CounterBook()
    out = list(join_images([doc], status, images, resolve_filters("obelics"), book))
    assert isinstance(out[0], Dropped) and out[0].reason == "no_images_after_download"
    assert book.get("download").dropped == {"no_images_after_download": 1}
