"""Charset handling on real pages: a stray bad byte keeps UTF-8 (counted), bad declarations are harmless."""

from __future__ import annotations

import gzip

import pytest

from pmd.interleaved.charset import decode_counted
from pmd.interleaved.extract import extract_document


def _utf8_page(shared_data) -> bytes:
    """A real article-benchmark page with non-ASCII UTF-8 text."""
    for p in sorted((shared_data / "web" / "article-benchmark" / "html").glob("*.gz")):
        data = gzip.decompress(p.read_bytes())
        if data.count(b"\xe2\x80") > 20 and b"\xe2\x80\x99" in data:
            return data
    pytest.fail("no UTF-8 page with typographic quotes")


def test_one_stray_byte_keeps_a_utf8_page_utf8_and_is_counted(shared_data):
    data = _utf8_page(shared_data)
    clean = extract_document(data, "https://x.org/a/")
    cut = data.index(b"</body>") if b"</body>" in data else len(data) // 2
    damaged = data[:cut] + b"\xff" + data[cut:]  # one invalid byte, after the article
    doc = extract_document(damaged, "https://x.org/a/")
    assert doc.general_metadata["charset"] == "utf-8"
    assert doc.general_metadata["decode_errors"] == 1
    assert "\u2019" in "".join(t for t in doc.texts if t)  # no cp1252 mojibake ("â€™")
    assert "\u00e2\u20ac" not in "".join(t for t in doc.texts if t)
    assert doc.texts == clean.texts
    assert "decode_errors" not in clean.general_metadata


def test_a_cp1252_page_stays_cp1252(shared_data):
    text = "Caf\u00e9 cr\u00e8me, na\u00efve \u2013 \u201cquoted\u201d. " * 30
    data = f"<html><body><article><p>{text}</p></article></body></html>".encode("cp1252")
    got, enc, bad = decode_counted(data)
    assert (got.count("\u00e9"), enc, bad) == (30, "cp1252", 0)


@pytest.mark.parametrize("label", ["punycode", "idna", "rot13", "base64", "unicode_escape", "no-such-charset", "utf-7"])
def test_a_declared_non_text_codec_is_treated_as_unknown(shared_data, label):
    data = _utf8_page(shared_data)
    doc = extract_document(data, "https://x.org/a/", charset=label)
    assert doc.general_metadata["charset"] == "utf-8"
    assert doc.texts == extract_document(data, "https://x.org/a/").texts
    meta = data.replace(b"<head>", f"<head><meta charset='{label}'>".encode(), 1)
    assert extract_document(meta, "https://x.org/a/").general_metadata["charset"] == "utf-8"


def test_invalid_base_href_is_skipped(shared_data):
    data = _utf8_page(shared_data)
    assert b"<head" in data
    i = data.index(b">", data.index(b"<head")) + 1
    bad = data[:i] + b'<base href="http://[::1">' + data[i:]
    doc = extract_document(bad, "https://x.org/a/")
    good = extract_document(data, "https://x.org/a/")
    assert doc.texts == good.texts and doc.images == good.images


def test_cli_charset_punycode_and_bad_base_give_no_traceback(tmp_path, capsys, shared_data):
    from pmd.cli import main

    data = _utf8_page(shared_data)
    f = tmp_path / "p.html"
    f.write_bytes(data.replace(b"<head>", b'<head><base href="http://[::1">', 1))
    assert main(["interleaved", "extract", str(f), "--url", "https://h.org/a/", "--charset", "punycode"]) == 0
    assert '"charset": "utf-8"' in capsys.readouterr().out
