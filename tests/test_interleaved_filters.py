"""Filters: metric values, profiles, strict overrides, counting by reason, re-applying stored metrics."""

from __future__ import annotations

import pytest

from pmd.config import ConfigError
from pmd.counters import CounterBook
from pmd.interleaved.config import resolve_filters
from pmd.interleaved.filters import (char_ngrams, char_repetition_ratio, char_repetition_ratios, filter_documents, image_reason,
                                     refilter_document, repetition_ratio, text_metrics)
from pmd.records import InterleavedDocument

GOOD = ("The children walked to the old library after school, and they spent the whole afternoon reading "
        "about the history of their town, which was founded by farmers more than two hundred years ago.")
GOOD2 = ("When the rain stopped, the streets were full of people again, and the market opened its stalls "
         "for the evening so that everyone could buy fresh bread and vegetables before going home.")


def test_text_metrics_values():
    m = text_metrics("the cat and the dog, 123!")
    assert m["words"] == 6
    assert m["stopword_ratio"] == pytest.approx(3 / 6, abs=1e-4)  # the, and, the
    assert m["punct_ratio"] == pytest.approx(2 / 6, abs=1e-4)  # "," and "!"
    assert m["special_ratio"] == pytest.approx(10 / 25, abs=1e-4)  # 5 spaces + 3 digits + "," + "!" of 25 chars
    assert text_metrics(GOOD)["char_rep"] == 0.0 and text_metrics(GOOD)["word_rep"] == 0.0
    assert text_metrics("buy now " * 30)["word_rep"] == 1.0
    assert text_metrics("porn " * 3 + GOOD)["flagged_ratio"] > 0.05


def test_numpy_char_repetition_equals_reference():
    texts = ["abc " * 200, GOOD * 3, GOOD + GOOD2, "x" * 500, "short", "", GOOD, "la " * 7]
    ref = [repetition_ratio(char_ngrams(t, 10)) for t in texts]
    for text, r in zip(texts, ref):
        assert char_repetition_ratio(text) == pytest.approx(r)
    assert char_repetition_ratios(texts) == pytest.approx(ref)  # batched: n-grams never cross texts
    assert ref[0] == pytest.approx(0.5, abs=0.01) and ref[6] == 0.0  # 4 distinct 10-grams: top 2 of 4


def test_profiles_and_strict_overrides():
    ob, m3 = resolve_filters("obelics"), resolve_filters("m3w")
    assert (ob.image_min_side, ob.image_max_aspect, ob.max_images, ob.drop_single_colour) == (150, 2.0, 30, False)
    assert (m3.image_min_side, m3.image_max_aspect, m3.max_images, m3.drop_single_colour) == (64, 3.0, None, True)
    assert resolve_filters("obelics", {"image_min_side": 100}).image_min_side == 100
    with pytest.raises(ConfigError, match="image_min_sid"):
        resolve_filters("obelics", {"image_min_sid": 100})
    with pytest.raises(ConfigError):
        resolve_filters("laion")


def test_image_reasons():
    ob, m3 = resolve_filters("obelics"), resolve_filters("m3w")
    assert image_reason("https://x.org/site-logo.png", None, ob) == "image_url_banned"
    assert image_reason("https://x.org/a.gif", None, ob) == "image_format"
    assert image_reason("https://x.org/a.jpg", {"rendered_width": "100", "rendered_height": "300"}, ob) == "image_too_small"
    assert image_reason("https://x.org/a.jpg", None, ob, width=900, height=300) == "image_aspect_ratio"
    assert image_reason("https://x.org/a.jpg", None, m3, width=900, height=300) is None
    assert image_reason("https://x.org/a.jpg", None, m3, width=60, height=300) == "image_too_small"
    assert image_reason("https://x.org/a.jpg", None, m3, width=200, height=200, single_colour=True) == "image_single_colour"
    assert image_reason("https://x.org/photo", {"rendered_width": "50%"}, ob) is None  # unknown: decided after download


def _doc(url: str, texts_images: list) -> InterleavedDocument:
    texts = [x if not x.startswith("http") else None for x in texts_images]
    images = [x if x.startswith("http") else None for x in texts_images]
    return InterleavedDocument(url, texts, images, [None if t else {"src": i} for t, i in zip(texts, images)])


