"""Line-oriented sources (CC3M, CC12M, YFCC100M, Flickr8k): exact formats, failures, units, YFCC rule."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from pmd.errors import UserError
from pmd.records import ImageRef, PairRecord
from pmd.sources.base import InputUnit, iter_lines, line_aligned_ranges
from pmd.sources.registry import get_source
from pmd.sources.yfcc100m import COLUMNS_25
from pmd.verdict import Dropped, Failure


def kinds(outs):
    return Counter(o.reason if isinstance(o, Dropped) else o.error if isinstance(o, Failure) else "kept"
                   for o in outs)


def test_cc3m_caption_then_url_and_failures(tmp_path):
    f = tmp_path / "Train_GCC-training.tsv"
    f.write_text("a very typical bus station\thttp://lh6.ggpht.com/a/IMG_3422.JPG?imgmax=800\n"
                 "no tab on this line\n"
                 "\n"
                 "caption\tnot-a-url\n"
                 "   \thttp://example.com/b.jpg\n"
                 "last line without newline\thttps://example.com/c.jpg", encoding="utf-8")
    outs = list(get_source("conceptual_captions").parse_all([str(f)]))
    assert [type(o).__name__ for o in outs] == ["PairRecord", "Failure", "Failure", "Failure", "Dropped", "PairRecord"]
    assert outs[0].text == "a very typical bus station"
    assert outs[0].image.url == "http://lh6.ggpht.com/a/IMG_3422.JPG?imgmax=800"
    assert (outs[1].error, outs[1].input_line, outs[1].input_file) == ("wrong_column_count", 2, str(f))
    assert (outs[2].error, outs[2].input_line) == ("empty_line", 3)
    assert (outs[3].error, outs[3].input_line) == ("bad_url", 4)
    assert (outs[4].reason, outs[4].input_line) == ("empty_caption", 5)
    assert (outs[5].text, outs[5].input_line) == ("last line without newline", 6)


def test_cc12m_is_url_then_caption(tmp_path):
    f = tmp_path / "cc12m.tsv"
    f.write_text("https://x.org/lamp.jpeg\tVintage <PERSON> brass table lamp\n", encoding="utf-8")
    (rec,) = get_source("conceptual_12m").parse_all([str(f)])
    assert rec.image.url == "https://x.org/lamp.jpeg"
    assert rec.text == "Vintage <PERSON> brass table lamp"
    assert rec.source == "conceptual_12m" and rec.meta == {}
    # the CC3M order fed to CC12M is caught as a bad URL, not silently swapped
    f.write_text("a caption\thttps://x.org/a.jpg\n", encoding="utf-8")
    (fail,) = get_source("conceptual_12m").parse_all([str(f)])
    assert isinstance(fail, Failure) and fail.error == "bad_url"


def test_units_split_on_line_boundaries_with_exact_line_numbers(tmp_path):
    f = tmp_path / "cc.tsv"
    lines = [f"caption number {i} {'x' * (i % 37)}\thttp://example.com/{i}.jpg" for i in range(1, 2001)]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    src = get_source("conceptual_captions")
    units = src.units([str(f)], {}, target_bytes=4096)
    assert len(units) > 10
    assert units[0].start == 0 and units[0].first_line == 1 and units[-1].end is None
    for a, b in zip(units, units[1:]):
        assert a.end == b.start
    data = f.read_bytes()
    for u in units:
        assert u.start == 0 or data[u.start - 1:u.start] == b"\n"
        assert data[:u.start].count(b"\n") + 1 == u.first_line
    outs = [o for u in units for o in src.parse(u)]
    assert len(outs) == 2000 and all(isinstance(o, PairRecord) for o in outs)
    assert [o.input_line for o in outs] == list(range(1, 2001))
    assert outs[1233].text.startswith("caption number 1234 ")


def test_line_aligned_ranges_small_file_is_one_unit(tmp_path):
    f = tmp_path / "a.tsv"
    f.write_bytes(b"a\tb\n")
    assert line_aligned_ranges(str(f), 1 << 20) == [(0, None, 1)]


def test_gzip_file_is_one_unit_and_parses(tmp_path):
    import gzip

    f = tmp_path / "cc12m.tsv.gz"
    with gzip.open(f, "wt", encoding="utf-8") as g:
        for i in range(50):
            g.write(f"https://x.org/{i}.jpg\tcaption {i}\n")
    src = get_source("conceptual_12m")
    units = src.units([str(f)], {}, target_bytes=64)
    assert len(units) == 1
    outs = list(src.parse(units[0]))
    assert len(outs) == 50 and outs[49].text == "caption 49" and outs[49].input_line == 50


def test_crlf_lines_are_accepted(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_bytes(b"cap one\thttp://a.org/1.jpg\r\ncap two\thttp://a.org/2.jpg\r\n")
    assert [(l, t) for l, t in iter_lines(InputUnit("x", (str(f),)))] == [
        (1, "cap one\thttp://a.org/1.jpg"), (2, "cap two\thttp://a.org/2.jpg")]


def test_missing_input_and_unknown_option_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        get_source("conceptual_captions").units([str(tmp_path / "nope.tsv")])
    with pytest.raises(UserError, match="no option 'colour'"):
        get_source("yfcc100m").resolve_options({"colour": "red"})
    with pytest.raises(UserError, match="unknown source 'cc9m'.*conceptual_captions"):
        get_source("cc9m")


# ------------------------------------------------------------------------------------------ YFCC
EN_LONG = "View+of+the+old+pier+at+sunset%2C+taken+from+the+beach."
EN_TITLE = "Sunset+at+the+pier+in+Santa+Monica"
FR_LONG = "Le+coucher+de+soleil+sur+la+jet%C3%A9e%2C+vue+depuis+la+plage."
DE_TITLE = "Sonnenuntergang+am+alten+Pier+mit+meiner+Familie"
LATIN1_LONG = "Coffee+at+the+little+caf%E9+on+the+old+pier"  # %E9 = latin-1 é, not UTF-8
CUT_LONG = "View+of+the+old+pier+at+sunset+from+the+caf%C3"  # a 2-byte sequence cut at the end


def yfcc_row(title="", description="", marker="0", url="http://farm8.staticflickr.com/7198/1_df77.jpg",
             i=0) -> str:
    cols = [str(i), "6985418911", "5ab0e0ab64a7c8e1e3f4a7d41c2c9b07", "39089491@N00", "nino+h",
            "2012-02-16 09:56:37.0", "1331840483", "Canon+PowerShot+S100", title, description,
            "beach,pier", "", "-118.496", "34.008", "16", "http://www.flickr.com/photos/x/1/", url,
            "Attribution License", "http://creativecommons.org/licenses/by/2.0/", "7198", "8", "df77",
            "692d", "jpg", marker]
    assert len(cols) == len(COLUMNS_25)
    return "\t".join(cols)


YFCC_CASES = [
    # id, title, description, marker/url overrides, expected outcome, expected caption field / text
    ("english_description", EN_TITLE, EN_LONG, {}, "kept", "description",
     "View of the old pier at sunset, taken from the beach."),
    ("empty_description_english_title", EN_TITLE, "", {}, "kept", "title", "Sunset at the pier in Santa Monica"),
    ("french_description_english_title", EN_TITLE, FR_LONG, {}, "kept", "title", None),
    ("two_word_description_english_title", EN_TITLE, "Santa+Monica", {}, "kept", "title", None),
    ("html_only_description", EN_TITLE, "%3Ca+href%3D%22http%3A%2F%2Fx.com%22%3E%3C%2Fa%3E", {}, "kept", "title",
     None),
    ("html_and_entities_decoded", "IMG_0520",
     "%3Cb%3EThe+old+pier%3C%2Fb%3E+%26amp%3B+the+beach+at+sunset", {}, "kept", "description",
     "The old pier & the beach at sunset"),
    ("video", EN_TITLE, EN_LONG, {"marker": "1"}, "video", None, None),
    ("both_short", "IMG_0520", "Santa+Monica", {}, "too_short", None, None),
    ("both_empty", "", "", {}, "empty_caption", None, None),
    ("both_non_english", DE_TITLE, FR_LONG, {}, "no_english_caption", None, None),
    ("non_english_description_short_title", "IMG_0520", FR_LONG, {}, "no_english_caption", None, None),
    ("latin1_description_english_title", EN_TITLE, LATIN1_LONG, {}, "kept", "title",
     "Sunset at the pier in Santa Monica"),
    ("cut_description_english_title", EN_TITLE, CUT_LONG, {}, "kept", "title", "Sunset at the pier in Santa Monica"),
    ("english_description_latin1_title", "Caf%E9+du+port", EN_LONG, {}, "kept", "description",
     "View of the old pier at sunset, taken from the beach."),
    ("latin1_description_short_title", "IMG_0520", LATIN1_LONG, {}, "invalid_utf8_caption", None, None),
    ("cut_description_empty_title", "", CUT_LONG, {}, "invalid_utf8_caption", None, None),
    ("latin1_title_french_description", "Caf%E9+du+port+au+coucher+du+soleil", FR_LONG, {}, "invalid_utf8_caption",
     None, None),
    ("short_description_stray_byte_title", "a%80b+c+d", "Santa+Monica", {}, "invalid_utf8_caption", None, None),
    ("bad_marker", EN_TITLE, EN_LONG, {"marker": "x"}, "bad_marker", None, None),
    ("bad_url", EN_TITLE, EN_LONG, {"url": "farm8/x.jpg"}, "bad_url", None, None),
]


@pytest.mark.parametrize("case", YFCC_CASES, ids=[c[0] for c in YFCC_CASES])
def test_yfcc_rule_every_branch(tmp_path, case):
    _, title, desc, over, expected, field, text = case
    f = tmp_path / "yfcc100m_dataset"
    f.write_text(yfcc_row(title, desc, **over) + "\n", encoding="utf-8")
    (out,) = get_source("yfcc100m").parse_all([str(f)])
    if expected == "kept":
        assert isinstance(out, PairRecord)
        assert out.meta["caption_field"] == field
        assert out.lang == "en" and 0 < out.lang_score <= 1
        assert out.image.url == "http://farm8.staticflickr.com/7198/1_df77.jpg"
        assert "download_url" not in out.meta and out.meta["photo_id"] == "6985418911"
        if text is not None:
            assert out.text == text
    elif isinstance(out, Failure):
        assert out.error == expected and out.input_line == 1 and out.input_file == str(f)
    else:
        assert isinstance(out, Dropped) and out.reason == expected and out.input_line == 1


def _parse_yfcc_lines(tmp_path, lines):
    """Every outcome of the YFCC parser over ``lines`` written as one metadata file."""
    f = tmp_path / "yfcc100m_dataset"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return list(get_source("yfcc100m").parse_all([str(f)]))


def test_yfcc_escapes_not_utf8_fall_back_to_the_title_or_are_counted(tmp_path):
    # a batch of ordinary rows with a few bad fields: those rows fall back or drop with a detail,
    # every other row's outcome is what it is without them, and nothing holds U+FFFD
    rows = [yfcc_row(EN_TITLE if i % 2 else DE_TITLE, EN_LONG if i % 3 else FR_LONG, i=i) for i in range(40)]
    bad = {5: yfcc_row(EN_TITLE, LATIN1_LONG, i=5), 11: yfcc_row("IMG_0520", CUT_LONG, i=11),
           17: yfcc_row("caf%E9", "a%80b+caf%C3", i=17)}
    def parse(lines):
        return _parse_yfcc_lines(tmp_path, lines)

    plain = parse(rows)
    mixed = parse([bad.get(i, r) for i, r in enumerate(rows)])
    assert [o for i, o in enumerate(mixed) if i not in bad] == [o for i, o in enumerate(plain) if i not in bad]
    assert mixed[5].meta["caption_field"] == "title" and mixed[5].text == "Sunset at the pier in Santa Monica"
    assert mixed[5].meta["description"] == LATIN1_LONG  # the raw field stays in meta, still escaped
    assert [(o.reason, o.input_line, o.detail) for o in (mixed[11], mixed[17])] == [
        ("invalid_utf8_caption", 12, "description '%C3': unexpected end of data (escapes not UTF-8)"),
        ("invalid_utf8_caption", 18, "description '%80': invalid start byte; title '%E9': unexpected end of data "
                                     "(escapes not UTF-8)")]
    assert all("\ufffd" not in o.text for o in mixed if isinstance(o, PairRecord))
    assert kinds(mixed) == kinds(plain) - Counter({"kept": 2}) + Counter({"invalid_utf8_caption": 2})


def test_yfcc_23_column_webscope_layout_and_wrong_count(tmp_path):
    cols = yfcc_row(EN_TITLE, EN_LONG).split("\t")
    row23 = "\t".join(cols[1:2] + cols[3:])
    f = tmp_path / "yfcc100m_dataset-0"
    f.write_text(row23 + "\n" + "\t".join(cols[:20]) + "\n", encoding="utf-8")
    a, b = get_source("yfcc100m").parse_all([str(f)])
    assert a.meta["caption_field"] == "description" and a.meta["photo_id"] == "6985418911"
    assert "photo_hash" not in a.meta
    assert isinstance(b, Failure) and b.error == "wrong_column_count" and b.input_line == 2


def test_yfcc_options_min_score_and_min_words(tmp_path):
    f = tmp_path / "yfcc100m_dataset"
    f.write_text(yfcc_row("IMG_1", "the+sunset") + "\n", encoding="utf-8")
    src = get_source("yfcc100m")
    (out,) = src.parse_all([str(f)])
    assert isinstance(out, Dropped) and out.reason == "too_short"  # 3 words needed: "more than two"
    (out,) = src.parse_all([str(f)], {"min_words": "2"})
    assert isinstance(out, PairRecord) or out.reason == "no_english_caption"  # now it reaches language ID
    f.write_text(yfcc_row("", EN_LONG) + "\n", encoding="utf-8")
    (out,) = src.parse_all([str(f)], {"min_lang_score": "1.01"})
    assert out.reason == "no_english_caption"


def test_yfcc_keeps_input_order_across_batches(tmp_path):
    rows = []
    for i in range(300):
        rows.append(yfcc_row(EN_TITLE, EN_LONG if i % 3 else "", marker="1" if i % 7 == 0 else "0", i=i))
    f = tmp_path / "yfcc100m_dataset"
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    outs = list(get_source("yfcc100m").parse_all([str(f)]))
    assert [o.input_line for o in outs] == list(range(1, 301))
    assert kinds(outs) == Counter({"kept": 300 - 43, "video": 43})


def test_yfcc_langdetect_baseline_option(tmp_path):
    f = tmp_path / "yfcc100m_dataset"
    f.write_text(yfcc_row(EN_TITLE, EN_LONG) + "\n" + yfcc_row(DE_TITLE, FR_LONG) + "\n", encoding="utf-8")
    a, b = get_source("yfcc100m").parse_all([str(f)], {"langid": "langdetect"})
    assert a.lang == "en" and a.meta["caption_field"] == "description"
    assert b.reason == "no_english_caption"


def test_yfcc_batch_fast_path_equals_row_checks(tmp_path):
    # a batch of plain rows takes the whole-batch marker/URL checks; planting one odd row sends the
    # batch through the row-by-row checks: every other row's outcome must stay the same
    rows = [yfcc_row(EN_TITLE if i % 2 else DE_TITLE, EN_LONG if i % 3 else FR_LONG,
                     marker="1" if i % 5 == 0 else "0", i=i,
                     url="https://farm8.staticflickr.com/7198/%d_df77.jpg" % i) for i in range(60)]
    def parse(lines):
        return _parse_yfcc_lines(tmp_path, lines)

    plain = parse(rows)
    for odd, expect in ((yfcc_row(EN_TITLE, EN_LONG, marker=" 0"), "kept"),
                        (yfcc_row(EN_TITLE, EN_LONG, url="http://[::1]/a.jpg"), "kept"),
                        (yfcc_row(EN_TITLE, EN_LONG, url="http://x.jp"), "bad_url"),
                        (yfcc_row(EN_TITLE, EN_LONG, url="ftp://farm8.staticflickr.com/1.jpg"), "bad_url"),
                        (yfcc_row(EN_TITLE, EN_LONG, marker="2"), "bad_marker")):
        mixed = parse(rows[:30] + [odd] + rows[30:])
        assert mixed[:30] == plain[:30]
        assert mixed[31:] == [dataclasses.replace(o, input_line=o.input_line + 1) for o in plain[30:]]
        assert kinds([mixed[30]]) == Counter({expect: 1})


def test_yfcc_fast_record_builders_equal_the_constructors():
    from pmd.sources.yfcc100m import _dropped, _url_image

    assert _dropped("too_short", "f.tsv", 7) == Dropped("too_short", "f.tsv", 7)
    assert repr(_dropped("video", "f", 1)) == repr(Dropped("video", "f", 1))
    assert _url_image("http://x.org/a.jpg") == ImageRef(url="http://x.org/a.jpg")
    assert _url_image("http://x.org/a.jpg").key() == ImageRef(url="http://x.org/a.jpg").key()


def test_yfcc_meta_keeps_column_order(tmp_path):
    f = tmp_path / "yfcc100m_dataset"
    f.write_text(yfcc_row(EN_TITLE, EN_LONG) + "\n", encoding="utf-8")
    (out,) = get_source("yfcc100m").parse_all([str(f)])
    assert list(out.meta) == [c for c in COLUMNS_25 if c != "download_url"] + ["caption_field"]


def test_flickr8k_token_file(tmp_path):
    (tmp_path / "Images").mkdir()
    f = tmp_path / "Flickr8k.token.txt"
    f.write_text("1000268201_693b08cb0e.jpg#0\tA child in a pink dress .\n"
                 "1000268201_693b08cb0e.jpg#1\tA girl going into a wooden building .\n"
                 "broken line\n", encoding="utf-8")
    a, b, c = get_source("flickr8k").parse_all([str(f)])
    assert a.image.path == str(tmp_path / "Images" / "1000268201_693b08cb0e.jpg")
    assert a.meta == {"image": "1000268201_693b08cb0e.jpg", "caption_index": 0}
    assert b.text == "A girl going into a wooden building ."
    assert isinstance(c, Failure) and c.error == "wrong_column_count" and c.input_line == 3
    (a2, *_) = get_source("flickr8k").parse_all([str(f)], {"image_root": "/data/f8k"})
    assert a2.image.path == "/data/f8k/1000268201_693b08cb0e.jpg"


def test_fsspec_url_inputs_split_and_parse():
    import fsspec

    fs = fsspec.filesystem("memory")
    lines = [f"https://x.org/{i}.jpg\tcaption number {i}" for i in range(1, 301)]
    with fs.open("/pmd-test/cc12m.tsv", "wb") as f:
        f.write(("\n".join(lines) + "\n").encode())
    src = get_source("conceptual_12m")
    units = src.units(["memory://pmd-test/cc12m.tsv"], {}, target_bytes=1000)
    assert len(units) > 3 and units[1].first_line > 1
    outs = [o for u in units for o in src.parse(u)]
    assert [o.input_line for o in outs] == list(range(1, 301))
    assert outs[-1].text == "caption number 300" and outs[-1].input_file == "memory://pmd-test/cc12m.tsv"
    fs.rm("/pmd-test", recursive=True)


def test_yfcc_webscope_bz2_shard_is_one_unit(tmp_path):
    import bz2

    cols = yfcc_row(EN_TITLE, EN_LONG).split("\t")
    row23 = "\t".join(cols[1:2] + cols[3:])
    f = tmp_path / "yfcc100m_dataset-0.bz2"
    f.write_bytes(bz2.compress((row23 + "\n" + row23 + "\n").encode()))
    src = get_source("yfcc100m")
    units = src.units([str(tmp_path)], {}, target_bytes=10)
    assert len(units) == 1 and units[0].end is None
    outs = list(src.parse(units[0]))
    assert [o.input_line for o in outs] == [1, 2] and all(isinstance(o, PairRecord) for o in outs)
    assert outs[0].text == "View of the old pier at sunset, taken from the beach."
