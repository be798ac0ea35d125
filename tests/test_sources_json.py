"""JSON-based sources (COCO, SBU, RedCaps, Visual Genome, Localized Narratives) and WIT, from fixtures
built in their exact formats."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from pmd.errors import UserError
from pmd.records import PairRecord
from pmd.sources.karpathy import eval_coco_ids, load_karpathy_splits
from pmd.sources.localized_narratives import split_sentences
from pmd.sources.registry import EXTRA_SOURCES, PMD_SOURCES, SOURCES, get_source
from pmd.sources.wit import WIT_COLUMNS, choose_caption, english_attribution
from pmd.verdict import Dropped, Failure


def kinds(outs):
    return Counter(o.reason if isinstance(o, Dropped) else o.error if isinstance(o, Failure) else "kept"
                   for o in outs)


@pytest.fixture
def karpathy(tmp_path):
    data = {"dataset": "coco", "images": [
        {"filepath": "val2014", "sentids": [1, 2], "filename": "COCO_val2014_000000391895.jpg", "imgid": 0,
         "split": "test", "cocoid": 391895,
         "sentences": [{"tokens": ["a", "man"], "raw": "A man with a red helmet on a small moped on a dirt road. ",
                        "imgid": 0, "sentid": 1},
                       {"tokens": ["man"], "raw": "Man riding a motor bike.", "imgid": 0, "sentid": 2}]},
        {"filepath": "train2014", "sentids": [3, 4], "filename": "COCO_train2014_000000057870.jpg", "imgid": 1,
         "split": "train", "cocoid": 57870,
         "sentences": [{"tokens": [], "raw": "A restaurant has modern wooden tables\nand chairs.", "imgid": 1,
                        "sentid": 3},
                       {"tokens": [], "raw": "   ", "imgid": 1, "sentid": 4}]},
        {"filepath": "val2014", "sentids": [5], "filename": "COCO_val2014_000000000042.jpg", "imgid": 2,
         "split": "restval", "cocoid": 42,
         "sentences": [{"tokens": [], "raw": "A dog on a couch.", "imgid": 2, "sentid": 5}]},
        {"filepath": "val2014", "sentids": [6], "filename": "COCO_val2014_000000000099.jpg", "imgid": 3,
         "split": "val", "cocoid": 99, "sentences": [{"tokens": [], "raw": "A cat.", "imgid": 3, "sentid": 6}]},
    ]}
    p = tmp_path / "dataset_coco.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    return p


def test_registry_names_and_table1():
    assert PMD_SOURCES == ("coco", "sbu_captions", "localized_narratives__coco", "localized_narratives__flickr30k",
                           "localized_narratives__ADE20k", "localized_narratives__openimages", "conceptual_captions",
                           "visual_genome", "wit", "conceptual_12m", "red_caps", "yfcc100m")
    assert EXTRA_SOURCES == ("flickr8k", "image_folder")
    assert (SOURCES["yfcc100m"].paper_pairs_m, SOURCES["yfcc100m"].paper_avg_words) == (30.3, 12.7)
    assert SOURCES["visual_genome"].paper_avg_words == 5.1
    assert SOURCES["localized_narratives__coco"].paper_row == "Localized Narratives"
    assert SOURCES["conceptual_captions"].splittable and not SOURCES["wit"].splittable


def test_karpathy_splits(karpathy):
    assert load_karpathy_splits(str(karpathy)) == {391895: "test", 57870: "train", 42: "restval", 99: "val"}
    assert eval_coco_ids(str(karpathy)) == frozenset({391895, 99})


def test_coco_karpathy_train_plus_restval(karpathy):
    outs = list(get_source("coco").parse_all([str(karpathy)]))
    assert kinds(outs) == Counter({"not_train_split": 3, "kept": 2, "empty_caption": 1})
    kept = [o for o in outs if isinstance(o, PairRecord)]
    assert kept[0].text == "A restaurant has modern wooden tables and chairs."
    assert kept[0].image.url == "http://images.cocodataset.org/train2014/COCO_train2014_000000057870.jpg"
    assert kept[0].meta["cocoid"] == 57870 and kept[0].meta["split"] == "train" and "raw" not in kept[0].meta
    assert kept[0].input_line == 2
    assert kept[1].meta["split"] == "restval"
    local = [o for o in get_source("coco").parse_all([str(karpathy)], {"image_root": "/data/coco"})
             if isinstance(o, PairRecord)]
    assert local[1].image.path == "/data/coco/val2014/COCO_val2014_000000000042.jpg"


def test_coco_official_layout_with_local_images(tmp_path):
    (tmp_path / "train2017").mkdir()
    ann = {"info": {}, "licenses": [], "images": [
        {"license": 3, "file_name": "000000391895.jpg", "coco_url": "http://images.cocodataset.org/train2017/000000391895.jpg",
         "height": 360, "width": 640, "id": 391895}],
        "annotations": [{"image_id": 391895, "id": 770337, "caption": "A man with a red helmet on a small moped. "},
                        {"image_id": 7, "id": 1, "caption": "orphan"}]}
    p = tmp_path / "captions_train2017.json"
    p.write_text(json.dumps(ann), encoding="utf-8")
    a, b = get_source("coco").parse_all([str(p)], {"image_root": str(tmp_path)})
    assert a.text == "A man with a red helmet on a small moped."
    assert a.image.path == str(tmp_path / "train2017" / "000000391895.jpg")
    assert a.meta["id"] == 770337 and a.meta["width"] == 640
    assert isinstance(b, Failure) and b.error == "unknown_image" and b.input_line == 2
    (a2, _) = get_source("coco").parse_all([str(p)])
    assert a2.image.url == "http://images.cocodataset.org/train2017/000000391895.jpg"


def test_bad_json_file_is_one_failure_with_line(tmp_path):
    p = tmp_path / "captions_val2017.json"
    p.write_text('{"images": [\n  {"id": 1,,}\n]}', encoding="utf-8")
    (f,) = get_source("coco").parse_all([str(p)])
    assert isinstance(f, Failure) and f.error == "bad_json" and f.input_line == 2 and f.input_file == str(p)


def test_sbu_layouts(tmp_path):
    j = tmp_path / "sbu-captions-all.json"
    j.write_text(json.dumps({"image_urls": ["http://static.flickr.com/2723/4385058960_b0f291553e.jpg", "bad"],
                             "user_ids": ["47889917@N08", "1@N00"],
                             "captions": ["Man sits in a rusted car buried in the sand", "x"]}), encoding="utf-8")
    a, b = get_source("sbu_captions").parse_all([str(j)])
    assert a.text == "Man sits in a rusted car buried in the sand" and a.meta == {"user_id": "47889917@N08"}
    assert isinstance(b, Failure) and b.error == "bad_url" and b.input_line == 2
    d = tmp_path / "dataset"
    d.mkdir()
    (d / "SBU_captioned_photo_dataset_urls.txt").write_text(
        "http://static.flickr.com/1/a.jpg\nhttp://static.flickr.com/2/b.jpg\nhttp://static.flickr.com/3/c.jpg\n")
    (d / "SBU_captioned_photo_dataset_captions.txt").write_text("first caption\nsecond caption\n")
    outs = list(get_source("sbu_captions").parse_all([str(d)]))
    assert [o.text for o in outs[:2]] == ["first caption", "second caption"]
    assert outs[1].image.url == "http://static.flickr.com/2/b.jpg"
    assert isinstance(outs[2], Failure) and outs[2].error == "misaligned" and outs[2].input_line == 3
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"image_url": ["http://static.flickr.com/9/z.jpg"], "user_id": ["9@N00"],
                             "caption": ["from parquet"]}), tmp_path / "train.parquet")
    (r,) = get_source("sbu_captions").parse_all([str(tmp_path / "train.parquet")])
    assert (r.text, r.meta) == ("from parquet", {"user_id": "9@N00"})


def test_redcaps_raw_caption_default_and_option(tmp_path):
    p = tmp_path / "itookapicture_2020.json"
    p.write_text(json.dumps({"info": {"url": "https://redcaps.xyz", "version": 1.0}, "annotations": [
        {"image_id": "ab3d5f", "author": "johndoe", "url": "https://i.redd.it/abcdef.jpg",
         "raw_caption": "ITAP of my cat [4000x4000]", "caption": "itap of my cat", "subreddit": "itookapicture",
         "score": 15, "created_utc": 1602567890, "permalink": "/r/itookapicture/comments/ab3d5f/"},
        {"image_id": "zz", "url": "ftp://nope", "raw_caption": "x"}]}), encoding="utf-8")
    a, b = get_source("red_caps").parse_all([str(p)])
    assert a.text == "ITAP of my cat [4000x4000]" and a.meta["caption"] == "itap of my cat"
    assert a.meta["subreddit"] == "itookapicture" and "url" not in a.meta
    assert isinstance(b, Failure) and b.error == "bad_url" and b.input_line == 2
    (a2, _) = get_source("red_caps").parse_all([str(p)], {"caption_field": "caption"})
    assert a2.text == "itap of my cat"


def test_visual_genome_crops_and_karpathy_leak(tmp_path, karpathy):
    images = [{"width": 800, "url": "https://cs.stanford.edu/people/rak248/VG_100K_2/1.jpg", "height": 600,
               "image_id": 1, "coco_id": None, "flickr_id": None},
              {"width": 640, "url": "https://cs.stanford.edu/people/rak248/VG_100K/2.jpg", "height": 480,
               "image_id": 2, "coco_id": 391895, "flickr_id": 5}]
    regions = [{"id": 1, "regions": [
        {"region_id": 1382, "width": 82, "height": 139, "image_id": 1, "phrase": "the clock is green in colour",
         "y": 57, "x": 421},
        {"region_id": 1383, "width": 0, "height": 10, "image_id": 1, "phrase": "zero width", "y": 1, "x": 1}]},
        {"id": 2, "regions": [{"region_id": 9, "width": 5, "height": 5, "image_id": 2, "phrase": "a", "x": 0, "y": 0},
                              {"region_id": 10, "width": 5, "height": 5, "image_id": 2, "phrase": "b", "x": 0, "y": 0}]}]
    (tmp_path / "image_data.json").write_text(json.dumps(images))
    (tmp_path / "region_descriptions.json").write_text(json.dumps(regions))
    src = get_source("visual_genome")
    units = src.units([str(tmp_path / "image_data.json"), str(tmp_path / "region_descriptions.json")])
    assert len(units) == 1 and units[0].paths[0].endswith("region_descriptions.json")
    outs = list(src.parse_all([str(tmp_path / "image_data.json"), str(tmp_path / "region_descriptions.json")],
                              {"karpathy": str(karpathy)}))
    assert kinds(outs) == Counter({"kept": 1, "bad_region": 1, "karpathy_eval_leak": 2})
    rec = outs[0]
    assert rec.text == "the clock is green in colour"
    assert rec.image.url == "https://cs.stanford.edu/people/rak248/VG_100K_2/1.jpg"
    assert (rec.image.crop.x, rec.image.crop.y, rec.image.crop.width, rec.image.crop.height) == (421, 57, 82, 139)
    assert rec.meta["region_id"] == 1382 and rec.meta["image_width"] == 800
    zipped = list(src.parse_all([str(tmp_path / "region_descriptions.json"), str(tmp_path / "image_data.json")],
                                {"image_root": "/data/images.zip"}))
    assert zipped[0].image.path == "/data/images.zip::VG_100K_2/1.jpg"
    assert zipped[0].image.crop.box() == (421, 57, 503, 196)


def test_localized_narratives_sentence_split_and_subsets(tmp_path, karpathy):
    assert split_sentences("In this image there are cows. In the background there is a building.. ") == [
        "In this image there are cows.", "In the background there is a building."]
    p = tmp_path / "coco_val_localized_narratives.jsonl"
    rows = [{"dataset_id": "mscoco_val2017", "image_id": "137576", "annotator_id": 93,
             "caption": "In this image there are group of cows. In the background there is a building. At the top there is a sky.",
             "timed_caption": [{"utterance": "In", "start_time": 0.0, "end_time": 0.1}], "traces": [[{"x": 0.1, "y": 0.2, "t": 0.3}]],
             "voice_recording": "coco_val/coco_val_137576_93.ogg"},
            {"dataset_id": "mscoco_val2017", "image_id": "391895", "annotator_id": 1, "caption": "Leak one. Leak two."}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n", encoding="utf-8")
    outs = list(get_source("localized_narratives__coco").parse_all([str(p)], {"karpathy": str(karpathy)}))
    assert kinds(outs) == Counter({"kept": 3, "karpathy_eval_leak": 2, "bad_json": 1})
    assert [o.text for o in outs[:3]] == ["In this image there are group of cows.",
                                          "In the background there is a building.", "At the top there is a sky."]
    assert outs[0].image.url == "http://images.cocodataset.org/val2017/000000137576.jpg"
    assert outs[0].meta["original_caption"].startswith("In this image") and "traces" not in outs[0].meta
    assert outs[0].meta["voice_recording"] == "coco_val/coco_val_137576_93.ogg"
    assert outs[-1].input_line == 3 and outs[-1].input_file == str(p)
    oi = tmp_path / "open_images_validation_captions.jsonl"
    oi.write_text(json.dumps({"dataset_id": "open_images_validation", "image_id": "0a1b2c3d4e5f6789",
                              "annotator_id": 5, "caption": "A red car."}) + "\n")
    (o,) = get_source("localized_narratives__openimages").parse_all(
        [str(oi)], {"image_template": "http://127.0.0.1:8765/oi/{split}/{image_id}.jpg"})
    assert o.image.url == "http://127.0.0.1:8765/oi/validation/0a1b2c3d4e5f6789.jpg"
    (o,) = get_source("localized_narratives__openimages").parse_all([str(oi)])
    assert o.image.url == "https://s3.amazonaws.com/open-images-dataset/validation/0a1b2c3d4e5f6789.jpg"
    ade = tmp_path / "ade20k_train_captions.jsonl"
    ade.write_text(json.dumps({"dataset_id": "ADE20k", "image_id": "ADE_train_00000001", "annotator_id": 1,
                               "caption": "A kitchen. With a sink."}) + "\n")
    a, b = get_source("localized_narratives__ADE20k").parse_all([str(ade)], {"image_root": "/data/ADE.zip"})
    assert a.image.path == "/data/ADE.zip::ADEChallengeData2016/images/training/ADE_train_00000001.jpg"
    fl = tmp_path / "flickr30k_test_captions.jsonl"
    fl.write_text(json.dumps({"dataset_id": "flickr30k", "image_id": "1000092795", "annotator_id": 1,
                              "caption": "Two men."}) + "\n")
    (f,) = get_source("localized_narratives__flickr30k").parse_all([str(fl)], {"image_root": "/data"})
    assert f.image.path == "/data/flickr30k-images/1000092795.jpg" and f.text == "Two men."


def test_localized_narratives_multi_rows_are_not_split_again(tmp_path):
    p = tmp_path / "ln_coco_train_captions_multi.jsonl"
    p.write_text(json.dumps({"dataset_id": "mscoco_train2017", "image_id": "1", "annotator_id": 2,
                             "caption": "In the background there is a building.",
                             "original_caption": "Cows. In the background there is a building."}) + "\n")
    (o,) = get_source("localized_narratives__coco").parse_all([str(p)])
    assert o.text == "In the background there is a building."
    assert o.image.url == "http://images.cocodataset.org/train2017/000000000001.jpg"


def _wit_row(**over):
    row = dict.fromkeys(WIT_COLUMNS, "")
    row.update(language="en", page_url="https://en.wikipedia.org/wiki/X",
               image_url="https://upload.wikimedia.org/wikipedia/commons/a/a6/X.jpg", mime_type="image/jpeg")
    row.update(over)
    return row


def test_wit_caption_priority_unit():
    assert english_attribution("Deutsch: Perigrapha i-cinctum, Auris (Isère), Frankreich English: "
                               "Perigrapha i-cinctum, Auris, France") == "Perigrapha i-cinctum, Auris, France"
    assert english_attribution("English: The tower at night Français: La tour la nuit") == "The tower at night"
    assert choose_caption(_wit_row(caption_reference_description="Two words")) == (
        "caption_reference_description", "Two words")
    assert choose_caption(_wit_row(caption_reference_description="One",
                                   caption_attribution_description="English: A tall tower")) == (
        "caption_attribution_description", "A tall tower")
    assert choose_caption(_wit_row(caption_attribution_description="English: Too short",
                                   caption_alt_text_description="the alt text here")) == (
        "caption_alt_text_description", "the alt text here")
    assert choose_caption(_wit_row(caption_alt_text_description="two words")) is None


def test_wit_tsv_gz_with_quoted_newlines(tmp_path):
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(WIT_COLUMNS)
    rows = [_wit_row(caption_reference_description="Daryl Clark, lauréat en 2014.",
                     context_page_description="line one\nline two"),
            _wit_row(language="fr", caption_reference_description="Un deux trois"),
            _wit_row(caption_reference_description="x", caption_alt_text_description="é è à"),
            _wit_row(),
            _wit_row(caption_reference_description="A valid caption", image_url="not a url")]
    for r in rows:
        w.writerow([r[c] for c in WIT_COLUMNS])
    buf.write("en\tonly\tthree\n")
    p = tmp_path / "wit_v1.train.all-00000-of-00010.tsv.gz"
    with gzip.open(p, "wt", encoding="utf-8") as g:
        g.write(buf.getvalue())
    outs = list(get_source("wit").parse_all([str(p)]))
    assert [kinds([o]).most_common(1)[0][0] for o in outs] == [
        "kept", "not_english_row", "empty_caption", "no_caption", "bad_url", "wrong_column_count"]
    assert outs[0].text == "Daryl Clark, laurat en 2014."  # non-ASCII removed
    assert outs[0].meta["caption_field"] == "caption_reference_description"
    assert outs[0].meta["context_page_description"] == "line one\nline two"
    assert [o.input_line for o in outs] == [2, 4, 5, 6, 7, 8]  # the quoted newline takes a line


def test_unknown_layouts_fail_cleanly(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("[1, 2]")
    (f,) = get_source("red_caps").parse_all([str(p)])
    assert isinstance(f, Failure) and f.error == "bad_layout"
    with pytest.raises(UserError, match="region_descriptions"):
        get_source("visual_genome").units([str(p)])
