"""Dedup of interleaved documents: URL, image URL frequency, in-doc images, image sets, domain paragraphs, MinHash."""

from __future__ import annotations

import numpy as np

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
