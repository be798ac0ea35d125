"""The sample's WARC files: readable by warcio and FastWARC, one gzip member per record, planted
pages and records present, recorded facts consistent with the HTML, damaged file really truncated."""

from __future__ import annotations

import collections
import gzip
import io
import json
import zlib
from urllib.parse import urljoin, urlsplit

import pytest
from PIL import Image
from selectolax.lexbor import LexborHTMLParser as HTMLParser


@pytest.fixture(scope="module")
def meta(sample_dir) -> dict:
    return json.loads((sample_dir / "sample.json").read_text())


@pytest.fixture(scope="module")
def warc_records(sample_dir) -> list[dict]:
    from warcio.archiveiterator import ArchiveIterator

    out = []
    with open(sample_dir / "warc/sample.warc.gz", "rb") as f:
        for rec in ArchiveIterator(f):
            out.append({"type": rec.rec_type, "headers": dict(rec.rec_headers.headers),
                        "http": dict(rec.http_headers.headers) if rec.http_headers else {},
                        "body": rec.content_stream().read()})
    return out


def gzip_members(data: bytes) -> int:
    n = 0
    while data:
        d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        d.decompress(data)
        assert d.eof
        data = d.unused_data
        n += 1
    return n


def test_warcio_reads_every_planted_record(warc_records, meta):
    exp = meta["expected"]["warc"]
    counts = collections.Counter(r["type"] for r in warc_records)
    assert dict(counts) == exp["records"]
    assert 40 <= exp["html_responses"] <= 60
    for r in warc_records:
        h = r["headers"]
        assert h["WARC-Record-ID"].startswith("<urn:uuid:") and h["WARC-Date"].endswith("Z")
        if r["type"] != "warcinfo":
            assert h["WARC-Target-URI"].startswith(("http://", "https://"))
    ids = [r["headers"]["WARC-Record-ID"] for r in warc_records]
    assert len(ids) == len(set(ids))
    responses = {(r["headers"]["WARC-Target-URI"], r["headers"]["WARC-Date"]) for r in warc_records
                 if r["type"] == "response"}
    for page in exp["pages"]:
        assert (page["url"], page["warc_date"]) in responses


def test_each_record_is_its_own_gzip_member(sample_dir, meta):
    data = (sample_dir / "warc/sample.warc.gz").read_bytes()
    assert gzip_members(data) == sum(meta["expected"]["warc"]["records"].values())
    page = meta["expected"]["warc"]["pages"][3]
    member = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(data[page["offset"]:])
    assert member.startswith(b"WARC/1.1\r\n") and page["url"].encode() in member


def test_fastwarc_reads_the_same_records(sample_dir, warc_records):
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    with open(sample_dir / "warc/sample.warc.gz", "rb") as f:
        recs = [(r.record_type, r.headers.get("WARC-Target-URI")) for r in ArchiveIterator(f, parse_http=False)]
    assert len(recs) == len(warc_records)
    assert sum(t == WarcRecordType.response for t, _ in recs) == sum(r["type"] == "response" for r in warc_records)


def _reference_image_urls(html: str, page_url: str) -> list[str]:
    """The selection rule recorded in sample.json, applied to the article."""
    tree = HTMLParser(html)
    base = tree.css_first("base")
    base_href = base.attributes.get("href") if base else page_url
    urls = []
    for img in tree.css("article img"):
        cands = []
        parent = img.parent
        if parent is not None and parent.tag == "picture":
            for src in parent.css("source"):
                cands += src.attributes.get("srcset", "").split(",")
        cands += (img.attributes.get("srcset") or img.attributes.get("data-srcset") or "").split(",")
        best = max(((int(c.split()[1][:-1]), c.split()[0]) for c in cands if c.strip()), default=None)
        url = best[1] if best else img.attributes.get("data-src") or img.attributes.get("src")
        assert url and not url.startswith("data:")
        urls.append(urljoin(base_href, url))
    return urls


def test_recorded_paragraphs_and_images_match_the_html(warc_records, meta):
    bodies = {(r["headers"]["WARC-Target-URI"], r["headers"]["WARC-Date"]): r for r in warc_records
              if r["type"] == "response"}
    variants = collections.Counter()
    for page in meta["expected"]["warc"]["pages"]:
        rec = bodies[(page["url"], page["warc_date"])]
        html = rec["body"].decode(page["charset"])
        tree = HTMLParser(html)
        paragraphs = [p.text() for p in tree.css("article > p") if "promo" not in (p.attributes.get("class") or "")]
        assert paragraphs == page["paragraphs"]
        assert [h.text() for h in tree.css("article h1, article h2")] == page["headings"]
        assert _reference_image_urls(html, page["url"]) == page["image_urls"]
        assert tree.css_first("nav") and tree.css_first("footer") and tree.css_first("form") and "<!--" in html
        variants.update(i["variant"] for i in page["images"])
        assert [s["value"] for s in page["sequence"] if s["type"] == "image"] == page["image_urls"]
    assert set(variants) == {"src", "srcset", "picture", "data-src", "data-srcset", "relative"}


