"""`pmd sources`: list the PMD sources; parse raw source files into unified pair records.

``pmd sources parse NAME PATH... --out FILE.parquet [--option key=value ...]`` writes the kept
pairs (schema ``pair``), ``FILE.counters.json`` (a CounterBook, stage ``ingest``) and
``FILE.rejects.parquet`` (every dropped or failed record with reason, file and line).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger("pmd.sources")

REJECT_COLUMNS = ("stage", "source", "outcome", "reason", "message", "input_file", "input_line", "image_url")
BATCH = 8192


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("sources", help="List the PMD sources and parse raw source files into unified pair records.",
                       description="List the PMD sources and parse raw source files into unified pair records.")
    ssub = p.add_subparsers(dest="sources_command", metavar="ACTION", required=True)
    lp = ssub.add_parser("list", help="the sources with FLAVA Table 1's sizes")
    lp.add_argument("--json", action="store_true", help="machine-readable output")
    lp.set_defaults(func=run_list)
    pp = ssub.add_parser("parse", help="parse raw files of one source into FILE.parquet (+ counters, rejects)")
    pp.add_argument("name", help="source name (see `pmd sources list`)")
    pp.add_argument("paths", nargs="+", help="input files, directories or globs (local or fsspec URLs)")
    pp.add_argument("--out", required=True, help="output .parquet file")
    pp.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                    help="source option (repeatable), e.g. karpathy=dataset_coco.json")
    pp.add_argument("--no-langid", action="store_true", help="do not annotate lang/lang_score (fastText)")
    pp.add_argument("--lid-model", default=None, help="fastText model (lid.176.bin/.ftz); default: bundled .ftz")
    pp.add_argument("--target-mb", type=int, default=64, help="size of one work unit of a big line-oriented file")
    pp.set_defaults(func=run_parse)


def run_list(args: argparse.Namespace) -> int:
    from pmd.sources.registry import EXTRA_SOURCES, PAPER_TABLE1, PAPER_TOTAL, PMD_SOURCES, SOURCES

    rows = []
    for name in (*PMD_SOURCES, *EXTRA_SOURCES):
        s = SOURCES[name]
        pairs, words = PAPER_TABLE1.get(s.paper_row, (None, None))
        rows.append({"name": name, "pmd": name in PMD_SOURCES, "paper_row": s.paper_row or "-",
                     "paper_pairs_m": pairs, "paper_avg_words": words, "description": s.description,
                     "options": sorted(s.defaults)})
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return 0
    out = [f"{'source':34} {'FLAVA Table 1 row':28} {'pairs':>7} {'words':>6}  description"]
    for r in rows:
        pairs = f"{r['paper_pairs_m']:.1f}M" if r["paper_pairs_m"] is not None else "-"
        words = f"{r['paper_avg_words']:.1f}" if r["paper_avg_words"] is not None else "-"
        if not r["pmd"]:
            pairs, words = "extra", "-"
        out.append(f"{r['name']:34} {r['paper_row']:28} {pairs:>7} {words:>6}  {r['description']}")
    out.append(f"{'total (PMD)':34} {'':28} {PAPER_TOTAL[0]:.1f}M {PAPER_TOTAL[1]:>6.1f}  "
               "(the four Localized Narratives subsets share one row)")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def parse_options(items: Iterable[str]) -> dict[str, str]:
    from pmd.errors import UserError

    opts: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--option {item!r}: expected KEY=VALUE")
        opts[key.strip()] = value
    return opts


def _batches(items: Iterator[Any], n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for x in items:
        batch.append(x)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def parse_to_parquet(name: str, paths: list[str], out: str | Path, options: dict[str, Any] | None = None,
                     langid: bool = True, lid_model: str | None = None, target_bytes: int = 64 << 20) -> Any:
    """Parse ``paths`` with source ``name`` into ``out`` (+ counters/rejects); returns the CounterBook.

    Files are written under temporary names and renamed at the end, counters last.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pmd.counters import CounterBook
    from pmd.progress import Progress
    from pmd.records import PairRecord
    from pmd.schemas import load_schema, validate
    from pmd.sources.registry import get_source
    from pmd.text.filters import annotate_language
    from pmd.verdict import Dropped, Failure

    source = get_source(name)
    options = dict(options or {})
    if lid_model and "lid_model" in source.defaults:
        options.setdefault("lid_model", lid_model)  # one model for the parser's rule and the annotation
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rejects_path = Path(_rejects_path(out))
    counters_path = Path(str(rejects_path)[: -len(".rejects.parquet")] + ".counters.json")
    tmp_out, tmp_rej = Path(str(out) + ".tmp"), Path(str(rejects_path) + ".tmp")
    schema = load_schema("pair")
    rej_schema = pa.schema([(c, pa.int64() if c == "input_line" else pa.string()) for c in REJECT_COLUMNS])
    book = CounterBook()
    counters = book.get("ingest", source.name)
    identifier = None
    if langid:
        from pmd.text.langid import get_identifier

        identifier = get_identifier(lid_model)
    units = source.units(paths, options, target_bytes)
    log.info("%s: %d input unit(s) from %d path(s)", name, len(units), len(paths))
    shown_failures = 0

    def outcomes() -> Iterator[Any]:
        for unit in units:
            yield from source.parse(unit, options)

    try:
        with pq.ParquetWriter(tmp_out, schema) as writer, pq.ParquetWriter(tmp_rej, rej_schema) as rwriter, \
                Progress(f"parse {name}", unit="records") as progress:
            for batch in _batches(outcomes(), BATCH):
                kept: list[PairRecord] = []
                rejects: list[dict[str, Any]] = []
                for o in batch:
                    counters.add_input()
                    if isinstance(o, PairRecord):
                        kept.append(o)
                    elif isinstance(o, Dropped):
                        counters.add_dropped(o.reason)
                        rejects.append({"stage": "ingest", "source": source.name, "outcome": "dropped",
                                        "reason": o.reason, "message": o.detail, "input_file": o.input_file,
                                        "input_line": o.input_line, "image_url": None})
                    elif isinstance(o, Failure):
                        counters.add_failed(o.error)
                        if shown_failures < 20:
                            log.warning("%s", o.describe())
                            shown_failures += 1
                        rejects.append({"stage": "ingest", "source": source.name, "outcome": "failed",
                                        "reason": o.error, "message": o.message, "input_file": o.input_file,
                                        "input_line": o.input_line, "image_url": None})
                    else:  # a parser bug must not pass silently
                        raise TypeError(f"{name}: parse yielded {type(o).__name__}")
                if identifier is not None:
                    annotate_language(kept, identifier)
                counters.add_kept(len(kept))
                if kept:
                    table = pa.Table.from_pylist([r.to_row() for r in kept], schema=schema)
                    validate(table, "pair")
                    writer.write_table(table)
                if rejects:
                    rwriter.write_table(pa.Table.from_pylist(rejects, schema=rej_schema))
                progress.update(len(batch))
        book.check_reconciled()
    except BaseException:
        for t in (tmp_out, tmp_rej):
            t.unlink(missing_ok=True)
        raise
    os.replace(tmp_out, out)
    os.replace(tmp_rej, rejects_path)
    tmp_c = Path(str(counters_path) + ".tmp")
    tmp_c.write_text(book.to_json(indent=1) + "\n", encoding="utf-8")
    os.replace(tmp_c, counters_path)
    return book


def run_parse(args: argparse.Namespace) -> int:
    from pmd.outputs import check_out

    opts = parse_options(args.option)
    check_out(args.out, inputs=args.paths, want="file")
    book = parse_to_parquet(args.name, args.paths, args.out, opts, langid=not args.no_langid,
                            lid_model=args.lid_model, target_bytes=args.target_mb << 20)
    c = book.get("ingest", args.name)
    dropped = ", ".join(f"{k}={v}" for k, v in sorted(c.dropped.items())) or "none"
    failed = ", ".join(f"{k}={v}" for k, v in sorted(c.failed.items())) or "none"
    summary = (f"{args.name}: {c.input} records: kept {c.kept}, dropped {c.n_dropped} ({dropped}), "
               f"failed {c.n_failed} ({failed})")
    if not c.kept:  # a source that yields nothing is an error, not an empty success
        from pmd.errors import UserError

        raise UserError(f"{summary}: nothing kept (rejects in {_rejects_path(args.out)})")
    sys.stdout.write(f"{summary} -> {args.out}\n")
    return 0


def _rejects_path(out: str | Path) -> str:
    stem = str(out)[: -len(".parquet")] if str(out).endswith(".parquet") else str(out)
    return stem + ".rejects.parquet"
