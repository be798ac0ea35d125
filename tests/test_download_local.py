"""Local images: files, zip/tar members, crops, resize and encode like img2dataset."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from pmd import schemas
from pmd.download import DownloadConfig
from pmd.download.local import (LOCAL_OUTPUT_SCHEMA, ArchiveCache, crop_downloaded, local_batches,
                                parse_path_spec, process_crop_batch, process_local_batch, read_local_image)
from pmd.records import Crop

CFG = DownloadConfig()


def _img_bytes(w, h, fmt="JPEG", mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (h, w, len(mode)), dtype=np.uint8)
    # a bright left half so crops are recognisable
    arr[:, : w // 2] = 250
    buf = io.BytesIO()
    Image.fromarray(arr if len(mode) > 1 else arr[..., 0], mode).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "big.jpg").write_bytes(_img_bytes(640, 480))
    (tmp_path / "small.jpg").write_bytes(_img_bytes(200, 100))
    (tmp_path / "alpha.png").write_bytes(_img_bytes(300, 300, "PNG", "RGBA"))
    (tmp_path / "gray.png").write_bytes(_img_bytes(512, 300, "PNG", "L"))
    (tmp_path / "notes.jpg").write_bytes(b"this is text, not pixels")
    (tmp_path / "cut.jpg").write_bytes(_img_bytes(640, 480)[:3000])
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as z:
        z.writestr("VG_100K/1.jpg", _img_bytes(800, 600, seed=1))
        z.writestr("VG_100K/2.jpg", _img_bytes(300, 400, seed=2))
    with tarfile.open(tmp_path / "flickr.tar.gz", "w:gz") as t:
        for name, data in (("flickr30k-images/10.jpg", _img_bytes(500, 375, seed=3)),
                           ("flickr30k-images/11.jpg", _img_bytes(375, 500, seed=4))):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return tmp_path


def test_parse_path_spec():
    assert parse_path_spec("a/b.zip::VG_100K/1.jpg") == ("a/b.zip", "VG_100K/1.jpg")
    assert parse_path_spec("x.tar.gz::/dir/f.jpg") == ("x.tar.gz", "dir/f.jpg")
    assert parse_path_spec("plain/file.jpg") == ("plain/file.jpg", None)


def test_plain_file_resized_to_short_side(files):
    row, jpg = read_local_image(str(files / "big.jpg"), None, CFG, image_key="00aa")
    assert row["status"] == "success" and row["error"] is None
    assert (row["width"], row["height"], row["original_width"], row["original_height"]) == (341, 256, 640, 480)
    assert row["sha256"] == hashlib.sha256(jpg).hexdigest()
    assert Image.open(io.BytesIO(jpg)).format == "JPEG"
    assert Image.open(io.BytesIO(jpg)).size == (341, 256)
    assert row["image_key"] == "00aa" and row["attempts"] == 1


def test_small_image_is_not_upscaled(files):
    row, jpg = read_local_image(str(files / "small.jpg"), None, CFG)
    assert (row["width"], row["height"]) == (200, 100)
    up, _ = read_local_image(str(files / "small.jpg"), None, DownloadConfig(resize_only_if_bigger=False))
    assert (up["width"], up["height"]) == (512, 256)


def test_modes_become_rgb(files):
    row, jpg = read_local_image(str(files / "alpha.png"), None, CFG)
    assert row["status"] == "success" and Image.open(io.BytesIO(jpg)).mode == "RGB"
    row, jpg = read_local_image(str(files / "gray.png"), None, CFG)
    assert (row["width"], row["height"]) == (436, 256) and Image.open(io.BytesIO(jpg)).mode == "RGB"


def test_zip_and_tar_members(files):
    row, _ = read_local_image(f"{files}/images.zip::VG_100K/2.jpg", None, CFG)
    assert (row["width"], row["height"], row["original_width"]) == (256, 341, 300)
    row, _ = read_local_image(f"{files}/flickr.tar.gz::flickr30k-images/11.jpg", None, CFG)
    assert (row["width"], row["height"], row["original_height"]) == (256, 341, 500)
    row, _ = read_local_image("flickr.tar.gz::flickr30k-images/10.jpg", None, CFG, root=files)
    assert (row["width"], row["height"]) == (341, 256)


@pytest.mark.parametrize("spec,error", [
    ("missing.jpg", "file_not_found"),
    ("images.zip::VG_100K/999.jpg", "file_not_found"),
    ("nope.zip::a.jpg", "file_not_found"),
    ("flickr.tar.gz::flickr30k-images/99.jpg", "file_not_found"),
    ("notes.jpg", "not_an_image"),
    ("cut.jpg", "truncated_image"),
])
def test_failures_have_classes(files, spec, error):
    row, jpg = read_local_image(spec, None, CFG, image_key="00bb", root=files)
    assert (row["status"], row["error"], jpg) == ("failed", error, None)
    assert row["image_key"] == "00bb" and row["error_message"]


def test_crop_on_original_then_resize(files):
    spec = f"{files}/images.zip::VG_100K/1.jpg"
    with zipfile.ZipFile(files / "images.zip") as z:
        original = Image.open(io.BytesIO(z.read("VG_100K/1.jpg"))).convert("RGB")
    row, jpg = read_local_image(spec, Crop(10, 20, 100, 50), CFG)
    assert (row["width"], row["height"], row["original_width"], row["original_height"]) == (100, 50, 800, 600)
    expected = np.asarray(original.crop((10, 20, 110, 70)), dtype=np.int16)
    got = np.asarray(Image.open(io.BytesIO(jpg)), dtype=np.int16)
    assert np.abs(got - expected).mean() < 12  # same pixels up to JPEG re-encoding
    big, _ = read_local_image(spec, Crop(0, 0, 800, 600), CFG)
    assert (big["width"], big["height"]) == (341, 256)


def test_overflowing_crop_is_clamped_outside_crop_fails(files):
    spec = f"{files}/images.zip::VG_100K/1.jpg"
    row, _ = read_local_image(spec, Crop(700, 550, 200, 200), CFG)  # overflows right and bottom
    assert (row["status"], row["width"], row["height"]) == ("success", 100, 50)
    row, jpg = read_local_image(spec, Crop(800, 10, 20, 20), CFG)
    assert (row["status"], row["error"], jpg) == ("failed", "bad_crop", None)


def test_min_size_and_aspect(files):
    row, _ = read_local_image(str(files / "small.jpg"), None, DownloadConfig(min_image_size=150))
    assert row["error"] == "image_too_small"
    row, _ = read_local_image(str(files / "small.jpg"), None, DownloadConfig(max_aspect_ratio=1.5))
    assert row["error"] == "bad_aspect_ratio"


def test_encoding_is_deterministic(files):
    a = read_local_image(str(files / "big.jpg"), None, CFG)[0]["sha256"]
    b = read_local_image(str(files / "big.jpg"), None, CFG)[0]["sha256"]
    assert a == b
    assert read_local_image(str(files / "big.jpg"), None, DownloadConfig(encode_quality=50))[0]["sha256"] != a


def test_batch_keeps_order_and_one_row_each(files):
    batch = pa.RecordBatch.from_pydict({
        "image_key": ["01", "02", "03", "04", "05", "06"],
        "image_path": ["flickr.tar.gz::flickr30k-images/11.jpg", "images.zip::VG_100K/1.jpg",
                       "flickr.tar.gz::flickr30k-images/10.jpg", "images.zip::VG_100K/1.jpg", "missing.jpg", None],
        "crop_x": [None, 0, None, 0, None, None], "crop_y": [None, 0, None, 0, None, None],
        "crop_width": [None, 400, None, 400, None, None], "crop_height": [None, 300, None, 300, None, None],
    })
    out = process_local_batch(batch, CFG, root=files)
    assert out.schema.equals(LOCAL_OUTPUT_SCHEMA)
    schemas.validate(pa.Table.from_batches([out]), "download_status")
    d = out.to_pydict()
    assert d["image_key"] == ["01", "02", "03", "04", "05", "06"]
    assert d["status"] == ["success"] * 4 + ["failed"] * 2
    assert d["error"][4:] == ["file_not_found", "bad_path"]
    assert (d["width"][1], d["height"][1]) == (341, 256)
    assert d["jpg"][1] == d["jpg"][3] and d["sha256"][1] == d["sha256"][3]
    assert d["jpg"][4] is None

    fn = local_batches(CFG, root=files)
    outs = list(fn(iter([batch.slice(0, 3), batch.slice(3, 3)])))
    assert [b.num_rows for b in outs] == [3, 3]
    assert outs[0].to_pydict()["sha256"] + outs[1].to_pydict()["sha256"] == d["sha256"]


def test_archive_cache_keeps_handles_open(files):
    with ArchiveCache(max_open=1) as cache:
        a = cache.read(str(files / "images.zip"), "VG_100K/1.jpg")
        h = cache._open[str(files / "images.zip")]
        cache.read(str(files / "images.zip"), "VG_100K/2.jpg")
        assert cache._open[str(files / "images.zip")] is h
        cache.read(str(files / "flickr.tar.gz"), "flickr30k-images/10.jpg")
        assert list(cache._open) == [str(files / "flickr.tar.gz")]  # LRU evicted the zip
        assert a[:2] == b"\xff\xd8"


def test_crop_downloaded_scales_box(files):
    _, jpg = read_local_image(f"{files}/images.zip::VG_100K/1.jpg", None, CFG)  # 341x256 from 800x600
    fields, out = crop_downloaded(jpg, Crop(400, 300, 400, 300), 800, 600, CFG)
    assert fields["status"] == "success"
    assert (fields["width"], fields["height"]) == (171, 128)  # box 170..341 x 128..256 of the 341x256 image
    assert Image.open(io.BytesIO(out)).size == (171, 128)
    fields, out = crop_downloaded(jpg, Crop(900, 0, 10, 10), 800, 600, CFG)
    assert (fields["error"], out) == ("bad_crop", None)

    batch = pa.RecordBatch.from_pydict({
        "image_key": ["0a", "0b"], "url": ["http://x/1.jpg", "http://x/2.jpg"], "jpg": [jpg, jpg],
        "original_width": [800, 800], "original_height": [600, 600],
        "crop_x": [0, None], "crop_y": [0, None], "crop_width": [400, None], "crop_height": [300, None]})
    d = process_crop_batch(batch, CFG).to_pydict()
    assert (d["width"], d["height"], d["original_width"]) == ([170, 341], [128, 256], [800, 800])
    assert d["jpg"][1] == jpg