def test_images_are_served_and_sized_as_recorded(sample_dir, meta):
    base = meta["base_url"]
    filters = collections.Counter()
    for page in meta["expected"]["warc"]["pages"]:
        for im in page["images"]:
            assert im["url"].startswith(base + "/images/web/")
            with Image.open(sample_dir / urlsplit(im["url"]).path.lstrip("/")) as img:
                assert img.size == (im["width"], im["height"])
                filters[im["filter"]] += 1
                if im["filter"] is None:
                    assert min(img.size) >= 200
                elif im["filter"] == "too_small":
                    assert max(img.size) < 64
                elif im["filter"] == "aspect_ratio":
                    assert img.width / img.height > 3
                else:
                    assert len(img.convert("RGB").getcolors(1 << 16)) <= 4  # one colour (+ JPEG noise)
    assert filters[None] >= 80 and filters["too_small"] and filters["aspect_ratio"] and filters["single_colour"]


def test_special_pages(warc_records, meta):
    exp = meta["expected"]["warc"]
    pages = exp["pages"]
    assert {p["lang"] for p in pages} == {"en", "fr", "de"}
    latin = next(p for p in pages if p["charset"] == "iso-8859-1")
    body = next(r for r in warc_records if r["type"] == "response"
                and r["headers"]["WARC-Target-URI"] == latin["url"])
    assert "charset" not in body["http"]["Content-Type"]
    with pytest.raises(UnicodeDecodeError):
        body["body"].decode("utf-8")
    assert "café" in body["body"].decode("latin-1") and 'charset=iso-8859-1' in body["body"].decode("latin-1")
    recrawled = [p for p in pages if p["crawl"] == 2]
    assert len(recrawled) == 1
    dates = [p["warc_date"] for p in pages if p["url"] == recrawled[0]["url"]]
    assert len(dates) == 2 and dates[0] != dates[1]
    near = [p for p in pages if p.get("near_duplicate_of")]
    assert len(near) == 3
    for p in near:
        orig = next(q for q in pages if q["url"] == p["near_duplicate_of"])
        assert p["paragraphs"][:-1] == orig["paragraphs"][:-1] and p["paragraphs"][-1] != orig["paragraphs"][-1]
    promo = exp["repeated_paragraphs"]["www.shapes-daily.example"]
    daily = [p for p in pages if urlsplit(p["url"]).hostname == "www.shapes-daily.example"]
    assert len(daily) >= 10 and all(p["repeated_paragraph"] == promo for p in daily)
    (revisit,) = [r for r in warc_records if r["type"] == "revisit"]
    assert revisit["headers"]["WARC-Refers-To"] == exp["revisits"][0]["refers_to"]
    assert revisit["headers"]["WARC-Refers-To"] in {p["record_id"] for p in pages}
    (png,) = exp["non_html"]
    rec = next(r for r in warc_records if r["type"] == "response" and r["http"].get("Content-Type") == "image/png")
    assert rec["headers"]["WARC-Target-URI"] == png["url"] and rec["body"].startswith(b"\x89PNG")
    requests = [r for r in warc_records if r["type"] == "request"]
    assert all(r["headers"]["WARC-Concurrent-To"].startswith("<urn:uuid:") for r in requests)


def test_damaged_warc_is_truncated_in_its_last_member(sample_dir, meta):
    from warcio.archiveiterator import ArchiveIterator

    dmg = meta["expected"]["warc"]["damaged"]
    data = (sample_dir / dmg["path"]).read_bytes()
    assert len(data) == dmg["truncated_at"] > dmg["last_member_offset"]
    with pytest.raises(EOFError):
        gzip.decompress(data)
    assert gzip_members(data[:dmg["last_member_offset"]]) == dmg["complete_records"]
    tail = zlib.decompressobj(zlib.MAX_WBITS | 16)
    tail.decompress(data[dmg["last_member_offset"]:])
    assert not tail.eof
    # warcio does not raise on a cut member: it hands back a short body, so readers must check lengths
    read = []
    for rec in ArchiveIterator(io.BytesIO(data)):
        body = rec.content_stream().read()
        declared = rec.http_headers.get_header("Content-Length") if rec.http_headers else None
        read.append((rec.rec_headers.get_header("WARC-Target-URI"), len(body), declared))
    assert len(read) == dmg["records_written"]
    uri, got, declared = read[-1]
    assert uri == dmg["truncated_record_uri"] and got < int(declared)
    assert all(int(d) == n for _, n, d in read[:-1] if d is not None)
    assert all(u in {r[0] for r in read[:-1]} for u in dmg["complete_page_urls"])
