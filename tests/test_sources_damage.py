"""Damaged copies of the real source excerpts: one bad file or row fails alone, counted.

A truncated ``.gz``, a fake ``.bz2``, invalid UTF-8 (a stray byte, an EUC-JP caption) and a source
whose every row fails, through ``Source.parse`` and ``pmd sources parse``; plus the command's
``--out`` checks. Every damaged file is a copy in tmp_path of a file in ../shared/data/sources.
"""

from __future__ import annotations

import bz2
import gzip
import os
from collections import Counter

import pyarrow.parquet as pq
import pytest

from pmd.cli import main
from pmd.records import PairRecord
from pmd.sources.registry import get_source
from pmd.verdict import Failure


def _counts(outs) -> Counter:
    return Counter("kept" if isinstance(o, PairRecord) else getattr(o, "error", None) or o.reason for o in outs)


def test_truncated_gz_and_fake_bz2_fail_alone(shared_data, tmp_path, capsys):
    src = shared_data / "sources" / "yfcc100m" / "yfcc100m_dataset-head200.tsv"
    raw = src.read_bytes()
    alone = _counts(get_source("yfcc100m").parse_all([str(src)]))
    packed = gzip.compress(raw)
    cut = tmp_path / "yfcc100m_dataset-cut.tsv.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    fake = tmp_path / "yfcc100m_dataset-fake.tsv.bz2"
    fake.write_bytes(raw[:5000])  # named .bz2, not compressed at all
    cutbz = tmp_path / "yfcc100m_dataset-cut2.tsv.bz2"
    cutbz.write_bytes(bz2.compress(raw)[:3000])
    outs = list(get_source("yfcc100m").parse_all([str(src), str(cut), str(fake), str(cutbz)]))
    got = _counts(outs)
    fails = [o for o in outs if isinstance(o, Failure) and o.error == "input_read_error"]
    assert sorted(f.input_file for f in fails) == sorted(map(str, (cut, fake, cutbz)))
    assert any("EOFError" in f.message for f in fails) and any("OSError" in f.message for f in fails)
    assert got["kept"] >= alone["kept"]  # the good file is whole; a cut file gives what it holds

    out = tmp_path / "out" / "yfcc.parquet"
    rc = main(["sources", "parse", "yfcc100m", str(src), str(cut), str(fake), str(cutbz), "--out", str(out),
               "--no-langid"])
    assert rc == 0 and "failed" in capsys.readouterr().out
    assert pq.read_table(out).num_rows == got["kept"]
    rej = pq.read_table(str(out)[:-8] + ".rejects.parquet").to_pylist()
    read_errors = sorted(r["input_file"] for r in rej if r["reason"] == "input_read_error")
    assert read_errors == sorted(map(str, (cut, fake, cutbz)))


def test_truncated_gz_json_source_fails_alone(shared_data, tmp_path):
    src = shared_data / "sources" / "coco" / "captions_val2017-excerpt50.json"
    alone = _counts(get_source("coco").parse_all([str(src)]))
    cut = tmp_path / "captions_cut.json.gz"
    cut.write_bytes(gzip.compress(src.read_bytes())[:2000])
    got = _counts(get_source("coco").parse_all([str(src), str(cut)]))
    assert got["kept"] == alone["kept"] > 0 and got["input_read_error"] == 1


def test_invalid_utf8_rows_fail_with_a_reason(shared_data, tmp_path, capsys):
    src = shared_data / "sources" / "cc3m" / "Train_GCC-training.tsv"
    lines = src.read_bytes().split(b"\n")
    url2 = lines[1].split(b"\t")[1]
    lines[1] = "日本の猫はとてもかわいいです".encode("euc-jp") + b"\t" + url2  # an EUC-JP caption
    lines[2] = lines[2].replace(b" ", b" \xff", 1)  # one stray byte in an English caption
    bad = tmp_path / "Train_GCC-bad.tsv"
    bad.write_bytes(b"\n".join(lines))
    outs = list(get_source("conceptual_captions").parse_all([str(bad)]))
    fails = [o for o in outs if isinstance(o, Failure)]
    assert [(f.error, f.input_line) for f in fails] == [("invalid_utf8", 2), ("invalid_utf8", 3)]
    assert "\\x" in fails[0].message  # the bytes are shown, escaped
    kept = [o for o in outs if isinstance(o, PairRecord)]
    assert len(kept) == _counts(get_source("conceptual_captions").parse_all([str(src)]))["kept"] - 2
    assert all("\ufffd" not in k.text for k in kept)

    out = tmp_path / "cc3m.parquet"  # with language ID: the EUC-JP row never reaches it
    assert main(["sources", "parse", "conceptual_captions", str(bad), "--out", str(out)]) == 0
    assert "invalid_utf8=2" in capsys.readouterr().out
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == len(kept) and all(r["text"] != "" and "\ufffd" not in r["text"] for r in rows)
    assert url2.decode() not in {r["image_url"] for r in rows}


