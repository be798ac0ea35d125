"""The YFCC columnar emitter (``Yfcc100m.parse_batches``, preferred by ``unit_batches``) writes exactly
the rows of the object path (``outcome_batch`` of ``parse``'s records, drops and failures, through
``parse_results``' crash rule): same ids, meta JSON bytes, languages, scores, lines, reasons, order."""

from __future__ import annotations

import bz2
import json

import pyarrow as pa
import pytest

import pmd.sources.yfcc100m as yfcc
from pmd.pairs.ingest import _item_batches, parse_results, unit_batches
from pmd.pairs.outcomes import PAIR_OUTCOME_SCHEMA, flat_meta_json, needs_no_escape, outcome_batch
from pmd.sources.registry import get_source
from pmd.sources.yfcc100m import COLUMNS_23, COLUMNS_25

SRC = "yfcc100m"

EN_LONG = "View+of+the+old+pier+at+sunset%2C+taken+from+the+beach."
EN_TITLE = "Sunset+at+the+pier+in+Santa+Monica"
FR_LONG = "Le+coucher+de+soleil+sur+la+jet%C3%A9e%2C+vue+depuis+la+plage."
LATIN1_LONG = "Coffee+at+the+little+caf%E9+on+the+old+pier"
URL = "http://farm8.staticflickr.com/7198/{i}_df77.jpg"


def row(i: int, title: str = EN_TITLE, description: str = EN_LONG, marker: str = "0", url: str | None = None,
        nickname: str = "nino+h", tags: str = "beach,pier", ncols: int = 25) -> str:
    cols = {"line_number": str(i), "photo_id": str(6985418911 + i), "photo_hash": "5ab0e0ab64a7c8e1e3f4a7d41c2c9b07",
            "user_nsid": "39089491@N00", "user_nickname": nickname, "date_taken": "2012-02-16 09:56:37.0",
            "date_uploaded": "1331840483", "capture_device": "Canon+PowerShot+S100", "title": title,
            "description": description, "user_tags": tags, "machine_tags": "", "longitude": "-118.496",
            "latitude": "34.008", "accuracy": "16", "page_url": f"http://www.flickr.com/photos/x/{i}/",
            "download_url": URL.format(i=i) if url is None else url, "license_name": "Attribution License",
            "license_url": "http://creativecommons.org/licenses/by/2.0/", "server_id": "7198", "farm_id": "8",
            "secret": "df77", "secret_original": "692d", "extension": "jpg", "marker": marker}
    return "\t".join(cols[c] for c in (COLUMNS_25 if ncols == 25 else COLUMNS_23))


EDGE_LINES = [
    row(0),                                               # kept, description
    row(1, description=""),                               # kept, title
    row(2, ncols=23),                                     # the Webscope layout, kept
    row(3, marker="1"),                                   # video
    row(4, marker="x"),                                   # bad marker
    row(5, marker=" 0 "),                                 # marker with spaces: a photo
    row(6, url="farm8/x.jpg"),                            # bad URL
    row(7, url="http://[::1/x.jpg"),                      # a bracket: is_valid_url decides
    "a\tb\tc",                                            # wrong column count
    "",                                                   # empty line
    "   ",                                                # blank line
    row(11, description=LATIN1_LONG),                     # %E9: title fallback
    row(12, title="IMG_0520", description=LATIN1_LONG),   # %E9: invalid_utf8_caption with a detail
    row(13, title="Caf%E9", description="a%80b+caf%C3"),  # both fields not UTF-8
    row(14, nickname="Zoë", description="Café+au+bord+de+la+mer+et+du+port"),  # raw non-ASCII text
    row(15, nickname='ni"no\\h'),                         # quote and backslash: JSON escapes
    row(16, description="The+old+pier%1F+at+sunset+from+the+beach"),  # %1F in a caption
    row(17, tags="beach\x1fpier"),                        # a raw control character in a meta value
    row(18, tags="beach\x7fpier"),                        # DEL: printable for JSON, not for isprintable
    row(19, nickname="nino\u2028h"),                      # a non-ASCII separator character
    row(20, description="%3Cb%3EThe+old+pier%3C%2Fb%3E+%26amp%3B+the+beach+at+sunset"),  # HTML
    row(21, title="IMG_0520", description="Santa+Monica"),  # too short
    row(22, title="", description=""),                    # empty caption
    row(23, title="Sonnenuntergang+am+alten+Pier+mit+meiner+Familie", description=FR_LONG),  # not English
    row(24, ncols=23, marker="1"),                        # a 23-column video
    row(25, description="A+caption+with+a+percent+%25s+and+%25%25+signs+in+it"),  # % in the meta
    "\t".join(["x"] * 24),                                # 24 columns
    "\t".join(["x"] * 26),                                # 26 columns
]


