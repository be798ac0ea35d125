"""The pixel budget: refuse decompression bombs from their header, before anything is decoded.

A 1.1 MB PNG may declare 20000x20000 pixels; decoding it takes gigabytes (img2dataset decodes with
OpenCV first and checks ``max_image_area`` only afterwards). PIL's ``Image.open`` reads only the
header, so the declared size is known for the cost of a few hundred bytes. Formats PIL cannot
identify go on to the decoder unchanged (OpenCV then fails on most of them; its own pixel limit,
``OPENCV_IO_MAX_IMAGE_PIXELS``, is set to the budget where it still can be).
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any, BinaryIO

from PIL import Image

AREA_MESSAGE = "image area too large"  # img2dataset's own wording: classified as ``image_too_large``


def declared_size(stream: BinaryIO) -> tuple[int, int] | None:
    """(width, height) an image's header declares, or None when PIL cannot identify the format.
    Reads the header only; the stream is left at its start. A size beyond PIL's own bomb limit is
    returned as ``(-1, -1)`` (PIL refuses to say more)."""
    stream.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                return img.size
    except Image.DecompressionBombError:
        return (-1, -1)
    except Exception:  # noqa: BLE001 - unidentifiable or damaged header: the decoder decides
        return None
    finally:
        stream.seek(0)


def area_refusal(stream: BinaryIO, max_area: int) -> str | None:
    """The ``image area too large`` message when the declared size exceeds ``max_area`` pixels, else None."""
    size = declared_size(stream)
    if size is None:
        return None
    w, h = size
    if w < 0:
        return f"{AREA_MESSAGE}: beyond PIL's decompression-bomb limit (max_image_area {max_area})"
    if w * h > max_area:
        return f"{AREA_MESSAGE}: {w}x{h} declares {w * h} pixels > max_image_area {max_area}"
    return None


def raise_decoder_limits(max_area: int) -> None:
    """Let PIL open images up to the budget (its default bomb limit may be lower) and cap OpenCV's
    decoder at it where the process has not decoded anything yet (OpenCV reads the limit once)."""
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_area:
        Image.MAX_IMAGE_PIXELS = max_area
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(max_area))


class AreaCheckedResizer:
    """img2dataset's ``Resizer`` behind the header check: a bomb fails as ``image area too large``
    (as img2dataset's own check words it) without reaching ``cv2.imdecode``."""

    def __init__(self, inner: Any, max_area: int) -> None:
        self.inner, self.max_area = inner, max_area

    def __call__(self, img_stream: io.BytesIO, blurring_bbox_list: Any = None) -> Any:
        message = area_refusal(img_stream, self.max_area)
        if message is not None:
            return None, None, None, None, None, message
        return self.inner(img_stream, blurring_bbox_list)
