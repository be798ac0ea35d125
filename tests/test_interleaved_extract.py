"""Single-pass interleaved extraction: DOM rules on small pages, real pages, the sample's planted pages."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter

import pytest


import pmd.interleaved.charset as C
from pmd.interleaved.compiled import walk_key
from pmd.interleaved.extract import decode_html, extract_document, parse_srcset, resolve_url

PARA = ("The harbour was busy that morning, and the fishermen were already mending their nets "
        "while the gulls circled above the boats, waiting for scraps from the first catch of the day.")


def _page(body: str, head: str = "") -> str:
    return f"<html><head><title>T</title>{head}</head><body>{body}</body></html>"


def test_texts_and_images_alternate_in_page_order():
    html = _page(f"<article><p>{PARA} One.</p><img src='a.jpg' alt='first' width='300' height='200'>"
                 f"<p>{PARA} Two.</p><p>{PARA} Three.</p><img src='/b.png'></article>")
    doc = extract_document(html, "https://x.org/blog/post.html")
    assert doc.images == [None, "https://x.org/blog/a.jpg", None, "https://x.org/b.png"]
    assert doc.texts[0] == f"{PARA} One."
    assert doc.texts[2] == f"{PARA} Two.\n\n{PARA} Three."
    assert doc.texts[1] is None and doc.texts[3] is None
    assert doc.metadata[1] == {"src": "a.jpg", "alt_text": "first", "rendered_width": "300", "rendered_height": "200"}
    assert all((t is None) != (i is None) for t, i in zip(doc.texts, doc.images))


def test_boilerplate_tags_comments_and_hidden_are_dropped_inline_unwrapped():
    html = _page("<nav><a href='/'>Home</a> <a href='/x'>News</a></nav><header>Site header</header>"
                 "<script>var x = 1;</script><style>p{}</style><!-- a comment -->"
                 f"<article><p>{PARA} <b>bold</b> and <a href='/l'>a link</a> <em>inline</em>.</p>"
                 "<div style='display:none'>hidden text</div><form><input value='q'><button>Go</button></form></article>"
                 "<aside>Sidebar</aside><footer>Copyright 2020</footer>")
    doc = extract_document(html, "https://x.org/")
    assert doc.texts == [f"{PARA} bold and a link inline."]


def test_main_content_drops_menus_related_links_and_comments():
    links = "".join(f"<li><a href='/r{i}'>Related story number {i} with a long title</a></li>" for i in range(8))
    html = _page(f"<div class='menu'><a href='/'>Home</a></div><div id='content'><div class='article-body'>"
                 f"<p>{PARA} A.</p><p>{PARA} B, C, D.</p><ul><li>First list item inside the article text.</li>"
                 f"<li>Second list item inside the article text.</li></ul><p>{PARA} E.</p></div>"
                 f"<ul class='links'>{links}</ul></div>"
                 f"<div class='comments'><p>{PARA} comment.</p></div>")
    doc = extract_document(html, "https://x.org/")
    text = "\n".join(t for t in doc.texts if t)
    assert "First list item inside the article text." in text and f"{PARA} E." in text
    assert "Related story" not in text and "comment." not in text and "Home" not in text
    whole = extract_document(html, "https://x.org/", main_content=False)
    assert "comment." not in "\n".join(t for t in whole.texts if t)  # boilerplate class, even without selection


def test_srcset_picture_lazy_and_base_href():
    html = _page(f"<article><p>{PARA}</p>"
                 "<img src='data:image/gif;base64,R0lGOD' data-src='lazy.jpg'>"
                 "<img src='small.jpg' srcset='s.jpg 320w, l.jpg 1280w, m.jpg 640w'>"
                 "<img data-srcset='a1.jpg 1x, a2.jpg 2x'>"
                 "<picture><source srcset='p.webp 800w, p2.webp 1600w' type='image/webp'><img src='p.jpg'></picture>"
                 f"<p>{PARA}</p></article>", head="<base href='https://cdn.example.com/img/'>")
    doc = extract_document(html, "https://x.org/a/b.html")
    assert doc.image_urls == ["https://cdn.example.com/img/lazy.jpg", "https://cdn.example.com/img/l.jpg",
                              "https://cdn.example.com/img/a2.jpg", "https://cdn.example.com/img/p2.webp"]


def test_parse_srcset_and_resolve_url():
    assert parse_srcset("a.jpg 100w, b.jpg 300w, c.jpg 200w") == "b.jpg"
    assert parse_srcset("a.jpg, b.jpg 2x") == "b.jpg"
    assert parse_srcset("only.jpg") == "only.jpg"
    assert resolve_url("https://x.com/blog/p.html", "img/a.jpg") == "https://x.com/blog/img/a.jpg"
    assert resolve_url("https://x.com/p", "//cdn.x.com/a.jpg") == "https://cdn.x.com/a.jpg"
    assert resolve_url("https://x.com/p", "javascript:void(0)") is None


def test_charset_header_meta_and_fallback():
    latin = "<html><head><meta charset='iso-8859-1'></head><body><p>Café crème brûlée</p></body></html>"
    text, enc = decode_html(latin.encode("latin-1"))
    assert "Café crème brûlée" in text and enc == "cp1252"
    text, enc = decode_html("<p>naïve</p>".encode("utf-8"), "utf-8")
    assert text == "<p>naïve</p>" and enc == "utf-8"
    text, enc = decode_html("<p>naïve</p>".encode("latin-1"), "no-such-charset")
    assert text == "<p>naïve</p>" and enc == "cp1252"  # bad declaration, invalid UTF-8: cp1252 never fails
    page = f"<html><body><article><p>Grüße: {PARA}</p></article></body></html>"
    for data in (page.encode("utf-16"), b"\xef\xbb\xbf" + page.encode("utf-8")):  # byte-order marks win
        assert extract_document(data, "https://x.org/").texts == [f"Grüße: {PARA}"]


def test_empty_and_garbage_input_give_empty_documents():
    for html in ("", b"\x00\xff\xfe garbage", "<html></html>", "just text without tags"):
        doc = extract_document(html, "https://x.org/")
        assert len(doc.texts) == len(doc.images) <= 1


def _tokens(s: str) -> Counter:
    return Counter(re.findall(r"\w+", s.lower()))


def test_article_benchmark_quality_and_every_page_extracts(shared_data):
    """Token recall/precision against the ground truth over all dev pages (targets 0.90 / 0.80)."""
    d = shared_data / "web" / "article-benchmark"
    gt = json.loads((d / "ground-truth.json").read_text(encoding="utf-8"))
    recalls, precisions = [], []
    for key, item in sorted(gt.items()):
        doc = extract_document(gzip.decompress((d / "html" / f"{key}.html.gz").read_bytes()), item["url"])
        got, want = _tokens("\n".join(t for t in doc.texts if t)), _tokens(item["articleBody"])
        inter = sum((got & want).values())
        recalls.append(inter / max(sum(want.values()), 1))
        precisions.append(inter / sum(got.values()) if got else 0.0)
    assert len(recalls) == 91
    assert sum(recalls) / len(recalls) >= 0.90
    assert sum(precisions) / len(precisions) >= 0.80


def test_every_trafilatura_cache_page_extracts(shared_data):
    pages = sorted((shared_data / "web" / "trafilatura-cache").glob("*.htm*"))
    assert len(pages) >= 50
    with_text = 0
    for p in pages:
        doc = extract_document(p.read_bytes(), f"https://{p.name}/")
        assert all((t is None) != (i is None) for t, i in zip(doc.texts, doc.images))
        with_text += any(doc.texts)
    assert with_text >= len(pages) - 3


def test_sample_pages_give_planted_images_in_order_and_paragraphs(sample_dir):
    from pmd.interleaved.warc import WarcPage, read_warc

    meta = json.loads((sample_dir / "sample.json").read_text())
    exp = meta["expected"]["warc"]
    pages = {r.record_id: r for r in read_warc(sample_dir / exp["path"]) if isinstance(r, WarcPage)}
    assert len(pages) == exp["html_responses"]
    for p in exp["pages"]:
        r = pages[p["record_id"].strip("<>")]
        doc = extract_document(r.html, r.url, charset=r.charset)
        assert doc.image_urls == p["image_urls"], p["url"]
        text = "\n\n".join(t for t in doc.texts if t)
        for para in p["paragraphs"]:
            assert para in text, (p["url"], para)
        for logo in p["boilerplate_images"]:
            assert logo not in doc.image_urls


def test_cli_extract_prints_json(tmp_path, capsys):
    from pmd.cli import main

    f = tmp_path / "p.html"
    f.write_text(_page(f"<article><p>{PARA}</p><img src='x.jpg'></article>"), encoding="utf-8")
    assert main(["interleaved", "extract", str(f), "--url", "https://h.org/a/"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["texts"] == [PARA, None] and out["images"] == [None, "https://h.org/a/x.jpg"]


def test_cli_build_rejects_bad_config_before_work(tmp_path):
    from pmd.cli import main

    assert main(["interleaved", "--out", str(tmp_path / "o"), "--set", "profile=laion"]) == 2
    assert main(["interleaved", "--out", str(tmp_path / "o"), "--set", "filter_overrides={image_min_sid: 3}"]) == 2
    assert main(["interleaved", "--out", str(tmp_path / "o"), "--set", "nosuchkey=1"]) == 2
    assert not (tmp_path / "o" / "sample").exists()


# --------------------------------------------------------------------------- compiled walk == Python walk

_EDGE_PAGES = [
    "", "<html></html>", "just text", "<body>\u00a0 \u2003<p>\u3000x\u00a0y</p>\v<p>\x0b</p></body>",
    "<p>a<br>b<br><br></p><br><div><br>c<br></div><p><br></p>",
    "<p><a href='/x'>  link \u2003 text </a> tail<a href='/y'></a><a>\u00a0</a></p>",
    "<div class='comments' id='main'><p>x</p></div><article class='comment'><p>y</p></article>"
    "<main class='share'><p>z</p></main><div class='' id=''>e</div><div class id>f</div>",
    "<div hidden>h</div><div style='DISPLAY : none'>s</div><div style=''>t</div><div aria-hidden='true'>a</div>"
    "<div aria-hidden>b</div><section style='visibility:hidden'>v</section><img hidden src='a.jpg'>",
    "<amp-img src='a.jpg' width=10 height=20 alt='A'></amp-img><my-widget class='post'><p>c</p></my-widget>"
    "<fb:like class='article'>fb</fb:like><x-y><div>d</div></x-y><ns:div>n</ns:div>",
    "<picture><source data-srcset='a.webp 1x, b.webp 2x'><source srcset='c.webp'><img src='d.jpg' alt=x>"
    "</picture><picture><img src='e.jpg'></picture><picture></picture><picture><source srcset=''><!--c--></picture>",
    "<p>x<img src='data:image/gif;base64,AA' data-src='real.jpg'>y<img src='spacer.gif'><img src='javascript:x'>"
    "<img src='//cdn.x/a.jpg'><img src='https://x.org/a b.jpg'><img src='http://[::1/a.jpg'><img></p>",
    "<table><tr><td>a</td><td>b</td></tr></table><ul><li>1<li>2</ul><dl><dt>t<dd>d</dl><pre>  p \n q </pre>",
    "<svg><text>s</text></svg><math><mi>m</mi></math><template><p>t</p></template><noscript>n</noscript>"
    "<script>1</script><style>p{}</style><!-- c --><button>b</button><select><option>o</select>",
    "<p>Caf\u00e9 na\u00efve \U0001f600 \u0130stanbul \u00df</p><p>\ufffd\u200b\u2028x\u2029y\u0085z</p>",
    "<p>" + "<b>" * 300 + "deep" + "</b>" * 300 + "</p>" + "<div>" * 200 + "nest" + "</div>" * 200,
    "<body><p>one</p></body><p>after body</p>", "<frameset><frame src='x'></frameset>",
    "<html><body><div><p>a</div></p><p>b<p>c</li></body></html>",
    "<p>i<img src='a.jpg' style='DISPLAY: None'><img src='b.jpg' style='visibility :hidden'><img src='c.jpg' "
    "style='x' aria-hidden='TRUE'><img src='d.jpg' aria-hidden='true'><img src='\u00e9.jpg' alt='\u00e9'>"
    "<img data-src='SPACER.GIF' src=' e.jpg '><img srcset=' f.jpg,g.jpg ' alt='' width=1><img srcset='h.jpg 1x, i.jpg nanx, "
    "j.jpg 1_5x, k.jpg infw, , l.jpg 2' height='9px'><img srcset='" + ", ".join(f"s{i}.jpg {i}w" for i in range(80)) + "'>"
    "<img data-srcset='data:image/png;base64,x 2x' data-lazy-src='Blank.gif' data-original='//cdn.x/o.jpg'>"
    "<img src2='rel/x.png?v=1' srcset=''><img style='display:none' src='\u00e9'><img style='\u212a' src='k.jpg'>"
    "<img src='a.jpg' src='b.jpg'><amp-img srcset='m.jpg 640w' hidden></amp-img><img src='https://h.org/p.jpg#'></p>",
    "<div class='post-body entry-content'><p>" + "word, " * 60 + "</p><p>more text here.</p>"
    "<div class='related'><a href='/1'>r1</a><a href='/2'>r2</a></div></div><footer>f</footer>",
]


def _compiled_or_skip():
    import importlib.util

    import pmd.interleaved.extract as E

    if importlib.util.find_spec("pmd.interleaved._walk") is None:
        pytest.skip("pmd.interleaved._walk is not built (no C compiler at install): the Python walk is used")
    assert E._cwalk is not None, "the compiled walk is built but was not enabled (see the debug log)"
    return E


def _all_real_pages(shared_data, sample_dir):
    from pmd.interleaved.warc import WarcPage, read_warc

    pages = []
    for p in sorted((shared_data / "web").rglob("*")):
        if p.is_file() and p.suffix in (".gz", ".html", ".htm"):
            data = p.read_bytes()
            pages.append((f"https://{p.stem}/a/", gzip.decompress(data) if p.suffix == ".gz" else data, None))
    meta = json.loads((sample_dir / "sample.json").read_text())
    warcs = sorted((shared_data / "warc").glob("*.warc.gz")) + [sample_dir / w for w in meta["warc"]]
    for w in warcs:
        pages += [(r.url, r.html, r.charset) for r in read_warc(w) if isinstance(r, WarcPage)]
    return pages


def _both_walks_equal(E, html, url):
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html if isinstance(html, str) else E.to_utf8(html)[0])
    for root in (tree.body, tree.root):
        if root is not None:
            assert walk_key(E._walk_py(root, url)) == walk_key(E._walk_c(root, url)), url


def _both_documents_equal(E, html, url, charset=None):
    for mc in (True, False):
        try:
            E.use_walker("python")
            a = E.extract_document(html, url, charset=charset, main_content=mc)
            E.use_walker("compiled")
            b = E.extract_document(html, url, charset=charset, main_content=mc)
        finally:
            E.use_walker("auto")
        assert (a.texts, a.images, a.metadata, a.general_metadata) == (b.texts, b.images, b.metadata, b.general_metadata), url


def test_compiled_walk_matches_python_walk_on_edge_cases():
    E = _compiled_or_skip()
    for i, body in enumerate(_EDGE_PAGES):
        for html in (body, _page(body), _page(body, head="<base href='https://cdn.example.com/i/'>")):
            _both_walks_equal(E, html, f"https://x.org/{i}/p.html")
            _both_documents_equal(E, html, f"https://x.org/{i}/p.html")


def test_compiled_walk_matches_python_walk_on_every_real_page(shared_data, sample_dir):
    """Blocks, paths, link counts, image positions and the final documents of both walks, on every page of
    ../shared/data/web, every HTML response of the real WARCs and of the embedded sample's WARC."""
    E = _compiled_or_skip()
    pages = _all_real_pages(shared_data, sample_dir)
    assert len(pages) >= 200
    for url, html, charset in pages:
        _both_walks_equal(E, html, url)
        _both_documents_equal(E, html, url, charset)


