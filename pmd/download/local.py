"""Local images: plain files and archive members, optional crops, resized and encoded like downloads.

COCO, LN-COCO/ADE20k/Flickr30k and Visual Genome ship images in zips and tars rather than URLs.
They must come out exactly like img2dataset's downloads (short side ``image_size``, never
upscaled when ``resize_only_if_bigger``, JPEG at ``encode_quality``) so one shard writer serves all
sources. A path names an archive member as ``archive.zip::member/name.jpg`` (also ``.tar``,
``.tar.gz``, ``.tgz``). Crops follow PMD (m4): PIL ``image.crop((x, y, x + w, y + h))`` on the
original image; a box that overflows the image is clamped, a box wholly outside it fails
``bad_crop``. Each image yields one status row (``schemas/download_status.json``) and its bytes.

Archives stay open for a whole partition (``ArchiveCache``), and a tar's members are read in file
order within a batch, so a ``.tar.gz`` is not decompressed again for every image.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
from PIL import Image, UnidentifiedImageError

from pmd import schemas
from pmd.download.config import DownloadConfig
from pmd.records import Crop

log = logging.getLogger(__name__)

ARCHIVE_SEP = "::"
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")

#: Output of the batch functions: the ``download_status`` columns plus the encoded image.
LOCAL_OUTPUT_SCHEMA: pa.Schema = schemas.load_schema("download_status").append(pa.field("jpg", pa.binary()))


class ImageError(Exception):
    """A local image could not be produced; ``error`` is the stable class."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


def parse_path_spec(spec: str) -> tuple[str, str | None]:
    """``"a.zip::x/y.jpg"`` → ``("a.zip", "x/y.jpg")``; a plain path → ``(path, None)``."""
    if ARCHIVE_SEP in spec:
        archive, member = spec.split(ARCHIVE_SEP, 1)
        return archive, member.lstrip("/")
    return spec, None


class ArchiveCache:
    """Open zip/tar archives, kept open across images (at most ``max_open``, least recently used closed)."""

    def __init__(self, max_open: int = 8) -> None:
        self.max_open = max_open
        self._open: OrderedDict[str, zipfile.ZipFile | tarfile.TarFile] = OrderedDict()

    def _get(self, archive: str) -> zipfile.ZipFile | tarfile.TarFile:
        if archive in self._open:
            self._open.move_to_end(archive)
            return self._open[archive]
        if not os.path.isfile(archive):
            raise ImageError("file_not_found", f"archive {archive} does not exist")
        try:
            if archive.lower().endswith(".zip"):
                handle: zipfile.ZipFile | tarfile.TarFile = zipfile.ZipFile(archive)
            elif archive.lower().endswith(_TAR_SUFFIXES):
                handle = tarfile.open(archive, mode="r:*")
            else:
                raise ImageError("bad_path", f"{archive}: unknown archive type (zip, tar, tar.gz)")
        except (zipfile.BadZipFile, tarfile.TarError, OSError) as e:
            raise ImageError("bad_archive", f"{archive}: {e}") from e
        self._open[archive] = handle
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.close()
        return handle

    def offset(self, archive: str, member: str) -> int:
        """Position of ``member`` in a tar (0 for zips): reading in this order never seeks back."""
        try:
            handle = self._get(archive)
            if isinstance(handle, tarfile.TarFile):
                return handle.getmember(member).offset_data
        except (ImageError, KeyError):
            pass
        return 0

    def read(self, archive: str, member: str) -> bytes:
        handle = self._get(archive)
        try:
            if isinstance(handle, zipfile.ZipFile):
                return handle.read(member)
            f = handle.extractfile(handle.getmember(member))
            if f is None:
                raise KeyError(member)
            return f.read()
        except KeyError:
            raise ImageError("file_not_found", f"{archive} has no member {member}") from None
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as e:
            raise ImageError("bad_archive", f"{archive}::{member}: {e}") from e

    def close(self) -> None:
        for h in self._open.values():
            h.close()
        self._open.clear()

    def __enter__(self) -> "ArchiveCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_bytes(path_spec: str, archives: ArchiveCache | None = None, root: str | os.PathLike[str] | None = None) -> bytes:
    """The raw bytes a path spec names (``ImageError('file_not_found')`` when absent)."""
    path, member = parse_path_spec(path_spec)
    if root is not None and not os.path.isabs(path):
        path = os.path.join(root, path)
    if member is not None:
        if archives is None:
            with ArchiveCache() as cache:
                return cache.read(path, member)
        return archives.read(path, member)
    try:
        return Path(path).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ImageError("file_not_found", f"{path} does not exist") from None
    except OSError as e:
        raise ImageError("read_error", f"{path}: {e}") from e


