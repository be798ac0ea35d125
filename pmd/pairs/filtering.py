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
from pmd.text.filters import CaptionLengthFilter, LanguageFilter


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

    Language is annotated for the whole batch at once (only rows without a label are predicted).
    Then the rows of each source run its chain: column-wise when every filter of the chain has a
    ``reasons`` method (the built-in ones: one comprehension per filter over the source's rows),
    else, and for a batch where a column-wise filter raised, row by row with a light
    ``PairRecord`` per row, where a filter that raises fails only its own row. Both give the same
    verdicts (tested): the first filter that drops a row names the reason.
    """
    langs, scores = list(langs), list(scores)
    todo = [k for k, lab in enumerate(langs) if lab is None]
    if todo:
        if identifier is None:
            from pmd.text.langid import get_identifier

            identifier = get_identifier()
        todo_texts = [texts[k] for k in todo]
        if hasattr(identifier, "predict_arrays"):
            labelled = zip(todo, *identifier.predict_arrays(todo_texts))
        else:  # any object with fastText's ``predict(texts) -> [(label, score)]``
            labelled = ((k, lab, sc) for k, (lab, sc) in zip(todo, identifier.predict(todo_texts)))
        for k, lab, sc in labelled:
            langs[k], scores[k] = lab, sc
    n = len(sources)
    outcome: list[Any] = [KEPT] * n
    reason: list[Any] = [None] * n
    message: list[Any] = [None] * n
    first = sources[0] if n else None
    groups = {first: range(n)} if n and sources.count(first) == n else _rows_by_source(sources)
    for src, rows in groups.items():
        chain = chains.get(src)
        if chain is None:
            for k in rows:
                outcome[k], reason[k] = DROPPED, "source_not_configured"
            continue
        why = _chain_reasons(chain, rows, texts, langs, scores)
        if why is not None:
            for k, w in zip(rows, why):
                if w is not None:
                    outcome[k], reason[k] = DROPPED, w
            continue
        for k in rows:  # row by row: some filter has no column-wise form, or raised on this batch
            rec = PairRecord(src, texts[k], _NO_IMAGE, lang=langs[k], lang_score=scores[k])
            try:
                for f in chain:
                    v = f(rec)
                    if not v.keep:
                        outcome[k], reason[k] = DROPPED, v.reason
                        break
            except Exception as exc:  # noqa: BLE001 - one bad record fails alone
                outcome[k], reason[k], message[k] = FAILED, type(exc).__name__, str(exc)[:500]
    return langs, scores, outcome, reason, message


def _rows_by_source(sources: list[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for k, src in enumerate(sources):
        groups.setdefault(src, []).append(k)
    return groups


def _chain_reasons(chain: list[Any], rows: "range | list[int]", texts: list[Any], langs: list[Any],
                   scores: list[Any]) -> list[Any] | None:
    """Each row's first drop reason (None: kept) by the chain's column-wise ``reasons``; None when
    some filter has none or one raised (the caller then goes row by row)."""
    if not all(hasattr(f, "reasons") for f in chain):
        return None
    whole = isinstance(rows, range) and len(rows) == len(texts)
    t = texts if whole else [texts[k] for k in rows]
    la = langs if whole else [langs[k] for k in rows]
    sc = scores if whole else [scores[k] for k in rows]
    why: list[Any] | None = None
    try:
        for f in chain:
            r = f.reasons(t, la, sc)
            why = r if why is None else [a if a is not None else b for a, b in zip(why, r)]
    except Exception:  # noqa: BLE001 - found again, and failed alone, row by row
        return None
    return why if why is not None else [None] * len(t)


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


def kept_rows(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The rows of ``batch`` whose outcome is kept (what the next stage takes in)."""
    import pyarrow.compute as pc

    return batch.filter(pc.equal(batch.column("outcome"), KEPT))


def kept_batches(url: str, batch_size: int, schema: pa.Schema = PAIR_OUTCOME_SCHEMA) -> Iterator[pa.RecordBatch]:
    """The kept rows of one Parquet part of the previous stage (local path or fsspec URL), ``schema``'s
    columns: each row group (a batch its writer wrote) in slices of at most ``batch_size`` rows, so
    that the batches are the ones ``filtered_kept`` makes from the writer's batches in memory."""
    import fsspec
    import pyarrow.parquet as pq
    from fsspec.implementations.local import LocalFileSystem

    fs, path = fsspec.core.url_to_fs(url)
    with (open(path, "rb") if isinstance(fs, LocalFileSystem) else fs.open(path, "rb")) as fh:
        pf = pq.ParquetFile(fh)
        for g in range(pf.num_row_groups):
            for b in pf.iter_batches(batch_size=batch_size, row_groups=[g], columns=schema.names):
                b = kept_rows(b)
                if b.num_rows:
                    yield b


def filtered_kept(batch: pa.RecordBatch, chains: dict[str, list[Any]], batch_size: int,
                  identifier: Any = None) -> Iterator[pa.RecordBatch]:
    """The filter stage's batches of one batch of the previous stage, in memory: ``filter_batch`` of
    its kept rows, ``batch_size`` input rows at a time (what ``filter_part_fn`` makes of the same
    batch written as a row group and read back, without the read)."""
    for i in range(0, batch.num_rows, batch_size):
        kept = kept_rows(batch.slice(i, batch_size))
        if kept.num_rows:
            yield filter_batch(kept, chains, identifier)


def filter_part_fn(chains: dict[str, list[Any]], batch_size: int):
    """``part URL → filtered batches``: what one filter task writes as its part (``filter_batch`` over
    the part's kept rows)."""

    def fn(url: str) -> Iterator[pa.RecordBatch]:
        for b in kept_batches(url, batch_size):
            yield filter_batch(b, chains)

    return fn
