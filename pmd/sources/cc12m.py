"""Conceptual 12M: ``cc12m.tsv`` — ``url<TAB>caption`` (the opposite order of CC3M), no header."""

from __future__ import annotations

from pmd.sources.cc3m import TwoColumnTsvSource


class Conceptual12M(TwoColumnTsvSource):
    name = "conceptual_12m"
    paper_row = "Conceptual Captions 12M"
    paper_pairs_m, paper_avg_words = 11.0, 17.3
    description = "Conceptual 12M (cc12m.tsv: url TAB caption)"
    url_first = True