def test_invalid_utf8_in_one_json_caption(shared_data, tmp_path):
    src = shared_data / "sources" / "coco" / "captions_val2017-excerpt50.json"
    data = src.read_bytes()
    at = data.index(b'"caption": "') + len(b'"caption": "') + 3
    bad = tmp_path / "captions_bad.json"
    bad.write_bytes(data[:at] + b"\xa4\xb3" + data[at:])
    alone = _counts(get_source("coco").parse_all([str(src)]))
    got = _counts(get_source("coco").parse_all([str(bad)]))
    assert got["invalid_utf8"] == 1 and got["kept"] == alone["kept"] - 1


def test_every_row_failed_exits_nonzero_with_one_line(shared_data, tmp_path, capsys):
    src = shared_data / "sources" / "cc3m" / "Train_GCC-training.tsv"
    bad = tmp_path / "Train_GCC-shifted.tsv"
    bad.write_bytes(b"\n".join(l.replace(b"\t", b" ") for l in src.read_bytes().split(b"\n") if l) + b"\n")
    out = tmp_path / "cc3m.parquet"
    rc = main(["sources", "parse", "conceptual_captions", str(bad), "--out", str(out), "--no-langid"])
    cap = capsys.readouterr()
    assert rc != 0 and cap.out == ""
    err = [l for l in cap.err.splitlines() if "ERROR" in l]  # (each failed row is also logged as a warning)
    assert len(err) == 1 and "nothing kept" in err[0] and "wrong_column_count=5" in err[0]
    assert "Traceback" not in cap.err
    assert pq.read_table(str(out)[:-8] + ".rejects.parquet").num_rows == 5  # the rejects are there to read


def test_out_checks(shared_data, tmp_path, capsys):
    src = tmp_path / "Train_GCC-training.tsv"
    src.write_bytes((shared_data / "sources" / "cc3m" / "Train_GCC-training.tsv").read_bytes())
    before = src.read_bytes()
    for out in (tmp_path, src):  # a directory where a file is meant; the input itself
        rc = main(["sources", "parse", "conceptual_captions", str(src), "--out", str(out), "--no-langid"])
        cap = capsys.readouterr()
        assert rc == 2 and "Traceback" not in cap.err and len([l for l in cap.err.splitlines() if l]) == 1
    assert src.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_out_read_only_dir(shared_data, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc = main(["sources", "parse", "conceptual_captions",
                   str(shared_data / "sources" / "cc3m" / "Train_GCC-training.tsv"), "--out", str(ro / "x.parquet")])
        assert rc == 2 and "Traceback" not in capsys.readouterr().err
    finally:
        ro.chmod(0o755)


def test_wit_latin1_byte_fails_the_row(shared_data, tmp_path):
    """WIT is read through a text stream (csv): a Latin-1 byte fails its row, the file goes on."""
    lines = (shared_data / "sources" / "wit" / "wit_v1.train.all-00000-of-00010.tsv").read_bytes().split(b"\n")
    cols = lines[1].split(b"\t")
    cols[0] = b"en"  # the excerpt's rows are French and Dutch: make one an English row
    lines[1] = b"\t".join(cols)
    f = tmp_path / "wit_en.tsv"
    f.write_bytes(b"\n".join(lines))
    assert _counts(get_source("wit").parse_all([str(f)])) == {"kept": 1, "not_english_row": 1}
    f.write_bytes(b"\n".join(lines).replace("Clark, lauréat".encode(), b"Clark, laur\xe9at"))
    outs = list(get_source("wit").parse_all([str(f)]))
    assert [(getattr(o, "error", None), o.input_line) for o in outs] == [("invalid_utf8", 2), (None, 5)]
