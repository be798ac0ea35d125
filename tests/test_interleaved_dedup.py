"""Dedup of interleaved documents: URL, image URL frequency, in-doc images, image sets, domain paragraphs, MinHash."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pmd.counters import CounterBook
from pmd.interleaved.config import DedupConfig
from pmd.interleaved.dedup import dedup_documents
from pmd.interleaved.minhash import near_duplicates, shingle_hashes, signature
from pmd.records import InterleavedDocument

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def _text(seed: int, n: int = 80) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, size=n))


def _doc(url: str, items: list[str], date: str = "2021-01-01T00:00:00Z", warc: str = "a.warc.gz") -> InterleavedDocument:
    texts = [None if x.startswith("img:") else x for x in items]
    images = [f"https://img.example/{x[4:]}" if x.startswith("img:") else None for x in items]
    return InterleavedDocument(url, texts, images, general_metadata={"date": date, "warc_filename": warc,
                                                                      "warc_record_id": url + date})


def _run(docs, **cfg):
    book = CounterBook()
    base = dict(minhash=False, image_set=False, domain_paragraph_min_count=None)
    base.update(cfg)
    kept, dropped = dedup_documents(docs, DedupConfig(**base), book)
    book.check_reconciled()
    return kept, dropped, book


def test_url_dedup_keeps_latest_crawl():
    old = _doc("https://a.org/p", [_text(1), "img:1.jpg"], date="2020-01-01T00:00:00Z")
    new = _doc("https://a.org/p", [_text(2), "img:2.jpg"], date="2022-01-01T00:00:00Z")
    kept, dropped, book = _run([new, old])
    assert [d.id for d in kept] == [new.id]
    assert [(d.reason, d.input_file) for d in dropped] == [("dup_url", old.id)]


def test_frequent_image_urls_and_in_doc_duplicates_are_removed():
    docs = [_doc(f"https://a.org/{i}", [_text(i), "img:ad.jpg", f"img:{i}.jpg", f"img:{i}.jpg"]) for i in range(12)]
    kept, dropped, book = _run(docs)
    assert len(kept) == 12 and not dropped
    assert all(d.image_urls == [f"https://img.example/{d.url.rsplit('/', 1)[1]}.jpg"] for d in kept)
    assert book.get("dedup_nodes").dropped == {"image_url_too_frequent": 12, "dup_image_in_doc": 12}
    # a document whose only image was an ad loses it and is dropped with a reason
    only_ad = _doc("https://a.org/x", [_text(99), "img:ad.jpg"])
    kept, dropped, _ = _run(docs + [only_ad])
    assert ("doc_no_images_after_dedup", only_ad.id) in [(d.reason, d.input_file) for d in dropped]


def test_identical_image_sets_keep_latest():
    a = _doc("https://a.org/1", [_text(1), "img:x.jpg", "img:y.jpg"], date="2021-01-01T00:00:00Z")
    b = _doc("https://mirror.org/1", [_text(2), "img:y.jpg", "img:x.jpg"], date="2021-06-01T00:00:00Z")
    kept, dropped, _ = _run([a, b], image_set=True)
    assert [d.url for d in kept] == ["https://mirror.org/1"]
    assert dropped[0].reason == "dup_image_set"


def test_domain_paragraphs_repeated_three_times_are_removed():
    promo = "Subscribe to our newsletter to get a new story every morning."
    docs = [_doc(f"https://a.org/{i}", [_text(i) + "\n\n" + promo, f"img:{i}.jpg"]) for i in range(3)]
    other = _doc("https://b.org/1", [_text(9) + "\n\n" + promo, "img:b.jpg"])
    kept, dropped, book = _run(docs + [other], domain_paragraph_min_count=3)
    by_url = {d.url: d for d in kept}
    assert all(promo not in by_url[f"https://a.org/{i}"].texts[0] for i in range(3))
    assert promo in by_url["https://b.org/1"].texts[0]  # once on its own domain: kept
    assert book.get("dedup_nodes").dropped == {"dup_domain_paragraph": 3}


def test_minhash_finds_near_duplicates_not_different_texts():
    base = _text(5, 300)
    words = base.split()
    near = " ".join(words[:150] + ["changed"] + words[151:])
    sa, sb = signature(shingle_hashes(words)), signature(shingle_hashes(near.split()))
    sc = signature(shingle_hashes(_text(6, 300).split()))
    assert np.mean(sa == sb) > 0.8 and np.mean(sa == sc) < 0.2
    assert near_duplicates([("a", sa), ("b", sb), ("c", sc)]) == {"b": "a"}
    old = _doc("https://a.org/1", [base, "img:1.jpg"], date="2020-01-01T00:00:00Z")
    new = _doc("https://c.org/2", [near, "img:2.jpg"], date="2021-01-01T00:00:00Z")
    kept, dropped, _ = _run([old, new], minhash=True)
    assert [d.url for d in kept] == ["https://c.org/2"] and dropped[0].reason == "near_duplicate"


def test_signatures_are_deterministic():
    s1 = signature(shingle_hashes(_text(3).split()), 64, seed=1)
    s2 = signature(shingle_hashes(_text(3).split()), 64, seed=1)
    assert s1.dtype == np.uint64 and (s1 == s2).all()


@pytest.mark.spark
def test_spark_dedup_equals_the_in_memory_dedup(tmp_path):
    """Every step as Spark jobs (pmd.spark.interleaved_dedup) gives the in-memory answer."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    from pmd.interleaved.stages import ROW_SCHEMA, doc_row
    from pmd.spark.interleaved_dedup import run_dedup
    from pmd.spark.session import spark_session
    from pmd.spark.stages import StageDir

    promo = "Subscribe to our newsletter to get a new story every morning."
    base = _text(5, 300).split()
    docs = [_doc(f"https://a.org/{i}", [_text(i) + "\n\n" + promo, "img:ad.jpg", f"img:{i}.jpg", f"img:{i}.jpg"])
            for i in range(12)]
    docs += [_doc("https://a.org/0", [_text(50), "img:r.jpg"], date="2022-01-01T00:00:00Z"),  # recrawl
             _doc("https://b.org/only-ad", [_text(51), "img:ad.jpg"]),
             _doc("https://c.org/set1", [_text(52), "img:x.jpg", "img:y.jpg"]),
             _doc("https://d.org/set2", [_text(53), "img:y.jpg", "img:x.jpg"], date="2021-06-01T00:00:00Z"),
             _doc("https://e.org/near-old", [" ".join(base), "img:n1.jpg"], date="2020-01-01T00:00:00Z"),
             _doc("https://f.org/near-new", [" ".join(base[:150] + ["changed"] + base[151:]), "img:n2.jpg"]),
             _doc("https://g.org/near-third", [" ".join(base[:100] + ["other"] + base[101:]), "img:n3.jpg"])]
    cfg = DedupConfig()
    book = CounterBook()
    kept, dropped = dedup_documents(sorted(docs, key=lambda d: d.id), cfg, book)
    assert {d.reason for d in dropped} >= {"dup_url", "doc_no_images_after_dedup", "dup_image_set", "near_duplicate"}

    spark = spark_session()
    table = pa.Table.from_pylist([{k: r.get(k) for k in ROW_SCHEMA.names} for r in map(doc_row, docs)],
                                 schema=ROW_SCHEMA)
    df = spark.createDataFrame(table.to_pandas(), schema=from_arrow_schema(ROW_SCHEMA))
    sd = StageDir(str(tmp_path), "dedup")
    run_dedup(spark, df, cfg, 1, sd)
    rows = [r.asDict() for r in spark.read.parquet(sd.data).collect()]
    got_kept = sorted(r["id"] for r in rows if r["kind"] == "doc")
    assert got_kept == sorted(d.id for d in kept)
    got_drops = sorted((r["reason"], r["input_file"]) for r in rows if r["kind"] == "reject" and r["stage"] == "dedup")
    assert got_drops == sorted((d.reason, d.input_file) for d in dropped)
    nodes = CounterBook()
    for r in rows:
        if r["kind"] == "counters":
            nodes = nodes.merge(CounterBook.from_list(json.loads(r["message"])))
    assert nodes.get("dedup_nodes").to_dict() == book.get("dedup_nodes").to_dict()
    texts = {r["id"]: r["texts"] for r in rows if r["kind"] == "doc"}
    assert all(texts[d.id] == d.texts for d in kept)
