"""Stage 2, filter: language (fastText, annotated in batches) and caption length, per source.

Language is annotated on every row in one batched prediction (the stats use the scores; rows a
parser already labelled, like YFCC's, keep their label) but checked only for sources whose config
lists ``languages``. The filters are ``pmd.text.filters``' ``LanguageFilter`` and
``CaptionLengthFilter``; the first one that drops a record names the reason. A filter that raises
makes that one record ``failed`` with the exception's class.
"""

from __future__ import annotations

from typing import Any, Iterator

import pyarrow as pa

from pmd.pairs.config import SourceConfig
from pmd.pairs.outcomes import DROPPED, FAILED, KEPT, PAIR_OUTCOME_SCHEMA, to_batch
from pmd.records import ImageRef, PairRecord
from pmd.text.filters import CaptionLengthFilter, LanguageFilter, annotate_language


def source_filters(s: SourceConfig) -> list[Any]:
    """The filter chain of one source, from its config."""
    chain: list[Any] = []
    if s.languages is not None:
        chain.append(LanguageFilter(tuple(s.languages), s.min_lang_score))
    chain.append(CaptionLengthFilter(s.min_words, s.max_words))
    return chain


_NO_IMAGE = ImageRef(url="-")  # filters look at text and language only


def filter_rows(rows: list[dict[str, Any]], chains: dict[str, list[Any]], identifier: Any = None) -> list[dict[str, Any]]:
    """Annotate the batch's language at once, then run each row's source chain.

    Rows stay rows (no meta JSON round trip); a light ``PairRecord`` carries what filters read.
    """
    records = [PairRecord(r["source"], r["text"], _NO_IMAGE, lang=r.get("lang"), lang_score=r.get("lang_score"))
               for r in rows]
    annotate_language(records, identifier)
    out = []
    for row, rec in zip(rows, records):
        row = dict(row, lang=rec.lang, lang_score=rec.lang_score)
        chain = chains.get(rec.source)
        if chain is None:
            out.append(dict(row, outcome=DROPPED, reason="source_not_configured", message=None))
            continue
        try:
            reason = next((v.reason for v in (f(rec) for f in chain) if not v.keep), None)
        except Exception as exc:  # noqa: BLE001 - one bad record fails alone
            out.append(dict(row, outcome=FAILED, reason=type(exc).__name__, message=str(exc)[:500]))
            continue
        out.append(dict(row, outcome=KEPT if reason is None else DROPPED, reason=reason, message=None))
    return out


def filter_fn(chains: dict[str, list[Any]], batch_size: int):
    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows = batch.to_pylist()
            for i in range(0, len(rows), batch_size):
                yield to_batch(filter_rows(rows[i:i + batch_size], chains), PAIR_OUTCOME_SCHEMA)

    return fn
