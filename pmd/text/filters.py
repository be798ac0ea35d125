"""Caption filters (``Filter`` objects: ``.name`` and ``__call__(record) -> Verdict``) and batch
language annotation for pair records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from pmd.records import PairRecord
from pmd.verdict import KEEP, Verdict

if TYPE_CHECKING:
    from pmd.text.langid import LanguageIdentifier


def _verdict(reason: str | None) -> Verdict:
    return KEEP if reason is None else Verdict.drop(reason)


@dataclass(frozen=True)
class CaptionLengthFilter:
    """Keep captions with ``min_words <= words <= max_words`` (``max_words`` None: no upper bound)."""

    min_words: int = 1
    max_words: int | None = None
    name: str = "caption_length"

    def __call__(self, record: PairRecord) -> Verdict:
        return _verdict(self.reasons([record.text], [record.lang], [record.lang_score])[0])

    def reasons(self, texts: Sequence[Any], langs: Sequence[Any], scores: Sequence[Any]) -> list[str | None]:
        """The drop reason (None: kept) of every caption of a column: the rule itself, which
        ``__call__`` applies to one record. The filter stage runs it over every batch: one
        comprehension instead of a record and a ``Verdict`` per row. An empty or None caption is a
        counted ``empty_caption`` drop; a caption that is not a string raises ``AttributeError``
        (the filter stage then decides that batch row by row, so that the bad row fails alone)."""
        lo, hi = self.min_words, self.max_words
        counts = [len(t.split()) if t else -1 for t in texts]
        if hi is None:
            return [None if n >= lo else "too_few_words" if n >= 0 else "empty_caption" for n in counts]
        return [None if lo <= n <= hi else "empty_caption" if n < 0 else "too_few_words" if n < lo
                else "too_many_words" for n in counts]


@dataclass(frozen=True)
class LanguageFilter:
    """Keep records whose language label is in ``labels`` with score >= ``min_score``.

    Needs ``lang`` set (``annotate_language``); a record without it is dropped as
    ``no_language`` rather than guessed.
    """

    labels: tuple[str, ...] = ("en",)
    min_score: float = 0.0
    name: str = "language"

    def __call__(self, record: PairRecord) -> Verdict:
        return _verdict(self.reasons([record.text], [record.lang], [record.lang_score])[0])

    def reasons(self, texts: Sequence[Any], langs: Sequence[Any], scores: Sequence[Any]) -> list[str | None]:
        """The drop reason (None: kept) of every row of columns of labels and scores: the rule
        itself, which ``__call__`` applies to one record."""
        labels, lo = frozenset(self.labels), self.min_score
        wrong = "not_english" if self.labels == ("en",) else "wrong_language"
        return [("no_language" if lab is None else wrong) if lab not in labels
                else None if (sc or 0.0) >= lo else "low_language_score" for lab, sc in zip(langs, scores)]


def annotate_language(records: Sequence[PairRecord], identifier: "LanguageIdentifier | None" = None,
                      overwrite: bool = False) -> None:
    """Set ``lang``/``lang_score`` of every record in one batched prediction.

    Records that already carry a label (YFCC sets it while choosing its caption) keep it unless
    ``overwrite``.
    """
    todo = [r for r in records if overwrite or r.lang is None]
    if not todo:
        return
    if identifier is None:
        from pmd.text.langid import get_identifier

        identifier = get_identifier()
    for r, (label, score) in zip(todo, identifier.predict([r.text for r in todo])):
        r.lang, r.lang_score = label, score
