"""pmd.text.normalize: small pure normalisers (unit tests + hypothesis properties)."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmd.text.normalize import (ascii_only, clean_caption, clean_yfcc_text, clean_yfcc_texts,
                                collapse_whitespace, collapse_whitespace_many, nfc, replace_newlines, strip_html, unescape_html,
                                url_decode, word_count)

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
markup = st.text(alphabet=st.sampled_from(list("ab <>/&;#x%2C+\n\t\u00e9\u0301")), max_size=60)


@pytest.mark.parametrize("raw,expected", [
    ("Sunset+at+the+pier", "Sunset at the pier"),
    ("View%2C+taken+from+the+beach.", "View, taken from the beach."),
    ("caf%C3%A9", "caf\u00e9"),
    ("100%", "100%"),             # a lone '%' stays
    ("%zz+ok", "%zz ok"),
    ("%C3+x", "\ufffd x"),         # a broken UTF-8 byte is replaced, never fatal
    ("back\\slash%5C", "back\\slash\\"),
    ("plain", "plain"),
])
def test_url_decode_examples(raw, expected):
    assert url_decode(raw) == expected


def test_strip_html_keeps_words_apart_and_removes_nested_tags():
    assert strip_html('recipe <a href="http://x.com">here</a><br>next') == "recipe  here  next"
    assert "<" not in strip_html("<<a>b>text")
    assert strip_html("no tags") == "no tags"


def test_unescape_and_collapse():
    assert unescape_html("Tom &amp; Jerry &#39;s &quot;x&quot;") == "Tom & Jerry 's \"x\""
    assert collapse_whitespace("  a \n\t b\u00a0 c  ") == "a b c"
    assert replace_newlines("a\nb\r\nc") == "a b  c"


def test_nfc_and_ascii_only():
    assert nfc("e\u0301") == "\u00e9"
    assert ascii_only("Isère – café") == "Isre  caf"
    assert ascii_only("plain") == "plain"


def test_clean_yfcc_text_full_chain_on_a_real_row():
    # description of line 3 of the real yfcc100m_dataset excerpt (a link plus a %0A newline)
    raw = ("recipe+here%3A+%3Ca+href%3D%22http%3A%2F%2Fallrecipes.com%2FRecipe%22%3Eallrecipes.com%2FRecipe"
           "%3C%2Fa%3E%0Ai+added+1%2F2+teaspoon")
    assert clean_yfcc_text(raw) == "recipe here: allrecipes.com/Recipe i added 1/2 teaspoon"
    assert clean_yfcc_text("%3Cb%3EBold%3C%2Fb%3E+%26amp%3B+more") == "Bold & more"
    assert clean_yfcc_text("") == ""


def test_word_count():
    assert word_count(" two  words ") == 2
    assert word_count("") == 0


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127, blacklist_categories=("Cs",)), max_size=60))
def test_fast_url_decode_equals_unquote_plus_on_ascii(text):
    assert url_decode(text) == unquote_plus(text, errors="replace")


@settings(max_examples=100, deadline=None)
@given(texts)
def test_collapse_whitespace_idempotent_no_double_spaces(text):
    out = collapse_whitespace(text)
    assert collapse_whitespace(out) == out
    assert "  " not in out
    assert out == out.strip()
    assert not any(c in out for c in "\n\t\r")


@settings(max_examples=100, deadline=None)
@given(texts)
def test_clean_caption_idempotent_and_nfc(text):
    out = clean_caption(text)
    assert clean_caption(out) == out
    assert unicodedata.is_normalized("NFC", out)
    assert "  " not in out


@settings(max_examples=100, deadline=None)
@given(markup)
def test_strip_html_idempotent_and_tag_free(text):
    out = strip_html(text)
    assert strip_html(out) == out
    import re
    assert re.search(r"<[^<]+?>", out) is None


@settings(max_examples=100, deadline=None)
@given(texts)
def test_ascii_only_and_nfc_idempotent(text):
    a = ascii_only(text)
    assert a.isascii() and ascii_only(a) == a
    assert nfc(nfc(text)) == nfc(text)


@settings(max_examples=100, deadline=None)
@given(markup)
def test_clean_yfcc_text_output_is_clean(text):
    out = clean_yfcc_text(text)
    assert "  " not in out and out == out.strip()
    assert "\n" not in out
    assert collapse_whitespace(out) == out


yfcc_raw = st.text(alphabet=st.sampled_from(list("ab+%12C3E9AF5<>/&;#x\\ \u00e9\x1f")), max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.lists(yfcc_raw, max_size=8))
def test_batch_yfcc_cleaning_equals_per_text(texts):
    assert clean_yfcc_texts(texts) == [clean_yfcc_text(t) for t in texts]


def test_batch_yfcc_cleaning_on_real_rows(shared_data):
    lines = (shared_data / "sources" / "yfcc100m" / "yfcc100m_dataset-head200.tsv").read_text().splitlines()
    raw = [c for line in lines for c in line.split("\t")[8:10]]
    assert len(raw) == 400
    assert clean_yfcc_texts(raw) == [clean_yfcc_text(t) for t in raw]


def test_batch_yfcc_cleaning_with_an_escaped_separator():
    # '%1F' decodes to the batch separator: the batch must not split there (captions would shift rows)
    texts = ["a%1Fb+unit+separator", "second+text", "x%3Cb%1Fc%3Ey", "%1f"]
    assert clean_yfcc_texts(texts) == [clean_yfcc_text(t) for t in texts]
    assert clean_yfcc_texts(texts)[:2] == ["a b unit separator", "second text"]


def test_every_whitespace_but_space_is_unprintable():
    # collapse_whitespace_many relies on it to skip texts that are already collapsed
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    assert len(spaces) > 20
    assert all(not c.isprintable() for c in spaces if c != " ")


spaced = st.text(alphabet=st.sampled_from(list("ab \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2003\u2028\u3000\u200b\u00e9")),
                 max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(spaced, max_size=8))
def test_collapse_whitespace_many_equals_per_text(texts):
    assert collapse_whitespace_many(texts) == [collapse_whitespace(t) for t in texts]