def decode(data: bytes, draft_size: tuple[int, int] | None = None,
           max_area: int | None = None) -> tuple[Image.Image, int, int]:
    """Decode to RGB (transparency flattened on white, like img2dataset); returns (image, original w, h).

    ``draft_size`` lets the JPEG decoder scale down by a power of two while decoding (fast) as long
    as the result stays at least that large. An image whose header declares more than ``max_area``
    pixels fails ``image_too_large`` before any pixel is decoded (decompression bombs).
    """
    try:
        img = Image.open(io.BytesIO(data))
        ow, oh = img.size
        if max_area is not None and ow * oh > max_area:
            raise ImageError("image_too_large", f"{ow}x{oh} declares {ow * oh} pixels > max_image_area {max_area}")
        if draft_size is not None and img.format == "JPEG":
            img.draft("RGB", draft_size)
        img.load()
    except UnidentifiedImageError as e:
        raise ImageError("not_an_image", str(e)) from None
    except Image.DecompressionBombError as e:
        raise ImageError("image_too_large", str(e)) from None
    except (OSError, SyntaxError, ValueError) as e:
        if "truncated" in str(e).lower():
            raise ImageError("truncated_image", str(e)) from None
        raise ImageError("not_an_image", str(e)) from None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.new("RGB", rgba.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.getchannel("A"))
    elif img.mode != "RGB":
        img = img.convert("RGB")
    return img, ow, oh


