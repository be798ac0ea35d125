"""`pmd sources list` and `pmd sources parse`: outputs, counters, rejects, errors."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from pmd.cli import main
from pmd.counters import CounterBook
from pmd.schemas import validate


def test_sources_list_prints_table1(capsys):
    assert main(["sources", "list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "30.3M" in lines["yfcc100m"] and "12.7" in lines["yfcc100m"]
    assert "0.9M" in lines["coco"] and "12.4" in lines["coco"]
    assert "5.4M" in lines["visual_genome"] and "5.1" in lines["visual_genome"]
    assert "Localized Narratives" in lines["localized_narratives__openimages"]
    assert "extra" in lines["flickr8k"]
    assert "70.0M" in out
    assert main(["sources", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows][:2] == ["coco", "sbu_captions"]
    assert sum(r["pmd"] for r in rows) == 12 and {"flickr8k", "image_folder"} <= {r["name"] for r in rows if not r["pmd"]}
    assert {r["name"]: r["paper_pairs_m"] for r in rows}["conceptual_12m"] == 11.0


def test_sources_parse_writes_pairs_counters_rejects(tmp_path, shared_data, capsys):
    extra = tmp_path / "extra.tsv"
    extra.write_text("just one column\ncaption\tnot a url\n", encoding="utf-8")
    out = tmp_path / "out" / "cc3m.parquet"
    train = shared_data / "sources" / "cc3m" / "Train_GCC-training.tsv"
    assert main(["sources", "parse", "conceptual_captions", str(train), str(extra), "--out", str(out)]) == 0
    assert "kept 5" in capsys.readouterr().out
    table = pq.read_table(out)
    validate(table, "pair")
    rows = table.to_pylist()
    assert [r["text"] for r in rows][0] == "a very typical bus station"
    assert rows[0]["lang"] == "en" and rows[0]["lang_score"] > 0.3 and rows[0]["source"] == "conceptual_captions"
    assert json.loads(rows[0]["meta"]) == {} and rows[0]["input_line"] == 1
    book = CounterBook.from_list(json.loads((tmp_path / "out" / "cc3m.counters.json").read_text()))
    book.check_reconciled()
    c = book.get("ingest", "conceptual_captions")
    assert (c.input, c.kept, dict(c.failed)) == (7, 5, {"wrong_column_count": 1, "bad_url": 1})
    rej = pq.read_table(tmp_path / "out" / "cc3m.rejects.parquet").to_pylist()
    assert [(r["outcome"], r["reason"], r["input_line"]) for r in rej] == [
        ("failed", "wrong_column_count", 1), ("failed", "bad_url", 2)]
    assert rej[0]["input_file"] == str(extra) and rej[0]["stage"] == "ingest"
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_sources_parse_options_and_visual_genome_crops(tmp_path, shared_data):
    out = tmp_path / "vg.parquet"
    vg = shared_data / "sources" / "visual_genome"
    assert main(["sources", "parse", "visual_genome", str(vg), "--out", str(out), "--no-langid",
                 "--option", "image_root=/data/vg/images.zip"]) == 0
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 1278
    assert (rows[0]["crop_x"], rows[0]["crop_y"], rows[0]["crop_width"], rows[0]["crop_height"]) == (421, 57, 82, 139)
    assert rows[0]["image_path"] == "/data/vg/images.zip::VG_100K_2/1.jpg" and rows[0]["lang"] is None


def test_sources_parse_user_errors(tmp_path, capsys):
    assert main(["sources", "parse", "nope", "x", "--out", str(tmp_path / "a.parquet")]) == 2
    assert main(["sources", "parse", "coco", str(tmp_path), "--out", str(tmp_path / "a.parquet"),
                 "--option", "bogus=1"]) == 2
    assert main(["sources", "parse", "coco", str(tmp_path / "missing.json"), "--out",
                 str(tmp_path / "a.parquet")]) == 2
    assert main(["sources", "parse", "coco", str(tmp_path), "--out", str(tmp_path / "a.parquet"),
                 "--option", "novalue"]) == 2
