"""Document rules: text checks on the stored document metrics, the language check, the image count.

Document metrics are ``general_metadata["metrics"]`` (:func:`pmd.interleaved.metrics.document_metrics`,
plus ``lang``/``lang_score`` from fastText and ``images``, the kept image count).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from pmd.interleaved.config import FilterConfig
from pmd.interleaved.rules.base import Rule, at_least, at_most, enabled


@dataclass(frozen=True)
class RequireText(Rule):
    """Drop a document without a single word (nothing for a text model to learn from)."""

    KEEPS: ClassVar[str] = "words > 0"

    def __call__(self, m: dict[str, Any]) -> str | None:
        return self.reason if m["words"] == 0 else None

    def test(self) -> tuple[str, Callable[[Any, Any], bool], Any]:
        return "words", operator.eq, 0


@dataclass(frozen=True)
class Language(Rule):
    """Keep documents that fastText lid.176 gives ``lang`` with a score of at least ``min_score``
    (read from the first ``max_chars`` characters). The filter driver runs it before the text
    metrics, on the predictions of a whole batch, so pages in other languages cost no metrics."""

    lang: str
    min_score: float
    max_chars: int | None
    SETTING: ClassVar[str] = "{lang} >= {min_score}"
    KEEPS: ClassVar[str] = "lang == {lang} and lang_score >= {min_score}"

    def accepts(self, lang: str, score: float) -> bool:
        return lang == self.lang and score >= self.min_score

    def __call__(self, m: dict[str, Any]) -> str | None:
        ok = m.get("lang") == self.lang and float(m.get("lang_score") or 0.0) >= self.min_score
        return None if ok else self.reason


def language_rule(cfg: FilterConfig) -> Language | None:
    if cfg.lang is None or cfg.doc_min_lang_score is None:
        return None
    return Language("doc_min_lang_score", "document", "lang_score", "doc_language", cfg.lang,
                    cfg.doc_min_lang_score, cfg.lang_max_chars)


def document_rules(cfg: FilterConfig) -> tuple[Rule, ...]:
    """The enabled text and language rules of ``cfg``, in the order they are tried."""
    d = "document"
    return enabled(
        RequireText("require_text", d, "words", "doc_no_text") if cfg.require_text else None,
        at_least("doc_min_words", d, "words", "doc_too_few_words", cfg.doc_min_words),
        at_most("doc_max_words", d, "words", "doc_too_many_words", cfg.doc_max_words),
        at_most("doc_max_char_rep", d, "char_rep", "doc_char_repetition", cfg.doc_max_char_rep),
        at_most("doc_max_word_rep", d, "word_rep", "doc_word_repetition", cfg.doc_max_word_rep),
        at_most("doc_max_special_ratio", d, "special_ratio", "doc_special_characters", cfg.doc_max_special_ratio),
        at_least("doc_min_stopword_ratio", d, "stopword_ratio", "doc_few_stopwords", cfg.doc_min_stopword_ratio),
        at_most("doc_max_flagged_ratio", d, "flagged_ratio", "doc_flagged_words", cfg.doc_max_flagged_ratio),
        at_least("doc_min_punct_ratio", d, "punct_ratio", "doc_little_punctuation", cfg.doc_min_punct_ratio),
        language_rule(cfg),
    )


def image_count_rules(cfg: FilterConfig) -> tuple[Rule, ...]:
    """How many kept images a document needs (checked after the image rules, and again at the end)."""
    d = "document"
    return enabled(
        at_least("min_images", d, "images", "doc_too_few_images", cfg.min_images),
        at_most("max_images", d, "images", "doc_too_many_images", cfg.max_images),
    )
