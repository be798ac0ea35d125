"""Per-partition work of the interleaved build as pure functions: WARC units → filtered documents.

``process_unit`` reads one WARC unit (a file or a byte range), extracts every HTML response in one
DOM pass and filters the documents; each record leaves as a kept document or a reject row, and
the counters of the stages ``read``, ``extract``, ``filter`` (documents) and ``filter_nodes``
(paragraphs and images) travel with the output. ``process_batches`` wraps it for ``mapInArrow``.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa

from pmd.counters import CounterBook
from pmd.interleaved.config import ExtractBudgets, FilterConfig, InterleavedConfig
from pmd.interleaved.extract import OverBudget, extract_document
from pmd.interleaved.filters import filter_documents
from pmd.interleaved.warc import WarcPage, read_warc
from pmd.records import InterleavedDocument
from pmd.verdict import Dropped, Failure

ROW_SCHEMA = pa.schema([
    pa.field("kind", pa.string()),  # doc | reject | counters
    pa.field("id", pa.string()),
    pa.field("url", pa.string()),
    pa.field("texts", pa.list_(pa.string())),
    pa.field("images", pa.list_(pa.string())),
    pa.field("metadata", pa.string()),
    pa.field("general_metadata", pa.string()),
    pa.field("stage", pa.string()),
    pa.field("outcome", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("message", pa.string()),
    pa.field("input_file", pa.string()),
    pa.field("input_line", pa.int64()),
    pa.field("image_url", pa.string()),
])
UNIT_SCHEMA = pa.schema([pa.field("path", pa.string()), pa.field("offset", pa.int64()),
                         pa.field("length", pa.int64()), pa.field("name", pa.string())])


@dataclass(frozen=True)
class WarcUnit:
    path: str
    offset: int | None = None
    length: int | None = None
    name: str | None = None


def expand_inputs(inputs: Iterable[str], root: str | Path | None = None) -> list[WarcUnit]:
    """Units from config inputs: paths, globs, or ``path@offset:length`` ranges (relative to ``root``).
    ``name`` (the provenance filename) is the input as written, so builds on other machines agree."""
    from pmd.errors import UserError

    units: list[WarcUnit] = []
    for spec in inputs:
        rng = None
        if "@" in spec and spec.rsplit("@", 1)[1].replace(":", "").isdigit():
            spec, rng = spec.rsplit("@", 1)
        base = Path(root) / spec if root is not None and not Path(spec).is_absolute() else Path(spec)
        matches = sorted(glob.glob(str(base))) if any(c in spec for c in "*?[") else [str(base)]
        if not matches or (len(matches) == 1 and not Path(matches[0]).exists()):
            raise UserError(f"WARC input {spec!r} matches no file")
        for m in matches:
            name = spec if len(matches) == 1 else (str(Path(m).relative_to(root)) if root else m)
            if rng:
                off, _, ln = rng.partition(":")
                units.append(WarcUnit(m, int(off), int(ln) if ln else None, name))
            else:
                units.append(WarcUnit(m, None, None, name))
    return units


def _reject(stage: str, outcome: str, reason: str, message: str | None, input_file: str | None,
            input_line: int | None, url: str | None = None) -> dict[str, Any]:
    return {"kind": "reject", "stage": stage, "outcome": outcome, "reason": reason, "message": message,
            "input_file": input_file, "input_line": input_line, "url": url}


def extract_pages(records: Iterable[WarcPage | Dropped | Failure], book: CounterBook, rejects: list[dict[str, Any]],
                  main_content: bool = True, budgets: ExtractBudgets = ExtractBudgets(),
                  ) -> Iterator[InterleavedDocument]:
    """Stage ``read`` (WARC records) and ``extract`` (HTML pages → documents), counted; a page over one
    of ``budgets`` is dropped with the budget's reason."""
    rc, ec = book.get("read"), book.get("extract")
    for rec in records:
        rc.add_input()
        if isinstance(rec, Dropped):
            rc.add_dropped(rec.reason)
            if not rec.reason.startswith("record_"):  # other record types are not rejects worth a row
                rejects.append(_reject("read", "dropped", rec.reason, rec.detail, rec.input_file, rec.input_line))
            continue
        if isinstance(rec, Failure):
            rc.add_failed(rec.error)
            rejects.append(_reject("read", "failed", rec.error, rec.message, rec.input_file, rec.input_line))
            continue
        rc.add_kept()
        ec.add_input()
        try:
            doc = extract_document(rec.html, rec.url, charset=rec.charset, general_metadata=rec.general_metadata(),
                                   main_content=main_content, budgets=budgets)
        except OverBudget as e:
            ec.add_dropped(e.reason)
            rejects.append(_reject("extract", "dropped", e.reason, str(e)[:300], rec.warc_filename, rec.offset, rec.url))
            continue
        except Exception as e:  # noqa: BLE001 - one bad page never stops the unit
            ec.add_failed("extract_error")
            rejects.append(_reject("extract", "failed", "extract_error", f"{type(e).__name__}: {e}"[:300],
                                   rec.warc_filename, rec.offset, rec.url))
            continue
        if not doc.texts:
            ec.add_dropped("no_content")
            rejects.append(_reject("extract", "dropped", "no_content", None, rec.warc_filename, rec.offset, rec.url))
            continue
        ec.add_kept()
        yield doc


