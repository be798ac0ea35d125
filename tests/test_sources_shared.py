"""The real upstream excerpts in shared/data parse with zero failures, with the values read from them."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from pmd.records import PairRecord
from pmd.sources.registry import get_source
from pmd.verdict import Dropped, Failure


def parse(name, paths, options=None):
    outs = list(get_source(name).parse_all([str(p) for p in paths], options or {}))
    failures = [o for o in outs if isinstance(o, Failure)]
    assert failures == [], [f.describe() for f in failures]
    return outs


def kept(outs):
    return [o for o in outs if isinstance(o, PairRecord)]


@pytest.fixture(scope="module")
def src(shared_data):
    return shared_data / "sources"


def test_cc3m_real_rows(src):
    outs = parse("conceptual_captions", [src / "cc3m"])
    assert len(outs) == 16 and len(kept(outs)) == 16  # 6 image-label rows + 5 train + 5 validation
    train = kept(parse("conceptual_captions", [src / "cc3m" / "Train_GCC-training.tsv"]))
    assert train[0].text == "a very typical bus station"
    assert train[0].image.url == ("http://lh6.ggpht.com/-IvRtNLNcG8o/TpFyrudaT6I/AAAAAAAAM6o/_11MuAAKalQ/"
                                  "IMG_3422.JPG?imgmax=800")
    assert train[4].text == "cybernetic scene isolated on white background ." and train[4].input_line == 5
    labels = kept(parse("conceptual_captions", [src / "cc3m" / "Image_Labels_Subset_Train_GCC-Labels-training.tsv"]))
    assert labels[0].text == "christmas tree on a black background ."
    assert labels[0].meta["labels"].startswith("christmas tree,christmas decoration,font")
    assert labels[0].meta["mids"].startswith("/m/025nd,")


def test_cc12m_real_rows(src):
    recs = kept(parse("conceptual_12m", [src / "cc12m"]))
    assert len(recs) == 5
    assert recs[1].image.url == "https://www.abc.net.au/news/image/9329676-3x2-940x627.jpg"
    assert recs[1].text == "Two syringes and a small vial of vaccine."
    assert "<PERSON>" in recs[2].text
    assert recs[4].input_line == 5  # last line has no final newline


def test_sbu_real_json(src):
    recs = kept(parse("sbu_captions", [src / "sbu"]))
    assert [r.text for r in recs][:2] == ["A wooden chair in the living room", "white horse near avebury"]
    assert recs[0].image.url == "http://static.flickr.com/2723/4385058960_b0f291553e.jpg"
    assert recs[0].meta == {"user_id": "47889917@N08"} and len(recs) == 5


def test_redcaps_real_annotations(src):
    recs = kept(parse("red_caps", [src / "redcaps"]))
    assert len(recs) == 2  # birding_2017.json is empty
    by_url = {r.image.url: r for r in recs}
    assert by_url["http://i.imgur.com/VBg9K.jpg"].text == "USSR time abandoned appliances in some factory [602px \u00d7 400px]"
    assert by_url["https://i.redd.it/rk0fk7q562841.jpg"].meta["author"] == "HardInThePaint13"


def test_wit_real_rows(src):
    outs = parse("wit", [src / "wit"])
    assert [(o.reason, o.input_line, o.detail) for o in outs] == [
        ("not_english_row", 2, "fr"), ("not_english_row", 5, "nl")]  # row 1 spans 3 physical lines
    # the caption rule on the same real rows, languages opened up
    fr, nl = parse("wit", [src / "wit"], {"languages": "en,fr,nl"})
    assert fr.text == "Daryl Clark, laurat en 2014." and fr.meta["caption_field"] == "caption_reference_description"
    assert nl.text == "Perigrapha i-cinctum, Auris, France"
    assert nl.meta["caption_field"] == "caption_attribution_description"


def test_visual_genome_real_regions(src):
    outs = parse("visual_genome", [src / "visual_genome"])
    recs = kept(outs)
    assert len(outs) == len(recs) == 1278
    first = recs[0]
    assert first.text == "the clock is green in colour"
    assert first.image.url == "https://cs.stanford.edu/people/rak248/VG_100K_2/1.jpg"
    assert first.image.crop.box() == (421, 57, 503, 196)
    assert Counter(r.meta["image_id"] for r in recs).keys() == {1, 2, 3, 4, 5}


def test_yfcc_real_head200(src):
    outs = parse("yfcc100m", [src / "yfcc100m"])
    assert len(outs) == 200 and [o.input_line for o in outs] == list(range(1, 201))
    c = Counter(o.reason if isinstance(o, Dropped) else "kept" for o in outs)
    assert c["kept"] + c["too_short"] + c["no_english_caption"] + c["empty_caption"] == 200
    assert 40 <= c["kept"] <= 70 and c["empty_caption"] == 7 and c["too_short"] == 123
    assert (outs[0].reason, outs[0].input_line) == ("too_short", 1)  # title "IMG_0520", no description
    line2 = outs[1]
    assert line2.meta["caption_field"] == "title"
    assert line2.text == "Images from the intersection of Parliament and Queen, 2013 10 09 (3)"
    assert line2.image.url == "http://farm6.staticflickr.com/5465/10201275523_3e6ea67c7f.jpg"
    line3 = outs[2]
    assert line3.meta["caption_field"] == "description" and line3.lang == "en"
    assert line3.text.startswith("recipe here: allrecipes.com/Recipe/Denises-Peanut-Chicken/Detail.aspx i added 1/2")


def test_coco_real_official_excerpt(src):
    recs = kept(parse("coco", [src / "coco"]))
    assert len(recs) == 250
    assert recs[0].text == "A small closed toilet in a cramped space."
    assert recs[0].image.url == "http://images.cocodataset.org/val2017/000000331352.jpg"
    assert recs[0].meta["id"] == 441


def test_coco2017_and_flickr8k_with_local_images(shared_data):
    root = shared_data / "image-text" / "coco2017"
    recs = kept(parse("coco", [root / "annotations"], {"image_root": str(root)}))
    assert len(recs) == 360  # 120 train + 240 val captions
    assert all(os.path.isfile(r.image.path) for r in recs)
    assert {r.image.path.split("/")[-2] for r in recs} == {"train2017", "val2017"}
    f8k = shared_data / "image-text" / "flickr8k"
    recs = kept(parse("flickr8k", [f8k / "Flickr8k.token.txt"]))
    assert len(recs) == 445 and all(os.path.isfile(r.image.path) for r in recs)
    assert recs[0].text == "A child in a pink dress is climbing up a set of stairs in an entry way ."