def clamp_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` clamped to the image; ``ImageError('bad_crop')`` when nothing of it is inside."""
    left, top, right, bottom = box
    cl, ct, cr, cb = max(0, left), max(0, top), min(width, right), min(height, bottom)
    if cr <= cl or cb <= ct:
        raise ImageError("bad_crop", f"crop box {box} lies outside the {width}x{height} image")
    return cl, ct, cr, cb


def _target_size(w: int, h: int, cfg: DownloadConfig) -> tuple[int, int] | None:
    """img2dataset's keep_ratio size (short side ``image_size``, truncated like albumentations), or None."""
    if cfg.resize_mode == "no":
        return None
    short = min(w, h)
    if cfg.resize_only_if_bigger and short <= cfg.image_size:
        return None
    scale = cfg.image_size / short
    nw, nh = int(w * scale), int(h * scale)
    return None if (nw, nh) == (w, h) else (max(nw, 1), max(nh, 1))


def resize(img: Image.Image, cfg: DownloadConfig, target: tuple[int, int] | None = None,
           from_size: tuple[int, int] | None = None) -> Image.Image:
    """Resize like img2dataset ``keep_ratio`` (area filter down, Lanczos up), then center-crop if asked.

    ``from_size`` is the size the target is computed from when ``img`` was decoded smaller (JPEG draft).
    """
    w, h = from_size or img.size
    target = target or _target_size(w, h, cfg)
    if target is not None and target != img.size:
        down = target[0] < img.size[0]
        img = img.resize(target, Image.Resampling.BOX if down else Image.Resampling.LANCZOS)
    if cfg.resize_mode == "center_crop" and min(img.size) >= cfg.image_size:
        w, h = img.size
        left, top = (w - cfg.image_size) // 2, (h - cfg.image_size) // 2
        img = img.crop((left, top, left + cfg.image_size, top + cfg.image_size))
    return img


def encode(img: Image.Image, cfg: DownloadConfig) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=cfg.encode_quality)
    return buf.getvalue()


def _check_size(w: int, h: int, cfg: DownloadConfig) -> None:
    if min(w, h) < cfg.min_image_size:
        raise ImageError("image_too_small", f"{w}x{h} is smaller than min_image_size {cfg.min_image_size}")
    if max(w, h) / min(w, h) > cfg.max_aspect_ratio:
        raise ImageError("bad_aspect_ratio", f"{w}x{h} exceeds max_aspect_ratio {cfg.max_aspect_ratio}")


def _failed(image_key: str | None, url: str | None, error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"image_key": image_key, "url": url, "status": "failed", "error": error, "error_message": message,
            "width": None, "height": None, "original_width": extra.get("original_width"),
            "original_height": extra.get("original_height"), "sha256": None, "attempts": 1}


def render(data: bytes, crop: Crop | None, cfg: DownloadConfig) -> tuple[bytes, int, int, int, int]:
    """Decode, crop, resize and encode ``data``: (jpg, width, height, original_width, original_height)."""
    draft = None
    if crop is None and cfg.resize_mode != "no":
        draft = (cfg.image_size, cfg.image_size)
    img, ow, oh = decode(data, draft, cfg.max_image_area)
    if crop is not None:
        img = img.crop(clamp_box(crop.box(), ow, oh))
        size = img.size
    else:
        size = (ow, oh)  # the decoder may have scaled down (draft): sizes follow the original
    _check_size(size[0], size[1], cfg)
    if crop is None and img.size != size and _target_size(ow, oh, cfg) is None:
        img = img.resize(size, Image.Resampling.LANCZOS)  # drafted but no resize wanted: undo the draft
    img = resize(img, cfg, from_size=size)
    jpg = encode(img, cfg)
    return jpg, img.size[0], img.size[1], ow, oh


def read_local_image(path_spec: str, crop: Crop | None, cfg: DownloadConfig = DownloadConfig(),
                     image_key: str | None = None, archives: ArchiveCache | None = None,
                     root: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], bytes | None]:
    """Read one local image (plain path or ``archive::member``), crop, resize and encode it.

    Returns ``(status_row, jpg_bytes)``; on failure the row says ``failed`` with ``file_not_found``,
    ``not_an_image``, ``truncated_image``, ``bad_crop``, ``bad_archive``... and the bytes are None.
    ``original_width/height`` are the full image's size (crop coordinates refer to it).
    """
    try:
        data = read_bytes(path_spec, archives, root)
        jpg, w, h, ow, oh = render(data, crop, cfg)
    except ImageError as e:
        return _failed(image_key, path_spec, e.error, str(e)), None
    except Exception as e:  # noqa: BLE001 - one bad image never stops a partition
        log.debug("local image %s failed", path_spec, exc_info=True)
        return _failed(image_key, path_spec, "image_error", f"{type(e).__name__}: {e}"), None
    row = {"image_key": image_key, "url": path_spec, "status": "success", "error": None, "error_message": None,
           "width": w, "height": h, "original_width": ow, "original_height": oh,
           "sha256": hashlib.sha256(jpg).hexdigest(), "attempts": 1}
    return row, jpg


def crop_downloaded(jpg: bytes, crop: Crop, original_width: int, original_height: int,
                    cfg: DownloadConfig = DownloadConfig()) -> tuple[dict[str, Any], bytes | None]:
    """Crop an already downloaded (resized) image with a box given in ORIGINAL pixel coordinates.

    For Visual Genome regions fetched by URL: the box is scaled by downloaded/original size, clamped,
    cropped, resized by ``cfg`` and re-encoded. Returns the fields that change (``status, error,
    error_message, width, height, sha256``) and the new bytes (None on failure). Resolution is that of
    the download: fetch with a larger ``image_size`` when crops must stay sharp.
    """
    try:
        if not original_width or not original_height:
            raise ImageError("bad_crop", "original size unknown, cannot place the crop box")
        img, w, h = decode(jpg)
        sx, sy = w / original_width, h / original_height
        box = (round(crop.x * sx), round(crop.y * sy), round((crop.x + crop.width) * sx),
               round((crop.y + crop.height) * sy))
        if box[2] <= box[0]:
            box = (box[0], box[1], box[0] + 1, box[3])
        if box[3] <= box[1]:
            box = (box[0], box[1], box[2], box[1] + 1)
        img = img.crop(clamp_box(box, w, h))
        img = resize(img, cfg)
        out = encode(img, cfg)
    except ImageError as e:
        return {"status": "failed", "error": e.error, "error_message": str(e), "width": None, "height": None,
                "sha256": None}, None
    return {"status": "success", "error": None, "error_message": None, "width": img.size[0],
            "height": img.size[1], "sha256": hashlib.sha256(out).hexdigest()}, out


def _crop_of(d: dict[str, list[Any]], i: int) -> Crop | None:
    if d.get("crop_width") is None or d["crop_width"][i] is None:
        return None
    return Crop(int(d["crop_x"][i] or 0), int(d["crop_y"][i] or 0), int(d["crop_width"][i]), int(d["crop_height"][i]))


def _to_batch(rows: list[dict[str, Any]], images: list[bytes | None]) -> pa.RecordBatch:
    cols = {f.name: [r.get(f.name) for r in rows] for f in LOCAL_OUTPUT_SCHEMA if f.name != "jpg"}
    cols["jpg"] = images
    return pa.RecordBatch.from_pydict(cols, schema=LOCAL_OUTPUT_SCHEMA)


def process_local_batch(batch: pa.RecordBatch, cfg: DownloadConfig = DownloadConfig(),
                        archives: ArchiveCache | None = None,
                        root: str | os.PathLike[str] | None = None) -> pa.RecordBatch:
    """Local images of one batch (``image_key, image_path`` and optional ``crop_x/y/width/height``)
    → one ``LOCAL_OUTPUT_SCHEMA`` row per input row, in input order."""
    own = archives is None
    cache = archives or ArchiveCache()
    try:
        d = batch.to_pydict()
        n = batch.num_rows
        keys, paths = d["image_key"], d["image_path"]

        def order(i: int) -> tuple[str, int, str]:
            p = paths[i] or ""
            archive, member = parse_path_spec(p)
            if member is None:
                return ("", 0, p)
            full = archive if root is None or os.path.isabs(archive) else os.path.join(root, archive)
            return (archive, cache.offset(full, member), member)

        rows: list[dict[str, Any] | None] = [None] * n
        images: list[bytes | None] = [None] * n
        decoded: dict[str, tuple[bytes, int, int, int, int]] = {}
        for i in sorted(range(n), key=order):
            p = paths[i]
            try:
                crop = _crop_of(d, i)
            except (ValueError, TypeError) as e:
                rows[i] = _failed(keys[i], p, "bad_crop", str(e))
                continue
            if not p:
                rows[i] = _failed(keys[i], p, "bad_path", "no image path")
                continue
            memo = f"{p}|{crop.box() if crop else ''}"
            if memo in decoded:  # same image and crop twice in a batch (several captions)
                jpg, w, h, ow, oh = decoded[memo]
                rows[i] = {"image_key": keys[i], "url": p, "status": "success", "error": None,
                           "error_message": None, "width": w, "height": h, "original_width": ow,
                           "original_height": oh, "sha256": hashlib.sha256(jpg).hexdigest(), "attempts": 1}
                images[i] = jpg
                continue
            rows[i], images[i] = read_local_image(p, crop, cfg, image_key=keys[i], archives=cache, root=root)
            if images[i] is not None:
                r = rows[i]
                decoded[memo] = (images[i], r["width"], r["height"], r["original_width"], r["original_height"])  # type: ignore[index]
                if len(decoded) > 64:
                    decoded.pop(next(iter(decoded)))
        return _to_batch(rows, images)  # type: ignore[arg-type]
    finally:
        if own:
            cache.close()


def local_batches(cfg: DownloadConfig = DownloadConfig(), root: str | os.PathLike[str] | None = None
                  ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A ``mapInArrow`` function: archives stay open for the whole partition, not per batch or image."""

    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        with ArchiveCache() as cache:
            for batch in batches:
                yield process_local_batch(batch, cfg, cache, root)

    return fn


def process_crop_batch(batch: pa.RecordBatch, cfg: DownloadConfig = DownloadConfig()) -> pa.RecordBatch:
    """Crop downloaded images: input ``image_key, url, jpg, original_width, original_height,
    crop_x/y/width/height`` (a row without a crop passes through) → ``LOCAL_OUTPUT_SCHEMA`` rows."""
    d = batch.to_pydict()
    rows, images = [], []
    for i in range(batch.num_rows):
        base = {"image_key": d["image_key"][i], "url": d.get("url", [None] * batch.num_rows)[i],
                "original_width": d["original_width"][i], "original_height": d["original_height"][i],
                "attempts": 1}
        jpg = d["jpg"][i]
        crop = _crop_of(d, i)
        if jpg is None:
            rows.append({**base, "status": "failed", "error": "no_image", "error_message": "no downloaded image",
                         "width": None, "height": None, "sha256": None})
            images.append(None)
            continue
        if crop is None:
            img = Image.open(io.BytesIO(jpg))
            rows.append({**base, "status": "success", "error": None, "error_message": None, "width": img.size[0],
                         "height": img.size[1], "sha256": hashlib.sha256(jpg).hexdigest()})
            images.append(jpg)
            continue
        fields, out = crop_downloaded(jpg, crop, d["original_width"][i], d["original_height"][i], cfg)
        rows.append({**base, **fields})
        images.append(out)
    return _to_batch(rows, images)
