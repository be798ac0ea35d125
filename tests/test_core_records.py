import json

import pytest

from pmd.ids import is_valid_key, shard_name, stable_id
from pmd.records import Crop, ImageRef, InterleavedDocument, PairRecord


def test_stable_id_is_deterministic_hex_without_dots():
    a = stable_id("pair", "coco", "http://x/y.jpg", "a cat.")
    assert a == stable_id("pair", "coco", "http://x/y.jpg", "a cat.")
    assert len(a) == 16 and is_valid_key(a) and "." not in a
    assert a != stable_id("pair", "coco", "http://x/y.jpg", "a dog.")
    # parts are separated: ("ab", "c") and ("a", "bc") must differ
    assert stable_id("ab", "c") != stable_id("a", "bc")


def test_is_valid_key_rejects_dots_and_empty():
    assert not is_valid_key("abc.def")
    assert not is_valid_key("")
    assert not is_valid_key("ABC")  # lowercase hex only
    assert is_valid_key("00ff")


def test_shard_name_sorts_lexically():
    names = [shard_name("pairs", i) for i in (2, 10, 1)]
    assert sorted(names) == ["pairs-000001", "pairs-000002", "pairs-000010"]
    with pytest.raises(ValueError):
        shard_name("pairs", -1)


def test_image_ref_needs_exactly_one_location():
    with pytest.raises(ValueError):
        ImageRef()
    with pytest.raises(ValueError):
        ImageRef(url="http://a", path="/b")
    assert ImageRef(path="images.zip::VG_100K/1.jpg").location == "images.zip::VG_100K/1.jpg"


def test_crop_box_and_validation():
    assert Crop(10, 20, 30, 40).box() == (10, 20, 40, 60)
    with pytest.raises(ValueError):
        Crop(0, 0, 0, 5)
    with pytest.raises(ValueError):
        Crop(-1, 0, 5, 5)


def test_image_key_depends_on_crop():
    full = ImageRef(url="http://h/1.jpg")
    crop = ImageRef(url="http://h/1.jpg", crop=Crop(0, 0, 10, 10))
    assert full.key() != crop.key()
    assert crop.key() == ImageRef(url="http://h/1.jpg", crop=Crop(0, 0, 10, 10)).key()


def test_pair_record_row_round_trip():
    rec = PairRecord(source="visual_genome", text="the clock is green", image=ImageRef(url="http://h/1.jpg", crop=Crop(421, 57, 82, 139)),
                     meta={"region_id": 1382, "ünï": "cödé"}, lang="en", lang_score=0.97, input_file="r.json", input_line=3)
    row = rec.to_row()
    assert row["crop_x"] == 421 and row["crop_height"] == 139
    assert json.loads(row["meta"]) == {"region_id": 1382, "ünï": "cödé"}
    back = PairRecord.from_row(row)
    assert back == rec and back.id == rec.id == row["id"]


def test_pair_ids_differ_across_sources_and_captions():
    img = ImageRef(url="http://h/1.jpg")
    ids = {PairRecord("cc3m", "a", img).id, PairRecord("cc12m", "a", img).id, PairRecord("cc3m", "b", img).id}
    assert len(ids) == 3


def test_interleaved_document_alignment():
    doc = InterleavedDocument(url="http://p/1", texts=["hello", None, "world"], images=[None, "http://p/a.jpg", None],
                              general_metadata={"warc_record_id": "<urn:uuid:1>"})
    assert doc.image_urls == ["http://p/a.jpg"]
    assert doc.metadata == [None, None, None]
    assert InterleavedDocument.from_row(doc.to_row()) == doc
    with pytest.raises(ValueError):
        InterleavedDocument(url="u", texts=["a", "b"], images=[None])
    with pytest.raises(ValueError):
        InterleavedDocument(url="u", texts=["a"], images=["http://x"])
    with pytest.raises(ValueError):
        InterleavedDocument(url="u", texts=[None], images=[None])
