"""Extraction budgets: memory linear in the page, and every limit dropping a page with its own reason."""

from __future__ import annotations

import gzip
import tracemalloc

import pytest

import pmd.interleaved.extract as E
from pmd.config import ConfigError, from_dict
from pmd.interleaved.budgets import depth_estimate_py
from pmd.interleaved.config import ExtractBudgets, InterleavedConfig
from pmd.interleaved.extract import OverBudget, extract_document

WALKERS = ["python"] + (["compiled"] if E._cwalk is not None else [])


@pytest.fixture(params=WALKERS)
def walker(request):
    E.use_walker(request.param)
    yield request.param
    E.use_walker("auto")


def test_deep_page_memory_is_linear(walker):
    """A 90 KB page of 10,000 nested <div>word (the old per-block paths took ~400 MB here) stays small."""
    html = "<div>word" * 10_000  # a str skips the pre-parse depth scan: the walk itself must stay linear
    tracemalloc.start()
    try:
        doc = extract_document(html, "https://x.org/", budgets=ExtractBudgets(max_dom_depth=None))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(t.count("word") for t in doc.texts if t) == 10_000
    assert peak < 40 << 20, peak  # Python-side allocations; lexbor's own DOM is outside tracemalloc


def test_deep_page_hits_depth_budget_before_parsing():
    html = ("<div>word" * 100_000).encode()
    with pytest.raises(OverBudget) as e:
        extract_document(html, "https://x.org/")
    assert e.value.reason == "dom_too_deep"


def test_walk_enforces_depth_nodes_and_time(walker):
    deep = "<span>" * 300 + "x"
    with pytest.raises(OverBudget) as e:
        extract_document(deep, "https://x.org/", budgets=ExtractBudgets(max_dom_depth=100))
    assert e.value.reason == "dom_too_deep"
    assert extract_document(deep, "https://x.org/", budgets=ExtractBudgets(max_dom_depth=400)).texts == ["x"]
    many = "<p><b>x</b> y</p>" * 20_000
    with pytest.raises(OverBudget) as e:
        extract_document(many, "https://x.org/", budgets=ExtractBudgets(max_dom_nodes=10_000))
    assert e.value.reason == "dom_too_many_nodes"
    with pytest.raises(OverBudget) as e:
        extract_document(many, "https://x.org/", budgets=ExtractBudgets(max_seconds=1e-9))
    assert e.value.reason == "extract_timeout"


def test_page_bytes_budget_and_config(shared_data):
    page = gzip.decompress(next((shared_data / "web" / "article-benchmark" / "html").glob("*.gz")).read_bytes())
    with pytest.raises(OverBudget) as e:
        extract_document(page, "https://x.org/", budgets=ExtractBudgets(max_page_bytes=len(page) - 1))
    assert e.value.reason == "page_too_large"
    assert extract_document(page, "https://x.org/", budgets=ExtractBudgets(max_page_bytes=len(page))).texts
    cfg = from_dict(InterleavedConfig, {"extract": {"max_dom_depth": 50, "max_seconds": 2.5}})
    assert cfg.extract == ExtractBudgets(max_dom_depth=50, max_seconds=2.5)
    with pytest.raises(ConfigError, match="extract.max_dom_nodes"):
        from_dict(InterleavedConfig, {"extract": {"max_dom_nodes": 0}})


def test_real_pages_pass_default_budgets_and_depth_scans_agree(shared_data):
    """The C and Python depth scans agree on every real page, and no real page is near the default."""
    pages = sorted((shared_data / "web").rglob("*.htm*")) + sorted((shared_data / "web").rglob("*.html.gz"))
    assert len(pages) >= 300
    for p in pages:
        data = p.read_bytes()
        data = gzip.decompress(data) if p.suffix == ".gz" else data
        est = depth_estimate_py(data)
        if E._cwalk is not None:
            assert E._cwalk.depth_estimate(data) == est, p.name
        assert est < ExtractBudgets().max_dom_depth // 10, p.name
    for edge in (b"<", b"<div", b"<!--", b"<div>", b"</div></div><div><script>x", b"<a/><b><!-- x -->"):
        if E._cwalk is not None:
            assert E._cwalk.depth_estimate(edge) == depth_estimate_py(edge)


def test_extract_stage_counts_a_page_over_budget_as_dropped_with_its_reason(shared_data):
    from pmd.counters import CounterBook
    from pmd.interleaved.stages import extract_pages
    from pmd.interleaved.warc import WarcPage

    page = gzip.decompress(next((shared_data / "web" / "article-benchmark" / "html").glob("*.gz")).read_bytes())
    recs = [WarcPage(f"https://x.org/{i}", html, None, None, None, "f.warc", i, len(html), 200)
            for i, html in enumerate([page, ("<div>word" * 5000).encode(), page])]
    book, rejects = CounterBook(), []
    docs = list(extract_pages(recs, book, rejects, True, ExtractBudgets(max_dom_depth=500)))
    assert len(docs) == 2
    assert [r["reason"] for r in rejects] == ["dom_too_deep"]
    assert rejects[0]["outcome"] == "dropped"