def test_walker_falls_back_to_python_for_unverified_selectolax(monkeypatch, caplog):
    import pmd.interleaved.compiled as compiled
    import pmd.interleaved.extract as E

    monkeypatch.setattr(compiled, "VERIFIED_SELECTOLAX", frozenset({"0.0.0"}))
    with caplog.at_level("WARNING", logger="pmd.interleaved.compiled"):
        assert compiled.load_compiled() is None
    assert any(r.levelname == "WARNING" and "Python walk" in r.getMessage() for r in caplog.records)
    html = _page(f"<article><p>{PARA}</p><img src='a.jpg'></article>")
    assert E.extract_document(html, "https://x.org/").texts[0] == PARA


def test_compiled_utf8_check_matches_decode(shared_data):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    E = _compiled_or_skip()
    pieces = [b"a", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe0\x80\xaf",
              b"\xf4\x90\x80\x80", b"\xff", b"\x80", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xef\xbf\xbf", b"abcdefgh"]

    @settings(max_examples=500, deadline=None)
    @given(st.one_of(st.binary(max_size=40), st.lists(st.sampled_from(pieces), max_size=12).map(b"".join)))
    def check(data):
        assert C._utf8_valid(data) == C._utf8_valid_py(data)

    check()
    for p in sorted((shared_data / "web" / "trafilatura-cache").glob("*.htm*")):
        data = p.read_bytes()
        assert C._utf8_valid(data) == C._utf8_valid_py(data), p.name


def test_compiled_walk_matches_python_walk_on_invalid_utf8_text():
    from selectolax.lexbor import LexborHTMLParser

    E = _compiled_or_skip()
    for raw in (b"<p>caf\xe9 \xff\xfe ok \xc3</p><p>\xed\xa0\x80 x \xf0\x9f</p>", b"<div>\x80<a>l\xe2\x82ink</a> \xc3\xa9</div>"):
        tree = LexborHTMLParser(raw)
        assert walk_key(E._walk_py(tree.body, "https://x.org/")) == walk_key(E._walk_c(tree.body, "https://x.org/"))


def test_resolve_url_fast_paths_match_urljoin():
    """resolve_url's shortcuts (absolute, network-path and plain relative references) give urljoin's URL."""
    from urllib.parse import urljoin

    from hypothesis import given, settings
    from hypothesis import strategies as st

    def reference(base, src):
        src = src.strip()
        if not src or src.startswith(("data:", "javascript:", "about:", "blob:")):
            return None
        try:
            url = urljoin(base, src)
        except ValueError:
            return None
        return url if url[:7].lower() == "http://" or url[:8].lower() == "https://" else None

    atoms = ["a", "img", ".", "..", "/", "//", "?", "#", ";", ":", "x.png", "%20", " ", "\t", "é", "[", "]", "@",
             "\\", "=", "&", "A", "http:", "https://h.org"]
    bases = ["https://x.org", "https://x.org/", "https://x.org/a/b.html", "HTTP://X.ORG/a/", "https://u@x.org:8080/a/b/c",
             "https://x.org/a/./b", "https://x.org/a/../b/", "https://x.org//a", "https://x.org/a;p/b", "https://x.org/a?q#f",
             "ftp://x.org/a/", "https://[::1]/a/", "//x.org/a", "", " https://x.org/a b/c", "https://x.org/a/.."]

    @settings(max_examples=3000, deadline=None)
    @given(st.sampled_from(bases), st.lists(st.sampled_from(atoms), min_size=1, max_size=7).map("".join))
    def check(base, src):
        assert resolve_url(base, src) == reference(base, src)

    check()


def test_compiled_srcset_parse_matches_python():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    E = _compiled_or_skip()
    atoms = ["a.jpg", "b.png", " ", ",", "1x", "2x", "100w", "\t", "\n", "1.5x", "nanw", "infx", "1_0w", "w", "x", ",,",
             "c.jpg 1x", "\x0b", "\x1c", "\u00e9", "-1w", "1e3w", " 2 x"]

    @settings(max_examples=2000, deadline=None)
    @given(st.lists(st.sampled_from(atoms), max_size=10).map("".join))
    def check(v):
        c = E._cwalk.parse_srcset(v)
        if c is not NotImplemented:  # non-ASCII values go to the Python parser
            assert c == parse_srcset(v)

    check()