def tables(path, options=None, batch_size=8192, target_bytes=64 << 20):
    """(columnar rows, object-path rows) of every unit of ``path``, as tables."""
    src = get_source(SRC)
    units = src.units([str(path)], options, target_bytes)
    new = [b for u in units for b in unit_batches(SRC, u, dict(options or {}), batch_size)]
    old = [b for u in units
           for b in _item_batches(SRC, u, parse_results(SRC, u, dict(options or {})), batch_size, PAIR_OUTCOME_SCHEMA)]
    assert all(b.num_rows <= batch_size for b in new)
    return pa.Table.from_batches(new, PAIR_OUTCOME_SCHEMA), pa.Table.from_batches(old, PAIR_OUTCOME_SCHEMA)


def assert_same(new: pa.Table, old: pa.Table) -> None:
    for name in PAIR_OUTCOME_SCHEMA.names:  # a readable diff first
        assert new.column(name).to_pylist() == old.column(name).to_pylist(), name
    assert new.equals(old)


def write(tmp_path, lines, name="yfcc100m_dataset", ending="\n"):
    f = tmp_path / name
    f.write_text(ending.join(lines) + ending, encoding="utf-8")
    return f


@pytest.fixture
def no_object_parse(monkeypatch):
    """Fails if the columnar path falls back to the object parse (call after computing references)."""
    def boom(*a, **k):
        raise AssertionError("object parse used")

    def arm():
        monkeypatch.setattr(yfcc.Yfcc100m, "parse_lines", boom)

    return arm


def test_edge_lines_equal_the_object_path(tmp_path):
    new, old = tables(write(tmp_path, EDGE_LINES))
    assert_same(new, old)
    reasons = set(new.column("reason").to_pylist())
    assert {"video", "bad_marker", "bad_url", "wrong_column_count", "empty_line", "invalid_utf8_caption",
            "too_short", "empty_caption", "no_english_caption", None} <= reasons
    metas = [json.loads(m) for m in new.column("meta").to_pylist() if m is not None]
    assert {m["user_nickname"] for m in metas} >= {'ni"no\\h', "Zoë", "nino\u2028h"}
    assert {m["user_tags"] for m in metas} >= {"beach\x1fpier", "beach\x7fpier"}


@pytest.mark.parametrize("rows_per_batch,batch_size", [(7, 8192), (7, 3), (8192, 5), (1, 1)])
def test_batch_boundaries(tmp_path, monkeypatch, rows_per_batch, batch_size):
    # lines cut into parse batches of 7 (and output batches of 3 or 5): groups with no kept row,
    # all kept, one row; several units of the same file (first lines > 1)
    monkeypatch.setattr(yfcc, "BATCH_ROWS", rows_per_batch)
    lines = EDGE_LINES * 3 + [row(100 + i) for i in range(10)] + [row(200 + i, marker="1") for i in range(9)]
    f = write(tmp_path, lines)
    new, old = tables(f, batch_size=batch_size)
    assert_same(new, old)
    new, old = tables(f, batch_size=batch_size, target_bytes=2000)
    assert len(get_source(SRC).units([str(f)], None, 2000)) > 3
    assert_same(new, old)


def test_clean_input_never_uses_the_object_parse(tmp_path, no_object_parse):
    f = write(tmp_path, EDGE_LINES)
    ref = tables(f)[1]
    no_object_parse()
    new = pa.Table.from_batches(
        [b for u in get_source(SRC).units([str(f)]) for b in unit_batches(SRC, u, {}, 8192)], PAIR_OUTCOME_SCHEMA)
    assert_same(new, ref)


def test_raw_invalid_bytes_fall_back_to_the_object_parse_for_their_block(tmp_path, monkeypatch):
    # stray bytes in the file (not escapes): the guard's invalid_utf8 failures, other rows as ever;
    # only the damaged unit's block goes through the object parse
    lines = [row(i) for i in range(29)] + ["bad\xa4line"]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    data = data.replace(b"nino+h", b"nino\xffh", 1).replace(b"/photos/x/5/", b"/photos/\xfe/5/", 1)
    data = data.replace(b"\xc2\xa4", b"\xa4")
    f = tmp_path / "yfcc100m_dataset"
    f.write_bytes(data)
    for target_bytes in (64 << 20, 2000):
        new, old = tables(f, target_bytes=target_bytes)
        assert_same(new, old)
        assert new.column("reason").to_pylist().count("invalid_utf8") == 2
        assert new.column("reason").to_pylist()[-1] == "wrong_column_count"
    used = []
    real = yfcc.Yfcc100m.parse_lines

    def spy(self, *a, **k):
        used.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(yfcc.Yfcc100m, "parse_lines", spy)
    units = get_source(SRC).units([str(f)], None, 2000)
    assert len(units) > 3
    new = pa.Table.from_batches([b for u in units for b in unit_batches(SRC, u, {}, 8192)], PAIR_OUTCOME_SCHEMA)
    assert_same(new, old)
    damaged = [u for u in units if any(bad in data[u.start:u.end] for bad in (b"\xff", b"\xfe", b"\xa4"))]
    assert len(used) == len(damaged) == 3 < len(units)  # the clean units never use the object parse


