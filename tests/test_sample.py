"""The embedded sample: deterministic, every source file in its real upstream format, planted facts true."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit

import pytest
from PIL import Image

from pmd.sample import generate_sample, load_sample
from pmd.sample import scenes as sc
from pmd.sample.src_wit import COLUMNS as WIT_COLUMNS
from pmd.sample.src_yfcc import BRANCHES

PMD_NAMES = {"coco", "sbu_captions", "localized_narratives__coco", "localized_narratives__flickr30k",
             "localized_narratives__ADE20k", "localized_narratives__openimages", "conceptual_captions",
             "visual_genome", "wit", "conceptual_12m", "red_caps", "yfcc100m"}


def tree_digest(root: Path, skip: tuple[str, ...] = (".port",)) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel not in skip:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def meta(sample_dir) -> dict:
    return load_sample(sample_dir)


def lines_of(sample_dir: Path, rel: str) -> list[str]:
    return (sample_dir / rel).read_text(encoding="utf-8").split("\n")


# ------------------------------------------------------------------------------------------ determinism

def test_same_seed_and_base_url_give_byte_identical_tree(sample_dir, meta, tmp_path):
    generate_sample(tmp_path / "again", seed=0, base_url=meta["base_url"])
    first, second = tree_digest(sample_dir), tree_digest(tmp_path / "again")
    assert len(first) > 500
    assert first == second


def test_different_seed_gives_different_files(tmp_path):
    a = generate_sample(tmp_path / "a", seed=0, scale=0.1).parent
    b = generate_sample(tmp_path / "b", seed=1, scale=0.1).parent
    da, db = tree_digest(a), tree_digest(b)
    for rel in ("cc3m/Train_GCC-training.tsv", "coco/dataset_coco.json", "warc/sample.warc.gz", "sample.json"):
        assert da[rel] != db[rel], rel


def test_regenerating_into_the_same_directory_replaces_old_files(tmp_path):
    out = tmp_path / "s"
    generate_sample(out, seed=3, scale=0.1)
    (out / "images" / "stale.jpg").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    generate_sample(out, seed=3, scale=0.1)
    assert not (out / "images" / "stale.jpg").exists()
    assert (out / "notes.txt").read_text() == "mine"  # files the generator does not own are left alone


# ------------------------------------------------------------------------------------------ sample.json

def test_sample_json_names_every_pmd_source_with_existing_paths(sample_dir, meta):
    assert set(meta["sources"]) == PMD_NAMES
    assert meta["seed"] == 0 and meta["base_url"].startswith("http://127.0.0.1:")
    for name, spec in meta["sources"].items():
        assert spec["paths"], name
        for rel in spec["paths"]:
            assert (sample_dir / rel).is_file(), rel
        for key in ("image_root", "karpathy"):
            if key in spec["options"]:
                assert (sample_dir / spec["options"][key]).exists(), (name, key)
    assert meta["warc"] == ["warc/sample.warc.gz"]
    assert (sample_dir / meta["karpathy"]).is_file()
    assert (sample_dir / meta["extras"]["coco_captions_2017"]).is_file()


def test_registry_accepts_every_option(meta):
    registry = pytest.importorskip("pmd.sources.registry")
    assert set(registry.PMD_SOURCES) == set(meta["sources"])
    for name, spec in meta["sources"].items():
        registry.get_source(name).resolve_options(spec["options"])  # unknown keys raise UserError


def test_scale_one_has_about_a_thousand_rows_and_hundreds_of_images(sample_dir, meta):
    rows = meta["expected"]["rows"]
    assert 1000 <= sum(rows.values()) <= 1400
    digests = set()
    for p in (sample_dir / "images").rglob("*.jpg"):
        if "web" not in p.relative_to(sample_dir / "images").parts:
            digests.add(hashlib.sha256(p.read_bytes()).hexdigest())
    for z in sample_dir.rglob("*.zip"):
        with zipfile.ZipFile(z) as zf:
            digests.update(hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist())
    with tarfile.open(sample_dir / "flickr30k/flickr30k-images.tar.gz") as tf:
        digests.update(hashlib.sha256(tf.extractfile(m).read()).hexdigest() for m in tf.getmembers())
    assert 500 <= len(digests) <= 800


# ------------------------------------------------------------------------------------------ formats

def test_cc3m_is_caption_tab_url_without_header(sample_dir, meta):
    rel = "cc3m/Train_GCC-training.tsv"
    rows = list(csv.reader(io.StringIO((sample_dir / rel).read_text()), delimiter="\t", quoting=csv.QUOTE_NONE))
    bad = {m["line"] for m in meta["expected"]["malformed"]["conceptual_captions"]}
    assert len(rows) == meta["expected"]["rows"]["conceptual_captions"] == 110
    for i, row in enumerate(rows, 1):
        if i in bad:
            assert len(row) == 1
            continue
        assert len(row) == 2 and row[1].startswith("http://127.0.0.1:") and not row[0].startswith("http")
        assert row[0] == row[0].lower() and not row[0].endswith(".")


def test_cc12m_is_url_tab_caption_without_final_newline(sample_dir, meta):
    text = (sample_dir / "cc12m/cc12m.tsv").read_text()
    assert not text.endswith("\n")
    rows = [line.split("\t") for line in text.split("\n")]
    bad = {m["line"] for m in meta["expected"]["malformed"]["conceptual_12m"]}
    assert len(bad) == 1
    for i, row in enumerate(rows, 1):
        assert len(row) == (1 if i in bad else 2)
        assert row[0].startswith("http://127.0.0.1:")


def test_exact_duplicates_appear_in_cc3m_and_cc12m(sample_dir, meta):
    cc3m = {tuple(line.split("\t")) for line in lines_of(sample_dir, "cc3m/Train_GCC-training.tsv")}
    cc12m = {tuple(line.split("\t")) for line in lines_of(sample_dir, "cc12m/cc12m.tsv")}
    dups = meta["expected"]["cross_source_duplicates"]
    assert len(dups) == 4
    for d in dups:
        assert (d["caption"], d["url"]) in cc3m and (d["url"], d["caption"]) in cc12m


def test_same_image_bytes_behind_two_urls(sample_dir, meta):
    planted = meta["expected"]["same_image_bytes"]
    assert len(planted) == 3
    base = meta["base_url"] + "/"
    for item in planted:
        a, b = (sample_dir / urlsplit(u).path.lstrip("/") for u in item["urls"])
        assert item["urls"][0] != item["urls"][1] and item["urls"][0].startswith(base)
        assert a.read_bytes() == b.read_bytes()
        assert hashlib.sha256(a.read_bytes()).hexdigest() == item["sha256"]


def test_sbu_legacy_files_are_line_aligned_and_plant_an_unparsable_url(sample_dir, meta):
    urls = lines_of(sample_dir, "sbu/dataset/SBU_captioned_photo_dataset_urls.txt")
    caps = lines_of(sample_dir, "sbu/dataset/SBU_captioned_photo_dataset_captions.txt")
    assert urls[-1] == caps[-1] == ""  # newline-terminated
    assert len(urls) == len(caps) == 91
    (bad,) = meta["expected"]["bad_urls"]["sbu_captions"]
    assert urls[bad["line"] - 1] == bad["url"]
    with pytest.raises(ValueError):
        urlsplit(bad["url"])
    assert all(u.startswith("http://") for u in urls[:-1])


def test_coco_karpathy_json_and_2014_zips(sample_dir, meta):
    data = json.loads((sample_dir / "coco/dataset_coco.json").read_text())
    assert data["dataset"] == "coco"
    assert {im["split"] for im in data["images"]} == {"train", "restval", "val", "test"}
    zips = {f: zipfile.ZipFile(sample_dir / f"coco/{f}.zip") for f in ("train2014", "val2014")}
    for im in data["images"]:
        assert set(im) == {"filepath", "sentids", "filename", "imgid", "split", "sentences", "cocoid"}
        assert im["filepath"] == ("train2014" if im["split"] == "train" else "val2014")
        assert re.fullmatch(rf"COCO_{im['filepath']}_\d{{12}}\.jpg", im["filename"])
        assert int(im["filename"][-16:-4]) == im["cocoid"]
        assert len(im["sentences"]) == 5 and im["sentids"] == [s["sentid"] for s in im["sentences"]]
        zips[im["filepath"]].getinfo(f"{im['filepath']}/{im['filename']}")
    info = zips["train2014"].infolist()[0]
    assert info.date_time == (2010, 1, 1, 0, 0, 0)
    kept = sum(5 for im in data["images"] if im["split"] in ("train", "restval"))
    assert kept == meta["expected"]["kept_pairs"]["coco"]
    leaky = sorted(im["cocoid"] for im in data["images"] if im["split"] in ("val", "test"))
    assert leaky == meta["expected"]["leakage"]["karpathy_val_test_cocoids"]


def test_coco_official_2017_captions_layout(sample_dir):
    data = json.loads((sample_dir / "coco/annotations/captions_train2017.json").read_text())
    assert list(data) == ["info", "licenses", "images", "annotations"]
    im = data["images"][0]
    assert list(im) == ["license", "file_name", "coco_url", "height", "width", "date_captured", "flickr_url", "id"]
    assert im["file_name"] == f"{im['id']:012d}.jpg"
    assert len(data["annotations"]) == 5 * len(data["images"])
    with zipfile.ZipFile(sample_dir / "coco/train2017.zip") as zf:
        assert f"train2017/{im['file_name']}" in zf.namelist()


def test_localized_narratives_jsonl_records_and_images(sample_dir, meta):
    specs = {n: meta["sources"][n] for n in PMD_NAMES if n.startswith("localized_narratives")}
    for name, spec in specs.items():
        (rel,) = spec["paths"]
        bad = {m["line"] for m in meta["expected"]["malformed"].get(name, [])}
        good = []
        for i, line in enumerate(lines_of(sample_dir, rel)[:-1], 1):
            if i in bad:
                with pytest.raises(json.JSONDecodeError):
                    json.loads(line)
                continue
            rec = json.loads(line)
            full = ["timed_caption", "traces", "voice_recording"] if "localized_narratives.jsonl" in rel else []
            assert list(rec) == ["dataset_id", "image_id", "annotator_id", "caption", *full]
            if full:
                assert [u["utterance"] for u in rec["timed_caption"]] == rec["caption"].split()
                assert all(0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 for tr in rec["traces"] for p in tr)
            assert isinstance(rec["image_id"], str) and isinstance(rec["annotator_id"], int)
            assert rec["caption"].count(".") >= 2
            good.append(rec)
        assert len(good) + len(bad) == meta["expected"]["rows"][name]
    coco_ln = [json.loads(x) for x in lines_of(sample_dir, specs["localized_narratives__coco"]["paths"][0])[:-1]
               if x.endswith("}")]
    with zipfile.ZipFile(sample_dir / "coco/train2017.zip") as zf:
        for rec in coco_ln:
            zf.getinfo(f"train2017/{rec['image_id'].zfill(12)}.jpg")
    leaky = set(meta["expected"]["leakage"]["localized_narratives__coco"]["image_ids"])
    karpathy = {str(i) for i in meta["expected"]["leakage"]["karpathy_val_test_cocoids"]}
    assert leaky and leaky <= karpathy and leaky <= {r["image_id"] for r in coco_ln}
    template = specs["localized_narratives__openimages"]["options"]["image_template"]
    assert template == meta["base_url"] + "/images/open-images-dataset/{split}/{image_id}.jpg"
    with tarfile.open(sample_dir / "flickr30k/flickr30k-images.tar.gz") as tf:
        members = tf.getmembers()
        assert all(m.mtime == members[0].mtime and m.uid == 0 for m in members)
        assert members[0].name.startswith("flickr30k-images/")
    with gzip.open(sample_dir / "flickr30k/flickr30k-images.tar.gz") as gz:
        gz.read(1)
    assert (sample_dir / "flickr30k/flickr30k-images.tar.gz").read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0


def test_visual_genome_aligned_and_regions_contain_their_shapes(sample_dir, meta):
    images = json.loads((sample_dir / "visual_genome/image_data.json").read_text())
    regions = json.loads((sample_dir / "visual_genome/region_descriptions.json").read_text())
    assert len(images) == len(regions) == 36
    assert list(images[0]) == ["width", "url", "height", "image_id", "coco_id", "flickr_id"]
    karpathy = set(meta["expected"]["leakage"]["karpathy_val_test_cocoids"])
    assert sum(im["coco_id"] in karpathy for im in images) == 4
    zf = zipfile.ZipFile(sample_dir / "visual_genome/images.zip")
    checked = 0
    for im, item in zip(images, regions):
        assert item["id"] == im["image_id"]
        assert im["url"] == f"{meta['base_url']}/images/vg/VG_100K/{im['image_id']}.jpg"
        img = Image.open(io.BytesIO(zf.read(f"VG_100K/{im['image_id']}.jpg"))).convert("RGB")
        assert img.size == (im["width"], im["height"])
        for r in item["regions"]:
            assert list(r) == ["region_id", "width", "height", "image_id", "phrase", "y", "x"]
            assert 0 <= r["x"] and r["x"] + r["width"] <= im["width"] and r["y"] + r["height"] <= im["height"]
            words = r["phrase"].split()
            colour = next((w for w in words if w in sc.COLORS), None)
            kind = next((w for w in words if w in sc.KINDS), None)
            if colour and kind and len(words) <= 5 and "left" not in words and "above" not in words:
                cx, cy = r["x"] + r["width"] // 2, r["y"] + r["height"] // 2
                px = img.getpixel((cx, cy))
                assert sum(abs(a - b) for a, b in zip(px, sc.COLORS[colour])) < 60, (r, px)
                checked += 1
    assert checked > 30


def test_wit_gzip_tsv_header_columns_and_rules(sample_dir, meta):
    raw = (sample_dir / "wit/wit_v1.train.all-00000-of-00010.tsv.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0"
    text = gzip.decompress(raw).decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    header = next(reader)
    assert header == WIT_COLUMNS and len(header) == 17
    rows = list(reader)
    assert len(rows) == meta["expected"]["rows"]["wit"] == 80
    assert all(len(r) == 17 for r in rows)
    assert any("\n" in r[15] for r in rows)  # quoted multi-line context, as in the real file
    expected = meta["expected"]["wit"]
    assert {e["rule"] for e in expected} == {"reference", "attribution_first", "attribution_last", "alt_text",
                                             "nonascii", "none", "not_english"}
    assert {r[0] for r in rows} == {"en", "fr", "de", "es"}
    for row, e in zip(rows, expected):
        assert row[0] == e["language"]
        if e["rule"] == "attribution_first":
            assert row[7].startswith("English: ") and e["text"] in row[7] and len(row[6].split()) < 2
        if e["rule"] == "nonascii":
            assert any(ord(c) > 127 for c in row[6]) and e["text"].isascii()
    assert sum(e["text"] is not None for e in expected) == meta["expected"]["kept_pairs"]["wit"]


def test_redcaps_annotation_files(sample_dir, meta):
    spec = meta["sources"]["red_caps"]
    total = 0
    for rel in spec["paths"]:
        assert re.fullmatch(r"redcaps/annotations/[a-z]+_2019\.json", rel)
        data = json.loads((sample_dir / rel).read_text())
        assert list(data) == ["info", "annotations"]
        for a in data["annotations"]:
            assert {"image_id", "author", "url", "raw_caption", "caption", "subreddit", "score", "created_utc",
                    "permalink"} == set(a)
            assert a["caption"] == sc.redcaps_clean(a["raw_caption"])
            assert rel.split("/")[-1].startswith(a["subreddit"])
        total += len(data["annotations"])
    assert total == meta["expected"]["rows"]["red_caps"] == 80
    assert any('"annotations": []' in (sample_dir / rel).read_text() for rel in spec["paths"])


def test_yfcc_has_25_columns_and_every_branch(sample_dir, meta):
    lines = lines_of(sample_dir, "yfcc100m/yfcc100m_dataset")
    assert lines[-1] == ""
    expected = {e["line"]: e for e in meta["expected"]["yfcc"]}
    assert {e["branch"] for e in expected.values()} == set(BRANCHES) | {"malformed"}
    for i, line in enumerate(lines[:-1], 1):
        cols = line.split("\t")
        e = expected[i]
        assert cols[0] == str(i - 1)
        if e["branch"] == "malformed":
            assert len(cols) != 25
            continue
        assert len(cols) == 25 and re.fullmatch(r"[0-9a-f]{32}", cols[2])
        assert cols[24] == ("1" if e["branch"] == "video" else "0")
        assert " " not in cols[8] + cols[9]  # URL-form-encoded
        desc = unquote_plus(cols[9])
        if e["branch"] == "html_only_description":
            assert desc.startswith("<a href=") and re.sub(r"<[^<]+?>", "", desc) == ""
        if e["branch"] == "empty_description_good_title":
            assert cols[9] == "" and len(e["text"].split()) > 2
        if e["branch"] == "too_short":
            assert len(desc.split()) == 2 and e["text"] is None
        if e["branch"] == "en_description_entity":
            assert "&amp;" in desc and e["text"].startswith("Shapes & colours: ")
        if e["field"] == "title":
            assert e["text"] == " ".join(unquote_plus(cols[8]).split())
    malformed = [e for e in expected.values() if e["branch"] == "malformed"]
    assert len(malformed) == 2


def test_fault_urls_are_recorded_and_backed_by_files(sample_dir, meta):
    faults = meta["expected"]["faults"]
    assert all(faults[k] for k in ("404", "500", "slow", "truncated", "notimage", "noai"))
    n = sum(len(v) for v in faults.values())
    assert n == sum(meta["expected"]["fault_rows"].values())
    assert n / sum(meta["expected"]["rows"].values()) < 0.03  # a small fraction
    for kind in ("slow", "truncated", "noai", "notimage"):
        for url in faults[kind]:
            path = urlsplit(url).path
            assert path.startswith(f"/fault/{kind}/")
            assert (sample_dir / path.split("/", 3)[3]).is_file()


# ------------------------------------------------------------------------------------------ scenes

@pytest.mark.parametrize("seed", range(12))
def test_rendered_shapes_have_the_colour_the_caption_names(seed):
    import random

    scene = sc.random_scene(random.Random(seed))
    img = sc.render(scene)
    assert 300 <= img.width <= 640 and 300 <= img.height <= 640
    caption = sc.relation(scene)
    for shape in scene.shapes:
        assert shape.color in caption and shape.kind in caption
        x, y, w, h = scene.box(shape)
        assert img.getpixel((x + w // 2, y + h // 2 + h // 8)) == sc.COLORS[shape.color]
    if scene.layout == "pair_h":
        a, b = (scene.box(s) for s in scene.shapes)
        assert a[0] + a[2] <= b[0]  # "to the left of" is literally true
    if scene.layout == "pair_v":
        a, b = (scene.box(s) for s in scene.shapes)
        assert a[1] + a[3] <= b[1]


def test_ln_narratives_split_into_sentences():
    import random

    rng = random.Random(4)
    scene = sc.Scene((sc.Shape("circle", "red", "large", 0, 1), sc.Shape("square", "blue", "small", 2, 1)),
                     "white", 400, 300, "pair_h")
    text = sc.narrative(scene, rng)
    parts = [p.strip() for p in text.split(".") if p.strip()]
    assert len(parts) == 3
    assert "red circle on the left" in parts[0] and "small blue square" in parts[1] and "white" in parts[2]
    assert sc.relation(scene) == "a red circle to the left of a blue square"
