"""Stage 1, ingest: raw source files → unified pair rows (one per candidate caption) with outcomes.

The driver cuts every source's files into ``InputUnit``s (byte ranges of big line-oriented files);
each unit becomes one Spark task, which parses it (``unit_batches``) and writes the unit's rows as
one Parquet part (``pmd.spark.pairs.ingest``). A parser's
``Dropped``/``Failure`` keep their file and line; an exception inside a parser becomes one failed
row for that unit (``parser_crash``) instead of killing the job.
"""

from __future__ import annotations

import logging
import pickle
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa

from pmd.pairs.config import BuildConfig, resolve_path
from pmd.pairs.outcomes import PAIR_OUTCOME_SCHEMA, kept_row, outcome_batch, reject_row, to_batch
from pmd.records import PairRecord
from pmd.sources.base import ParseResult
from pmd.verdict import Failure

log = logging.getLogger(__name__)

UNIT_DDL = "source string, unit_index long, unit binary"


def plan_units(cfg: BuildConfig) -> list[dict[str, Any]]:
    """One row per input unit of every enabled source, in a deterministic order."""
    from pmd.sources.registry import get_source

    rows: list[dict[str, Any]] = []
    for name, scfg in cfg.enabled_sources().items():
        src = get_source(name)
        paths = [resolve_path(p, cfg.base_dir) for p in scfg.paths]
        for unit in src.units(paths, scfg.options, cfg.ingest.target_bytes):
            rows.append({"source": name, "unit_index": len(rows), "unit": pickle.dumps(unit)})
    return rows


#: Options naming image locations stay as written (relative to the config's base_dir): image paths in
#: the records are then independent of where the inputs live, so ids and shard bytes are the same for
#: the same inputs anywhere; the download stage reads them with ``root=base_dir``.
IMAGE_OPTION_HINTS = ("image", "zip", "archive", "template", "url")


def resolve_options(options: dict[str, Any], base_dir: str | None) -> dict[str, Any]:
    """Other options that name an existing file relative to ``base_dir`` (a Karpathy split file, a
    model) become absolute, because executors do not share the driver's working directory."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        if (isinstance(v, str) and v and base_dir and "://" not in v and "://" not in base_dir
                and not any(h in k for h in IMAGE_OPTION_HINTS) and not Path(v).is_absolute()
                and (Path(base_dir) / v).exists()):
            v = resolve_path(v, base_dir)
        out[k] = v
    return out


def parse_results(source_name: str, unit: Any, options: dict[str, Any]) -> Iterator[ParseResult]:
    """Every outcome of one unit; a crash mid-unit ends the unit with one ``parser_crash`` failure
    (at the last line the parser reached)."""
    from pmd.sources.registry import get_source

    src = get_source(source_name)
    last_line = None
    try:
        for item in src.parse(unit, options):
            if item.input_line is not None or isinstance(item, PairRecord):
                last_line = item.input_line
            yield item
    except Exception as exc:  # noqa: BLE001 - a parser bug must not lose the rest of the build
        yield _crash(source_name, unit, exc, last_line)


def _crash(source_name: str, unit: Any, exc: Exception, last_line: int | None) -> Failure:
    log.exception("parser %s crashed on %s", source_name, getattr(unit, "describe", lambda: unit)())
    return Failure("parser_crash", f"{type(exc).__name__}: {exc}", getattr(unit, "path", None), last_line)


def _rows(source_name: str, unit: Any, items: Iterable[ParseResult], crashed: list[bool] | None = None) -> Iterator[dict[str, Any]]:
    """``kept_row``/``reject_row`` of each item; a record that cannot become a row (a meta JSON
    cannot hold) ends the unit as a parser crash would (``crashed[0]`` set)."""
    last_line = None
    for item in items:
        if item.input_line is not None or isinstance(item, PairRecord):
            last_line = item.input_line
        try:
            row = kept_row(item) if isinstance(item, PairRecord) else reject_row(source_name, item)
        except Exception as exc:  # noqa: BLE001 - as in parse_results
            yield reject_row(source_name, _crash(source_name, unit, exc, last_line))
            if crashed is not None:
                crashed[0] = True
            return
        yield row


def parse_unit(source_name: str, unit: Any, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every outcome of one unit as a row; a crash mid-unit ends the unit with one failed row."""
    return _rows(source_name, unit, parse_results(source_name, unit, options))


