"""Paragraph rules (OBELICS' node-level text filters): each reads one stored paragraph metric.

A paragraph is one ``\\n\\n``-separated part of a text position; its metrics are
``metadata[i]["paragraphs"][j]`` (:func:`pmd.interleaved.metrics.text_metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pmd.interleaved.config import FilterConfig
from pmd.interleaved.rules.base import Rule, at_least, at_most, enabled


@dataclass(frozen=True)
class MinPunctuation(Rule):
    """Keep a paragraph of ``min_words`` words or more only with ``punct_ratio >= minimum`` (shorter
    paragraphs, captions and list items, are exempt)."""

    minimum: float
    min_words: int
    SETTING: ClassVar[str] = "{minimum} (paragraphs of >= {min_words} words)"
    KEEPS: ClassVar[str] = "punct_ratio >= {minimum} or words < {min_words}"

    def __call__(self, m: dict[str, Any]) -> str | None:
        return self.reason if m["words"] >= self.min_words and m["punct_ratio"] < self.minimum else None


def paragraph_rules(cfg: FilterConfig) -> tuple[Rule, ...]:
    """The enabled paragraph rules of ``cfg``, in the order they are tried (the first reason counts)."""
    p = "paragraph"
    return enabled(
        at_least("para_min_words", p, "words", "para_too_few_words", cfg.para_min_words),
        at_most("para_max_words", p, "words", "para_too_many_words", cfg.para_max_words),
        at_most("para_max_char_rep", p, "char_rep", "para_char_repetition", cfg.para_max_char_rep),
        at_most("para_max_word_rep", p, "word_rep", "para_word_repetition", cfg.para_max_word_rep),
        at_most("para_max_special_ratio", p, "special_ratio", "para_special_characters", cfg.para_max_special_ratio),
        at_least("para_min_stopword_ratio", p, "stopword_ratio", "para_few_stopwords", cfg.para_min_stopword_ratio),
        at_most("para_max_flagged_ratio", p, "flagged_ratio", "para_flagged_words", cfg.para_max_flagged_ratio),
        None if cfg.para_min_punct_ratio is None else
        MinPunctuation("para_min_punct_ratio", p, "punct_ratio", "para_little_punctuation",
                       cfg.para_min_punct_ratio, cfg.para_punct_min_words),
    )