def test_filter_documents_counts_every_removal_and_stores_metrics():
    docs = [
        _doc("https://a.org/1", [GOOD + "\n\nShort line", "https://a.org/p.jpg", GOOD2, "https://a.org/logo.jpg"]),
        _doc("https://a.org/2", [GOOD]),  # no image
        _doc("https://a.org/3", ["Der Hund läuft schnell über die Wiese und der Mann schaut ihm dabei lange zu, "
                                 "weil er sich über das schöne Wetter freut und nichts anderes zu tun hat.",
                                 "https://a.org/q.jpg"]),
    ]
    book = CounterBook()
    cfg = resolve_filters("obelics", {"para_min_stopword_ratio": None, "doc_min_stopword_ratio": None})
    out = list(filter_documents(docs, cfg, book.get("filter"), book.get("filter_nodes")))
    kept = [d for d in out if isinstance(d, InterleavedDocument)]
    assert [d.url for d in kept] == ["https://a.org/1"]
    assert {d.reason for d in out if not isinstance(d, InterleavedDocument)} == {"doc_too_few_images", "doc_language"}
    nodes = book.get("filter_nodes")
    assert nodes.dropped == {"para_too_few_words": 1, "image_url_banned": 1}
    book.check_reconciled()
    d = kept[0]
    assert d.texts == [GOOD, None, GOOD2] and d.images == [None, "https://a.org/p.jpg", None]
    assert d.metadata[0]["paragraphs"][0]["words"] == len(GOOD.split())
    m = d.general_metadata["metrics"]
    assert m["lang"] == "en" and m["lang_score"] >= 0.8 and m["images"] == 1

    # stricter thresholds re-applied from the stored metrics alone
    stricter = resolve_filters("obelics", {"doc_min_words": 1000})
    again, reasons = refilter_document(d, stricter)
    assert again is None and reasons == {"doc_too_few_words": 1}
    same, reasons = refilter_document(d, resolve_filters("obelics"))
    assert same is not None and same.texts == d.texts and not reasons
    fewer, reasons = refilter_document(d, resolve_filters("obelics", {"para_max_words": 32}))  # GOOD: 33 words
    assert fewer.texts == [None, GOOD2] and fewer.images == ["https://a.org/p.jpg", None]
    assert reasons == {"para_too_many_words": 1}


# --------------------------------------------------------------------------- compiled text statistics

def _textstats_or_skip():
    import importlib.util

    from pmd.interleaved import filters as F

    if importlib.util.find_spec("pmd.interleaved._textstats") is None:
        pytest.skip("pmd.interleaved._textstats is not built (no C compiler at install): the Python code is used")
    assert F._ts is not None
    return F


_ODD_TEXTS = ["", "a", "x" * 9, "x" * 10, "ab" * 40, "don't stop ’til it's o'clock 'quoted' x'", "__a_b__ 1_2 ½ ² Ⅷ",
              "İstanbul ǅ ß ΣΑΣ Ωmega", "日本語のテキスト、カンマ，です。" * 5, "\U0001f600 \u200b\u00a0 tab\tnl\n", "a' 'b ’’c’d",
              "$$ || $| €£¥ “quoted” «guillemets» … – — · • © ® ™ ° § ¶", "word " * 70, ("the cat sat " * 30).strip()]


def _special_py(F, t):
    return len(F._SPECIAL_RE.findall(t)) + sum(map(t.count, F._SPECIAL_TWICE))


def _real_paragraphs(shared_data):
    import gzip as _gzip

    from pmd.interleaved.extract import extract_document

    out = list(_ODD_TEXTS)
    for p in sorted((shared_data / "web").rglob("*")):
        if p.is_file() and p.suffix in (".gz", ".html", ".htm"):
            data = p.read_bytes()
            doc = extract_document(_gzip.decompress(data) if p.suffix == ".gz" else data, f"https://{p.stem}/",
                                   main_content=False)
            texts = [t for t in doc.texts if t]
            out += texts
            out += [x.strip() for t in texts for x in t.split("\n\n") if x.strip()]
    return out


def test_compiled_text_statistics_match_python_on_real_paragraphs(shared_data):
    """Words, special-character counts, word and character repetition ratios of the compiled module
    equal the Python/numpy values on every paragraph and text of the real pages (and odd strings)."""
    F = _textstats_or_skip()
    texts = _real_paragraphs(shared_data)
    assert len(texts) > 3000
    stop, flag = F.word_list("stopwords_en"), F.word_list("flagged_en")
    for t in texts:
        low = t.lower()
        words = F._WORD.findall(low)
        assert F._ts.words(low) == words, t[:80]
        assert F._ts.count_chars(t, F._SPECIAL_CHARS) == _special_py(F, t), t[:80]
        assert F._ts.para_counts(t, F._SPECIAL_CHARS, F._SENT_PUNCT_CHARS, words, stop, flag) == (
            _special_py(F, t), sum(map(t.count, F._SENT_PUNCT)), sum(map(stop.__contains__, words)),
            sum(map(flag.__contains__, words))), t[:80]
        for n in (5, 2, 1):
            assert F._ts.word_rep(words, n) == F.repeated_fraction(F.word_ngrams(words, n)), t[:80]
        if len(t) - 10 + 1 >= 64:
            assert F._ts.char_rep_ratio(t, 10) == F._char_repetition_ratio_np(t, 10), t[:80]
    for i in range(0, len(texts), 37):
        batch = texts[i:i + 37]
        assert F._ts.char_rep_ratios(batch, 10) == F._char_repetition_ratios_np(batch, 10)
    assert F._ts.char_rep_ratios([], 10) == F._char_repetition_ratios_np([], 10) == []