def unit_batches(source: str, unit: Any, options: dict[str, Any], batch_size: int,
                 schema: pa.Schema = PAIR_OUTCOME_SCHEMA) -> Iterator[pa.RecordBatch]:
    """Every outcome of one unit as batches of ``schema`` rows, ``batch_size`` at a time.

    A source with a columnar path (``Source.parse_batches``: YFCC) gives its batches directly, with
    ``parse_results``' crash rule around it. Otherwise outcomes go to Arrow column by column
    (``outcome_batch``): the same rows as ``parse_unit`` without a dict per row (a chunk the columns
    refuse goes row by row, with ``parse_unit``'s crash rule: a record that cannot become a row
    ends the unit as one failed row)."""
    from pmd.sources.registry import get_source

    hook = getattr(get_source(source), "parse_batches", None)  # None too for a duck-typed parser
    columnar = hook(unit, options, batch_size) if hook is not None and schema is PAIR_OUTCOME_SCHEMA else None
    if columnar is None:
        yield from _item_batches(source, unit, parse_results(source, unit, options), batch_size, schema)
        return
    last_line = None
    try:
        for part in columnar:
            if isinstance(part, pa.RecordBatch):
                if part.num_rows:
                    last_line = part.column("input_line")[-1].as_py()
                    yield part
                continue
            for item in part:
                if item.input_line is not None or isinstance(item, PairRecord):
                    last_line = item.input_line
            crashed = [False]
            yield from _item_batches(source, unit, iter(part), batch_size, schema, crashed)
            if crashed[0]:
                return
    except Exception as exc:  # noqa: BLE001 - as in parse_results
        yield to_batch([reject_row(source, _crash(source, unit, exc, last_line))], schema)


def _item_batches(source: str, unit: Any, items: Iterator[ParseResult], batch_size: int, schema: pa.Schema,
                  crashed: list[bool] | None = None) -> Iterator[pa.RecordBatch]:
    """``outcome_batch`` of ``batch_size`` items at a time (row by row for a chunk it refuses,
    ending at a record that cannot become a row: ``crashed[0]`` set)."""
    crashed = crashed if crashed is not None else [False]
    while chunk := list(islice(items, batch_size)):
        try:
            out = outcome_batch(source, chunk, schema)
        except Exception:  # noqa: BLE001 - found again, and handled, row by row
            out = to_batch(list(_rows(source, unit, chunk, crashed)), schema)
            if crashed[0]:
                yield out
                return
        yield out


def parse_units_fn(options_by_source: dict[str, dict[str, Any]], batch_size: int):
    """The ``mapInArrow`` function: batches of unit rows (``UNIT_DDL``) → batches of outcome rows
    (``unit_batches`` of each unit, in order)."""

    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for source, blob in zip(batch.column("source").to_pylist(), batch.column("unit").to_pylist()):
                yield from unit_batches(source, pickle.loads(blob), options_by_source.get(source, {}), batch_size)

    return fn


def planned_unit_batches(options_by_source: dict[str, dict[str, Any]], batch_size: int):
    """``(source, pickled unit) → unit_batches``: what one ingest task writes as its part file."""

    def fn(planned: tuple[str, bytes]) -> Iterator[pa.RecordBatch]:
        source, blob = planned
        return unit_batches(source, pickle.loads(blob), options_by_source.get(source, {}), batch_size)

    return fn


def planned_ingest_filter_pairs(options_by_source: dict[str, dict[str, Any]], batch_size: int,
                                chains: dict[str, list[Any]]):
    """``(source, pickled unit) → (ingest batch, None) / (None, filter batch) pairs``: what one task of
    the fused ingest + filter job writes as its two parts. Each ingest batch is followed by the filter
    stage's batches of its kept rows (``pmd.pairs.filtering.filtered_kept``), made in memory: the
    same batches the filter stage makes from the ingest part, without reading the part back."""
    from pmd.pairs.filtering import filtered_kept

    parse = planned_unit_batches(options_by_source, batch_size)

    def fn(planned: tuple[str, bytes]) -> Iterator[tuple["pa.RecordBatch | None", "pa.RecordBatch | None"]]:
        for b in parse(planned):
            yield b, None
            for f in filtered_kept(b, chains, batch_size):
                yield None, f

    return fn
