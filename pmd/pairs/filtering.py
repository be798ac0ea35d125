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
from pmd.pairs.outcomes import DROPPED, FAILED, KEPT, PAIR_OUTCOME_SCHEMA
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


def decide(sources: list[str], texts: list[Any], langs: list[Any], scores: list[Any], chains: dict[str, list[Any]],
           identifier: Any = None) -> tuple[list[Any], list[Any], list[str], list[Any], list[Any]]:
    """The filter stage's rule over parallel columns: ``(lang, lang_score, outcome, reason, message)``.

    Language is annotated for the whole batch at once (only rows without a label are predicted),
    then each row runs its source's chain; a light ``PairRecord`` carries what filters read.
    """
    records = [PairRecord(s, t, _NO_IMAGE, lang=lab, lang_score=sc) for s, t, lab, sc in zip(sources, texts, langs, scores)]
    annotate_language(records, identifier)
    verdicts: list[tuple[str, Any, Any]] = []  # (outcome, reason, message) per row
    for rec in records:
        chain = chains.get(rec.source)
        if chain is None:
            verdicts.append((DROPPED, "source_not_configured", None))
            continue
        why = None
        try:
            for f in chain:  # the first filter that drops names the reason
                v = f(rec)
                if not v.keep:
                    why = v.reason
                    break
        except Exception as exc:  # noqa: BLE001 - one bad record fails alone
            verdicts.append((FAILED, type(exc).__name__, str(exc)[:500]))
            continue
        verdicts.append((KEPT if why is None else DROPPED, why, None))
    outcome, reason, message = (list(c) for c in zip(*verdicts)) if verdicts else ([], [], [])
    return [r.lang for r in records], [r.lang_score for r in records], outcome, reason, message


def filter_rows(rows: list[dict[str, Any]], chains: dict[str, list[Any]], identifier: Any = None) -> list[dict[str, Any]]:
    """``decide`` over rows: each row comes back with its language and outcome (the row API)."""
    cols = decide([r["source"] for r in rows], [r["text"] for r in rows], [r.get("lang") for r in rows],
                  [r.get("lang_score") for r in rows], chains, identifier)
    return [dict(row, lang=lab, lang_score=sc, outcome=o, reason=why, message=msg)
            for row, lab, sc, o, why, msg in zip(rows, *cols)]


_DECIDED = ("lang", "lang_score", "outcome", "reason", "message")


def filter_batch(batch: pa.RecordBatch, chains: dict[str, list[Any]], identifier: Any = None,
                 schema: pa.Schema = PAIR_OUTCOME_SCHEMA) -> pa.RecordBatch:
    """``decide`` over a batch: the record columns pass through untouched (no per-row dict, no copy);
    only language (when some row was predicted) and the outcome columns are rebuilt."""
    col = batch.column
    langs, scores = col("lang").to_pylist(), col("lang_score").to_pylist()
    new = dict(zip(_DECIDED, decide(col("source").to_pylist(), col("text").to_pylist(), langs, scores, chains,
                                    identifier)))
    arrays = []
    for f in schema:
        if f.name in ("lang", "lang_score") and new[f.name] == (langs if f.name == "lang" else scores):
            arrays.append(col(f.name).cast(f.type))  # nothing predicted: the same values
        elif f.name in new:
            arrays.append(pa.array(new[f.name], f.type))
        else:
            arrays.append(col(f.name).cast(f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def filter_fn(chains: dict[str, list[Any]], batch_size: int):
    """The ``mapInArrow`` function: batches of the previous stage's kept rows → ``filter_batch``."""

    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for i in range(0, batch.num_rows, batch_size):
                yield filter_batch(batch.slice(i, batch_size), chains)

    return fn


def kept_batches(url: str, batch_size: int, schema: pa.Schema = PAIR_OUTCOME_SCHEMA) -> Iterator[pa.RecordBatch]:
    """The kept rows of one Parquet part of the previous stage (local path or fsspec URL), ``schema``'s
    columns, at most ``batch_size`` rows a batch: what the filter stage takes in."""
    import fsspec
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from fsspec.implementations.local import LocalFileSystem

    fs, path = fsspec.core.url_to_fs(url)
    with (open(path, "rb") if isinstance(fs, LocalFileSystem) else fs.open(path, "rb")) as fh:
        for b in pq.ParquetFile(fh).iter_batches(batch_size=batch_size, columns=schema.names):
            b = b.filter(pc.equal(b.column("outcome"), KEPT))
            if b.num_rows:
                yield b


def filter_part_fn(chains: dict[str, list[Any]], batch_size: int):
    """``part URL → filtered batches``: what one filter task writes as its part (``filter_batch`` over
    the part's kept rows)."""

    def fn(url: str) -> Iterator[pa.RecordBatch]:
        for b in kept_batches(url, batch_size):
            yield filter_batch(b, chains)

    return fn