def test_compiled_text_statistics_fall_back_on_surrogates():
    F = _textstats_or_skip()
    t = "abc\ud800def" * 20
    assert F._ts.char_rep_ratio(t, 10) is None and F._ts.char_rep_ratios([t], 10) is None


def test_compiled_text_statistics_match_python_on_random_text():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    F = _textstats_or_skip()
    alphabet = st.sampled_from(list("ab c'’_-.,$|\n\t\u00a0é日、，ΣİǅⅧ½\U0001f600") + ["ab", "the ", "xyz "])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(alphabet, max_size=120).map("".join))
    def check(t):
        low = t.lower()
        words = F._WORD.findall(low)
        assert F._ts.words(low) == words
        assert F._ts.count_chars(t, F._SPECIAL_CHARS) == _special_py(F, t)
        stop, flag = F.word_list("stopwords_en"), F.word_list("flagged_en")
        assert F._ts.para_counts(t, F._SPECIAL_CHARS, F._SENT_PUNCT_CHARS, words, stop, flag) == (
            _special_py(F, t), sum(map(t.count, F._SENT_PUNCT)), sum(map(stop.__contains__, words)),
            sum(map(flag.__contains__, words)))
        assert F._ts.word_rep(words, 2) == F.repeated_fraction(F.word_ngrams(words, 2))
        if len(t) >= 73:
            assert F._ts.char_rep_ratio(t, 10) == F._char_repetition_ratio_np(t, 10)
        assert F._ts.char_rep_ratios([t, t[:30], t[5:]], 3) == F._char_repetition_ratios_np([t, t[:30], t[5:]], 3)

    check()


# --------------------------------------------------------------------------- named rules

def test_each_rule_is_a_named_unit_testable_alone():
    from pmd.interleaved.rules import AtLeast, MinPunctuation, image_facts, profile_rules

    rules = {r.name: r for r in profile_rules("obelics")}
    assert isinstance(rules["para_min_words"], AtLeast)
    assert rules["para_min_words"]({"words": 3}) == "para_too_few_words"
    assert rules["para_min_words"]({"words": 4}) is None
    punct = rules["para_min_punct_ratio"]
    assert isinstance(punct, MinPunctuation) and punct.min_words == 12
    assert punct({"words": 11, "punct_ratio": 0.0}) is None  # short paragraphs are exempt
    assert punct({"words": 12, "punct_ratio": 0.0}) == "para_little_punctuation"
    assert rules["doc_min_lang_score"]({"lang": "de", "lang_score": 0.99}) == "doc_language"
    assert rules["image_url_bans"](image_facts("https://x.org/Site-LOGO.png", None)) == "image_url_banned"
    assert rules["image_min_side"](image_facts("https://x.org/a.jpg", None, width=100, height=900)) == "image_too_small"
    for r in rules.values():  # every rule says what it reads and what it counts
        d = r.describe()
        assert d["name"] == r.name and d["reason"] and d["metric"] and d["level"] in ("paragraph", "document", "image")


def test_a_profile_is_a_list_of_rules_and_null_disables_one():
    from pmd.interleaved.config import FilterConfig
    from pmd.interleaved.rules import profile_rules

    names = [r.name for r in profile_rules("obelics")]
    keys = {f.name for f in __import__("dataclasses").fields(FilterConfig)}
    assert set(names) <= keys and len(names) == len(set(names)) == 25
    m3w = [r.name for r in profile_rules("m3w")]
    assert not any(n.startswith("para_") for n in m3w) and "drop_single_colour" in m3w and "image_formats" not in m3w
    fewer = [r.name for r in profile_rules("obelics", {"para_min_words": None, "max_images": None})]
    assert fewer == [n for n in names if n not in ("para_min_words", "max_images")]
    reasons = [r.reason for r in profile_rules("obelics")]
    assert len(reasons) == len(set(reasons))  # one reason per rule: counts per reason name the rule


def test_each_known_size_meets_every_size_rule_in_turn():
    """The declared size is checked against all size rules before the decoded one (as before the split)."""
    ob = resolve_filters("obelics")
    meta = {"rendered_width": "300", "rendered_height": "900"}  # declared: passes the sides, fails the aspect
    assert image_reason("https://x.org/a.jpg", meta, ob, width=100, height=100) == "image_aspect_ratio"
    assert image_reason("https://x.org/a.jpg", None, ob, width=100, height=100) == "image_too_small"


def test_list_filters_prints_every_rule_of_the_profile(capsys):
    from pmd.cli import main

    assert main(["interleaved", "--list-filters", "--set", "profile=m3w", "--set",
                 "filter_overrides.image_min_side=null"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("profile m3w") and "image_max_aspect" in out and "image_min_side" not in out
    assert "doc_language" in out and "para_min_words" not in out
    assert main(["interleaved", "--list-filters"]) == 0
    out = capsys.readouterr().out
    assert "profile obelics" in out and "profile m3w" in out and "para_little_punctuation" in out
