"""The row layout every build stage writes: the record's columns plus its outcome in that stage.

Each stage writes ONE dataset in which every input record appears exactly once with
``outcome`` = kept | dropped | failed, ``reason`` (drop reason or error class) and ``message``.
Kept rows feed the next stage, the others become rejects, and counters are counted from it.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any, Iterable, Sequence

import pyarrow as pa

from pmd.ids import stable_id, stable_ids
from pmd.records import PairRecord
from pmd.verdict import Dropped, Failure

KEPT, DROPPED, FAILED = "kept", "dropped", "failed"

PAIR_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("text", pa.string()),
    pa.field("image_url", pa.string()),
    pa.field("image_path", pa.string()),
    pa.field("crop_x", pa.int32()),
    pa.field("crop_y", pa.int32()),
    pa.field("crop_width", pa.int32()),
    pa.field("crop_height", pa.int32()),
    pa.field("image_key", pa.string()),
    pa.field("meta", pa.string()),
    pa.field("lang", pa.string()),
    pa.field("lang_score", pa.float32()),
    pa.field("input_file", pa.string()),
    pa.field("input_line", pa.int64()),
]
OUTCOME_FIELDS: list[pa.Field] = [
    pa.field("outcome", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("message", pa.string()),
]
IMAGE_FIELDS: list[pa.Field] = [
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("original_width", pa.int32()),
    pa.field("original_height", pa.int32()),
    pa.field("sha256", pa.string()),
]

PAIR_OUTCOME_SCHEMA = pa.schema(PAIR_FIELDS + OUTCOME_FIELDS)
PAIR_COLUMNS = [f.name for f in PAIR_FIELDS]

#: How a task writes its own part of these rows (``pmd.spark.batches.write_parts``): dictionary
#: pages and min/max statistics only for the columns with few distinct values or a numeric range
#: (what a reader's filters use). Ids, captions, URLs and metas are nearly all distinct: trying a
#: dictionary and keeping statistics for them costs a third of the write and helps no reader.
PAIR_PARQUET_OPTIONS: dict[str, Any] = {
    "use_dictionary": ["source", "outcome", "reason", "lang", "input_file", "image_path"],
    "write_statistics": ["source", "outcome", "reason", "lang", "input_file", "crop_x", "crop_y", "crop_width",
                         "crop_height", "lang_score", "input_line"],
}


def kept_row(record: PairRecord) -> dict[str, Any]:
    return {**record.to_row(), "outcome": KEPT, "reason": None, "message": None}


def reject_row(source: str, item: Dropped | Failure, record_row: dict[str, Any] | None = None) -> dict[str, Any]:
    """Row for a parse/stage outcome that is not kept; ``record_row`` keeps the record's columns when known."""
    row: dict[str, Any] = dict(record_row) if record_row else {}
    row["source"] = source
    if isinstance(item, Dropped):
        row.update(outcome=DROPPED, reason=item.reason, message=item.detail)
    else:
        row.update(outcome=FAILED, reason=item.error, message=(item.message or "")[:1000])
    if item.input_file is not None:
        row["input_file"] = item.input_file
    if item.input_line is not None:
        row["input_line"] = item.input_line
    return row