def test_a_raw_invalid_byte_in_a_caption_fails_its_row_only(tmp_path):
    """A stray byte inside the description or title that would become the caption: fastText is
    given U+FFFD in its place (a lone surrogate cannot reach its C++ string and used to fail the
    whole unit as one parse_error row); the row is the guard's invalid_utf8 failure, the rest kept."""
    lines = [row(i) for i in range(30)]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    data = data.replace(b"View+of", b"View\xfe+of", 1)
    f = tmp_path / "yfcc100m_dataset"
    f.write_bytes(data)
    new, old = tables(f)
    assert_same(new, old)
    assert new.num_rows == 30
    reasons = new.column("reason").to_pylist()
    assert reasons.count("invalid_utf8") == 1 and reasons.count(None) == 29


def test_crlf_lines(tmp_path):
    assert_same(*tables(write(tmp_path, EDGE_LINES[:8], ending="\r\n")))


def test_langdetect_option(tmp_path):
    lines = [row(0), row(1, description=""), row(2, description=FR_LONG), row(3, title="IMG_0520")]
    assert_same(*tables(write(tmp_path, lines), {"langid": "langdetect"}))


def test_lang_options(tmp_path):
    f = write(tmp_path, EDGE_LINES)
    assert_same(*tables(f, {"lang_labels": "en,fr", "min_lang_score": 0.5, "min_words": 4}))


def test_bad_option_is_one_parser_crash_row(tmp_path):
    new, old = tables(write(tmp_path, EDGE_LINES[:3]), {"langid": "nope"})
    assert_same(new, old)
    assert new.column("reason").to_pylist() == ["parser_crash"]


def test_crash_mid_unit_ends_it_as_the_guard_does(tmp_path, monkeypatch):
    monkeypatch.setattr(yfcc, "BATCH_ROWS", 5)
    real = yfcc.choose_captions
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) % 3 == 0:
            raise RuntimeError("boom in the third batch")
        return real(*a, **k)

    monkeypatch.setattr(yfcc, "choose_captions", flaky)
    f = write(tmp_path, [row(i) for i in range(20)])
    src = get_source(SRC)
    (unit,) = src.units([str(f)])
    calls.clear()
    new = pa.Table.from_batches(list(unit_batches(SRC, unit, {}, 8192)), PAIR_OUTCOME_SCHEMA)
    calls.clear()
    old = pa.Table.from_batches(
        list(_item_batches(SRC, unit, parse_results(SRC, unit, {}), 8192, PAIR_OUTCOME_SCHEMA)), PAIR_OUTCOME_SCHEMA)
    assert_same(new, old)
    assert new.num_rows == 11 and new.column("reason")[-1].as_py() == "parse_error"
    assert "(after 10 record(s)" in new.column("message")[-1].as_py()


def test_truncated_bz2_is_one_read_error_after_the_rows_read(tmp_path):
    data = bz2.compress(("\n".join(row(i) for i in range(30000)) + "\n").encode())  # > one 8 MB block
    f = tmp_path / "yfcc100m_dataset-0.bz2"
    f.write_bytes(data[: len(data) * 4 // 5])
    new, old = tables(f)
    assert_same(new, old)
    assert new.num_rows > 1000 and new.column("reason")[-1].as_py() == "input_read_error"


def test_sample_yfcc_file(sample_dir, no_object_parse):
    spec = json.loads((sample_dir / "sample.json").read_text(encoding="utf-8"))["sources"][SRC]
    for p in spec["paths"]:
        new, old = tables(sample_dir / p, spec["options"])
        assert_same(new, old)
        assert set(new.column("outcome").to_pylist()) >= {"kept", "dropped", "failed"}


def test_real_excerpt(shared_data):
    f = shared_data / "sources" / "yfcc100m" / "yfcc100m_dataset-head200.tsv"
    new, old = tables(f)
    assert new.num_rows == 200
    assert_same(new, old)
    new, old = tables(f, batch_size=17, target_bytes=20_000)
    assert_same(new, old)


def test_other_sources_have_no_columnar_path():
    from pmd.sources.base import InputUnit

    assert get_source("conceptual_captions").parse_batches(InputUnit("conceptual_captions", ("x.tsv",)), {}, 10) is None


@pytest.mark.parametrize("values", [
    ["a", "b"], ['a"b', "c"], ["a\\b", "c"], ["a\x1fb", "c"], ["a\x7f", "é"], ["\u2028", "x"], ["%s", "%%"], ["", ""],
])
def test_flat_meta_json_is_json_dumps(values):
    names = ["zeta", "alpha"]
    flat = tuple(values + ["skip"]) * 2
    for plain in (False, needs_no_escape("\t".join(flat), "\t")):
        out = flat_meta_json(names, [0, 1], flat, 3, [0, 1], "mid", ["title", 'de"sc'], plain)
        want = [json.dumps({"zeta": values[0], "alpha": values[1], "mid": e}, ensure_ascii=False, sort_keys=True)
                for e in ("title", 'de"sc')]
        assert out == want


def test_needs_no_escape():
    assert needs_no_escape("a b\tc", "\t") and not needs_no_escape("a b\tc")
    assert not needs_no_escape('a"b', "\t") and not needs_no_escape("a\\b") and not needs_no_escape("a\x01")
    assert needs_no_escape("é ü", "\t") and not needs_no_escape("é\x1f") and not needs_no_escape("é\u2028")
