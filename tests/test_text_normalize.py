"""pmd.text.normalize: small pure normalisers (unit tests + hypothesis properties)."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmd.text.normalize import (ascii_only, clean_caption, clean_yfcc_text, clean_yfcc_texts,
                                collapse_whitespace, collapse_whitespace_many, nfc, replace_newlines, strip_html, unescape_html,
                                url_decode, utf8_problem, word_count)

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
markup = st.text(alphabet=st.sampled_from(list("ab <>/&;#x%2C+\n\t\u00e9\u0301")), max_size=60)


@pytest.mark.parametrize("raw,expected", [
    ("Sunset+at+the+pier", "Sunset at the pier"),
    ("View%2C+taken+from+the+beach.", "View, taken from the beach."),
    ("caf%C3%A9", "caf\u00e9"),
    ("100%", "100%"),             # a lone '%' stays
    ("%zz+ok", "%zz ok"),
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


BAD_ESCAPES = [
    # raw field, what utf8_problem says
    ("caf%E9", "'%E9': unexpected end of data"),                 # latin-1 é at the end = a cut 3-byte lead
    ("caf%E9+au+lait", "'%E9': invalid continuation byte"),      # latin-1 é inside
    ("the+euro+%E2%82", "'%E2%82': unexpected end of data"),     # a multibyte sequence cut at the end
    ("a%80b", "'%80': invalid start byte"),                      # a stray continuation byte
    ("%C3+x", "'%C3': invalid continuation byte"),
    ("%ED%A0%80", "'%ED': invalid continuation byte"),           # an encoded surrogate (CESU-8)
    ("%3Cb%E9%3Ex+y", "'%E9': invalid continuation byte"),       # inside a tag: still not UTF-8
    ("%zz+caf%E9", "'%E9': unexpected end of data"),             # a literal '%' next to a bad escape
    ("\u00e9t\u00e9+%E9", "'%E9': unexpected end of data"),             # non-ASCII raw text (unquote_plus path)
]


@pytest.mark.parametrize("raw,problem", BAD_ESCAPES)
def test_escapes_that_are_not_utf8_are_unusable_not_replaced(raw, problem):
    with pytest.raises(UnicodeDecodeError):
        url_decode(raw)
    with pytest.raises(UnicodeDecodeError):
        unquote_plus(raw, errors="strict")  # the reference agrees: not UTF-8
    assert "\ufffd" in url_decode(raw, errors="replace")  # the old behaviour, on request only
    assert clean_yfcc_text(raw) is None
    assert utf8_problem(raw) == problem


@pytest.mark.parametrize("raw", ["caf%C3%A9", "%EF%BF%BD+kept", "100%", "%zz", "plain+text", ""])
def test_valid_or_literal_escapes_have_no_utf8_problem(raw):
    assert utf8_problem(raw) is None
    assert clean_yfcc_text(raw) == " ".join(unquote_plus(raw).split())


def test_batch_marks_exactly_the_bad_texts_and_keeps_the_fast_path_for_the_rest():
    texts = ["Sunset+at+the+pier", "caf%E9+au+lait", "caf%C3%A9+au+lait", "%3Cb%E9%3Ex+y", "", "x%E2%82",
             "%3Cb%3EBold%3C%2Fb%3E+%26amp%3B+more"]
    assert clean_yfcc_texts(texts) == ["Sunset at the pier", None, "caf\u00e9 au lait", None, "", None,
                                       "Bold & more"]
    assert clean_yfcc_texts(texts) == [clean_yfcc_text(t) for t in texts]


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127, blacklist_categories=("Cs",)), max_size=60))
def test_fast_url_decode_equals_unquote_plus_on_ascii(text):
    assert url_decode(text, errors="replace") == unquote_plus(text, errors="replace")


def _outcome(f, text):
    try:
        return f(text)
    except UnicodeDecodeError as e:
        return ("error", e.reason)


escapes = st.lists(st.sampled_from(["%C3", "%A9", "%E9", "%E2", "%82", "%AC", "%80", "%F0", "%9F", "%ED",
                                    "%41", "+", "a", "%", "%z", "\u00e9"]), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(escapes)
def test_strict_url_decode_equals_unquote_plus_including_the_error(text):
    # the same text, or the same UnicodeDecodeError reason, as the strict reference
    strict = _outcome(lambda t: unquote_plus(t, errors="strict"), text)
    assert _outcome(url_decode, text) == strict
    assert (utf8_problem(text) is None) == (strict == unquote_plus(text))


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
    if out is None:  # e.g. '%Ca': an escape that is not UTF-8
        assert utf8_problem(text) is not None
        return
    assert "  " not in out and out == out.strip()
    assert "\n" not in out
    assert collapse_whitespace(out) == out


yfcc_raw = st.text(alphabet=st.sampled_from(list("ab+%12C3E9AF5<>/&;#x\\ \u00e9\x1f")), max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.lists(yfcc_raw, max_size=8))
def test_batch_yfcc_cleaning_equals_per_text(texts):
    assert clean_yfcc_texts(texts) == [clean_yfcc_text(t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(st.lists(escapes | yfcc_raw, max_size=8))
def test_batch_yfcc_cleaning_equals_per_text_with_bad_escapes(texts):
    # bad escapes next to good texts, tags and separators: the batch marks the same texts None
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