def with_outcome(row: dict[str, Any], outcome: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    out = dict(row)
    out.update(outcome=outcome, reason=reason, message=message)
    return out


def to_batch(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Rows → a batch with exactly ``schema``'s columns (missing keys become nulls)."""
    rows = list(rows)
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.RecordBatch.from_pydict(cols, schema=schema)


def outcome_counts(batch: pa.RecordBatch, by: str = "source") -> list[tuple[tuple[Any, Any, Any], int]]:
    """``((by, outcome, reason), n)`` groups of a batch's rows: what a stage's counters are made of
    (``pmd.pairs.counting.book_from_outcomes``), counted by a task over the rows it writes."""
    if not batch.num_rows:
        return []
    t = pa.Table.from_batches([batch]).select([by, "outcome", "reason"])
    g = t.group_by([by, "outcome", "reason"], use_threads=False).aggregate([([], "count_all")])
    return [((a, o, r), n) for a, o, r, n in zip(*(g.column(c).to_pylist() for c in (by, "outcome", "reason", "count_all")))]


def outcome_batch(source: str, items: Sequence[PairRecord | Dropped | Failure], schema: pa.Schema = PAIR_OUTCOME_SCHEMA) -> pa.RecordBatch:
    """Parse outcomes → one batch of ``schema`` rows in item order, built column by column.

    The same rows as ``to_batch([kept_row(r) or reject_row(source, r) ...])`` (tested), without a
    dict per row: this is the ingest's per-record cost on top of the parse itself. Each image key
    is hashed once (``to_row`` hashes it twice), the metas are serialised together
    (``meta_json_column``), and records and rejects are built apart then put back in item order
    with one ``take``.
    """
    is_rec = [isinstance(it, PairRecord) for it in items]
    recs = [it for it, k in zip(items, is_rec) if k]
    rej = [it for it, k in zip(items, is_rec) if not k]
    parts = [b for b in (_record_batch(recs, schema) if recs else None,
                         _reject_batch(source, rej, schema) if rej else None) if b is not None]
    if not parts:
        return _from_columns({}, 0, schema)
    if len(parts) == 1:
        return parts[0]
    import numpy as np

    mask = np.fromiter(is_rec, dtype=bool, count=len(items))
    order = np.empty(len(items), dtype=np.int64)
    order[mask] = np.arange(len(recs))
    order[~mask] = np.arange(len(recs), len(items))
    return pa.Table.from_batches(parts).take(pa.array(order)).combine_chunks().to_batches()[0]


def _record_batch(recs: list[PairRecord], schema: pa.Schema) -> pa.RecordBatch:
    """``kept_row`` of every record, as columns."""
    images = [r.image for r in recs]
    urls = [im.url for im in images]
    paths = [im.path for im in images]
    crops = [im.crop for im in images]
    locations = [u if u is not None else p for u, p in zip(urls, paths)]
    if any(c is not None for c in crops):
        keys = [stable_id("img", loc, *(c.box() if c is not None else ())) for loc, c in zip(locations, crops)]
    else:
        keys = stable_ids("img", locations)
    sources = [r.source for r in recs]
    texts = [r.text for r in recs]
    n = len(recs)
    cols: dict[str, list[Any]] = {
        "id": stable_ids("pair", sources, keys, texts),
        "source": sources,
        "text": texts,
        "image_url": urls,
        "image_path": paths,
        "crop_x": [c.x if c is not None else None for c in crops],
        "crop_y": [c.y if c is not None else None for c in crops],
        "crop_width": [c.width if c is not None else None for c in crops],
        "crop_height": [c.height if c is not None else None for c in crops],
        "image_key": keys,
        "meta": meta_json_column([r.meta for r in recs]),
        "lang": [r.lang for r in recs],
        "lang_score": [r.lang_score for r in recs],
        "input_file": [r.input_file for r in recs],
        "input_line": [r.input_line for r in recs],
        "outcome": [KEPT] * n,
    }
    return _from_columns(cols, n, schema)


def _reject_batch(source: str, rej: list[Dropped | Failure], schema: pa.Schema) -> pa.RecordBatch:
    """``reject_row(source, item)`` of every item, as columns."""
    drop = [isinstance(it, Dropped) for it in rej]
    cols: dict[str, list[Any]] = {
        "source": [source] * len(rej),
        "outcome": [DROPPED if d else FAILED for d in drop],
        "reason": [it.reason if d else it.error for it, d in zip(rej, drop)],  # type: ignore[union-attr]
        "message": [it.detail if d else (it.message or "")[:1000] for it, d in zip(rej, drop)],  # type: ignore[union-attr]
        "input_file": [it.input_file for it in rej],
        "input_line": [it.input_line for it in rej],
    }
    return _from_columns(cols, len(rej), schema)


def _from_columns(cols: dict[str, list[Any]], n: int, schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(cols[f.name], f.type) if f.name in cols else pa.nulls(n, f.type) for f in schema], schema=schema)


def meta_json_column(metas: Sequence[dict[str, Any]]) -> list[str]:
    """``json.dumps(m, ensure_ascii=False, sort_keys=True)`` of every meta (what ``PairRecord.to_row``
    writes), byte for byte, in about a third of the time for a batch of same-keyed string metas (a
    YFCC batch: 25 string columns per row).

    For a run of metas with the same keys, two ``%`` templates hold the sorted, encoded keys: values
    that need no escaping (printable, no quote or backslash: every raw YFCC column, whose text is
    URL-encoded) go in as they are, quoted by the template; other values go through
    ``encode_basestring`` (the C escaper ``json`` itself uses). A meta with other keys gets its own
    templates; a value that is not a string (``join``/the escaper raise ``TypeError``) or a
    non-string key sends that meta through ``json.dumps``.
    """
    out: list[str] = []
    n_keys, values, raw, escaped = -1, None, "", ""
    enc = encode_basestring
    for m in metas:
        v = None
        if len(m) == n_keys and values is not None:
            try:
                v = values(m)
            except KeyError:  # as many keys, other names
                pass
        if v is None:
            n_keys, values, raw, escaped = _meta_template(m)
            v = values(m) if values is not None else None
        try:
            if v is None:
                raise TypeError
            s = "".join(v)
            out.append(raw % v if _needs_no_escape(s) else escaped % tuple(map(enc, v)))
        except TypeError:
            out.append(json.dumps(m, ensure_ascii=False, sort_keys=True))
    return out


def _meta_template(m: dict[str, Any]) -> tuple[int, Any, str, str]:
    """(number of keys, meta → values in sorted key order, raw-value template, escaped-value template)
    for metas keyed like ``m``; values None when only ``json.dumps`` can write it (no keys, or a key
    that is not a string)."""
    keys = list(m)
    if not keys or not all(type(k) is str for k in keys):
        return len(keys), None, "", ""
    keys.sort()
    values = itemgetter(*keys) if len(keys) > 1 else (lambda d, k=keys[0]: (d[k],))
    return (len(keys), values, *_object_templates(keys))


def _object_templates(sorted_keys: Sequence[str], fixed: dict[int, str] | None = None) -> tuple[str, str]:
    """``%`` templates of a JSON object with these (sorted, string) keys, as ``json.dumps(...,
    ensure_ascii=False, sort_keys=True)`` writes it: (raw values, quoted by the template;
    values already encoded by ``encode_basestring``). ``fixed`` bakes in the value of some keys
    (key position → the value itself, a string)."""
    names = [encode_basestring(k).replace("%", "%%") for k in sorted_keys]
    fixed = {j: encode_basestring(v).replace("%", "%%") for j, v in (fixed or {}).items()}
    return ("{" + ", ".join(f"{n}: {fixed[j]}" if j in fixed else f'{n}: "%s"' for j, n in enumerate(names)) + "}",
            "{" + ", ".join(f"{n}: {fixed[j]}" if j in fixed else f"{n}: %s" for j, n in enumerate(names)) + "}")


def _needs_no_escape(s: str) -> bool:
    """True when every character of ``s`` goes into JSON as it is (``ensure_ascii=False``)."""
    return s.isprintable() and '"' not in s and "\\" not in s


#: printable ASCII but the quote and the backslash: what JSON takes as it is
_PLAIN_ASCII = bytes(range(0x20, 0x7F)).replace(b'"', b"").replace(b"\\", b"")


def needs_no_escape(s: str, separator: str = "") -> bool:
    """True when no character of ``s`` but ``separator`` (one character, e.g. the tab that joins
    the values) needs JSON escaping (``_needs_no_escape``, conservative: False sends the caller to
    its per-value check). One C pass over ASCII text, several times cheaper than ``isprintable``."""
    if s.isascii():
        return not s.encode("ascii").translate(None, _PLAIN_ASCII + separator.encode("ascii"))
    return _needs_no_escape(s.replace(separator, "") if separator else s)


def flat_meta_json(names: Sequence[str], columns: Sequence[int], flat: Sequence[str], width: int,
                   rows: Sequence[int], extra_name: str, extra: Sequence[str], plain: bool) -> list[str]:
    """``json.dumps(meta, ensure_ascii=False, sort_keys=True)`` of each row r of a flat table of
    strings (row r = ``flat[r * width:(r + 1) * width]``), byte for byte, where ``meta`` maps
    ``names[j]`` to the row's column ``columns[j]`` and ``extra_name`` to the row's ``extra``
    value: the metas of a columnar parse (``pmd.sources.yfcc100m``) without a dict per row.

    ``meta_json_column``'s rule: with ``plain`` (the caller checked the whole table once, e.g.
    with ``needs_no_escape``) each row is one ``%`` of a raw template holding the sorted, encoded
    keys; otherwise rows are checked one by one and only those that need it go through
    ``encode_basestring``. The few distinct ``extra`` values are baked into their own templates.
    Names are distinct strings.
    """
    if not rows:
        return []
    keys = [*names, extra_name]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    slot = order.index(len(names))
    picked = [columns[j] for j in order if j != len(names)]
    get = itemgetter(*picked) if len(picked) > 1 else (lambda v, c=picked[0]: (v[c],))
    sorted_keys = [keys[j] for j in order]
    tpl = {e: _object_templates(sorted_keys, {slot: e}) for e in set(extra)}
    if plain:
        raw = {e: t[0] for e, t in tpl.items()}
        return [raw[e] % get(flat[r * width:r * width + width]) for r, e in zip(rows, extra)]
    enc = encode_basestring
    out = []
    for r, e in zip(rows, extra):
        v = get(flat[r * width:r * width + width])
        out.append(tpl[e][0] % v if _needs_no_escape("".join(v)) else tpl[e][1] % tuple(map(enc, v)))
    return out


_NONE_OR_STR = frozenset((type(None), str))


def line_outcome_batch(source: str, path: str, first_line: int, verdicts: Sequence[Any], kept_at: Sequence[int],
                       texts: Sequence[str], urls: Sequence[str], metas: Sequence[str], langs: Sequence[str],
                       scores: Sequence[float], schema: pa.Schema = PAIR_OUTCOME_SCHEMA) -> pa.RecordBatch:
    """One outcome row per input line of ``path`` from ``first_line`` on, from a columnar parse:
    ``outcome_batch``'s rows for the same outcomes (tested), without an object per row.

    ``verdicts[i]`` is line i's outcome: None when kept (its columns are the kept lists' entry j
    where ``kept_at[j] == i``; image = URL, no crop), a drop reason (a ``str``: no detail), or a
    ``Dropped``/``Failure`` (the rare drop with a detail, the failures). Kept columns are built
    compactly and scattered to their lines (nulls elsewhere).
    """
    import numpy as np
    import pyarrow.compute as pc

    n, k = len(verdicts), len(kept_at)
    keys = stable_ids("img", urls)
    ids = stable_ids("pair", [source] * k, keys, texts)
    at = None if k == n else np.asarray(kept_at, dtype=np.int64)
    odd = [i for i, v in enumerate(verdicts) if v is not None and type(v) is not str] \
        if not _NONE_OR_STR.issuperset(map(type, verdicts)) else []
    if not odd:
        reason = pa.array(verdicts, pa.string())
        outcome = pc.if_else(pc.is_null(reason), KEPT, DROPPED) if k else pa.repeat(pa.scalar(DROPPED), n)
        message = pa.nulls(n, pa.string())
    else:
        reasons, messages, outcomes = list(verdicts), [None] * n, [KEPT if v is None else DROPPED for v in verdicts]
        for i in odd:
            v = verdicts[i]
            if isinstance(v, Dropped):
                reasons[i], messages[i] = v.reason, v.detail
            else:
                reasons[i], messages[i], outcomes[i] = v.error, (v.message or "")[:1000], FAILED
        reason, message, outcome = pa.array(reasons, pa.string()), pa.array(messages, pa.string()), \
            pa.array(outcomes, pa.string())
    kept = {"id": ids, "text": texts, "image_url": urls, "image_key": keys, "meta": metas, "lang": langs,
            "lang_score": scores}
    fixed = {"source": pa.repeat(pa.scalar(source, pa.string()), n),
             "input_file": pa.repeat(pa.scalar(path, pa.string()), n),
             "input_line": pa.array(np.arange(first_line, first_line + n, dtype=np.int64)),
             "outcome": outcome, "reason": reason, "message": message}
    arrays = []
    for f in schema:
        if f.name in fixed:
            a = fixed[f.name]
        elif f.name in kept:
            if not k:
                a = pa.nulls(n, f.type)
            elif at is None:
                a = pa.array(kept[f.name], f.type)
            else:  # scattered in numpy, converted once (an Arrow ``take`` copies each column twice)
                col = np.full(n, None, dtype=object)
                col[at] = kept[f.name]
                a = pa.array(col, f.type)
        else:
            a = pa.nulls(n, f.type)
        arrays.append(a.cast(f.type) if a.type != f.type else a)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