def process_unit(unit: WarcUnit, cfg: InterleavedConfig, fcfg: FilterConfig | None = None,
                 book: CounterBook | None = None) -> tuple[list[InterleavedDocument], list[dict[str, Any]], CounterBook]:
    """One WARC unit through read → extract → filter: kept documents, reject rows, counters."""
    book = book if book is not None else CounterBook()
    fcfg = fcfg or cfg.filters()
    rejects: list[dict[str, Any]] = []
    docs = extract_pages(read_warc(unit.path, unit.offset, unit.length, unit.name), book, rejects, cfg.main_content,
                         cfg.extract)
    kept: list[InterleavedDocument] = []
    gm_of: dict[str, dict[str, Any]] = {}
    for out in filter_documents(_remember(docs, gm_of), fcfg, book.get("filter"), book.get("filter_nodes"),
                                sink=rejects):
        if isinstance(out, Dropped):
            gm = gm_of.get(out.input_file or "", {})
            rejects.append(_reject("filter", "dropped", out.reason, None, gm.get("warc_filename"),
                                   gm.get("warc_record_offset"), out.detail))
        else:
            kept.append(out)
    return kept, rejects, book


def _remember(docs: Iterable[InterleavedDocument], gm_of: dict[str, dict[str, Any]]) -> Iterator[InterleavedDocument]:
    for d in docs:
        gm_of[d.id] = d.general_metadata
        yield d


def doc_row(doc: InterleavedDocument) -> dict[str, Any]:
    return {"kind": "doc", **doc.to_row()}


def rows_batch(rows: list[dict[str, Any]], schema: pa.Schema = ROW_SCHEMA) -> pa.RecordBatch:
    """Rows (dicts, missing columns null) as one batch of ``schema``."""
    return pa.RecordBatch.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)


def counters_row(book: CounterBook) -> dict[str, Any]:
    """The row that carries a task's counters (``kind = counters``, the book's JSON in ``message``)."""
    return {"kind": "counters", "message": book.to_json()}


def doc_drop_row(stage: str, d: Dropped) -> dict[str, Any]:
    """The reject row of a document a global stage dropped (``input_file`` is the document id)."""
    return {"kind": "reject", "stage": stage, "outcome": "dropped", "reason": d.reason, "message": None,
            "input_file": d.input_file, "url": d.detail}


def process_batches(batches: Iterator[pa.RecordBatch], cfg: InterleavedConfig) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: unit rows in, document/reject rows out, plus one counters row per call."""
    fcfg = cfg.filters()
    book = CounterBook()
    for batch in batches:
        for u in batch.to_pylist():
            docs, rejects, _ = process_unit(WarcUnit(u["path"], u["offset"], u["length"], u["name"]), cfg, fcfg, book)
            rows = [doc_row(d) for d in docs] + [{**r, "kind": "reject"} for r in rejects]
            if rows:
                yield rows_batch(rows)
    yield rows_batch([counters_row(book)])


def split_rows(table: pa.Table) -> tuple[list[InterleavedDocument], list[dict[str, Any]], CounterBook]:
    """Driver side: the collected rows back into documents, reject rows and merged counters."""
    docs, rejects, book = [], [], CounterBook()
    for r in table.to_pylist():
        kind = r["kind"]
        if kind == "doc":
            docs.append(InterleavedDocument.from_row(r))
        elif kind == "reject":
            rejects.append({k: r[k] for k in ("stage", "outcome", "reason", "message", "input_file", "input_line", "url",
                                              "image_url")})
        elif kind == "counters":
            book = book.merge(CounterBook.from_list(json.loads(r["message"])))
        else:
            raise ValueError(f"unknown row kind {kind!r}")
    return docs, rejects, book
