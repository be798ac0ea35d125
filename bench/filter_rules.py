"""Interleaved filter throughput on the real pages: ``filter_documents`` CPU time, median of runs.

Usage: python bench/filter_rules.py [--runs 5] [--copies 3] [--docs FILE.json]

The documents are the real pages of ``../shared/data/web`` as the extract stage makes them
(``tests/golden/make_filters_golden.py``), repeated ``--copies`` times, filtered with profile
``obelics`` and ``min_images: 0`` (every document reaches the text rules). fastText is loaded and
one warm-up pass runs before timing. To compare with another checkout's filters (e.g. the code
before the rules split), run the same command with that checkout first on ``PYTHONPATH`` and the same
``--docs FILE.json``: the first run writes the extracted documents there, later runs read them, so
both filters see the same inputs whatever each checkout's extractor does.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "tests" / "golden"))  # after PYTHONPATH: another checkout's pmd wins

import make_filters_golden as mg  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--docs", type=Path, help="extracted documents (JSON): read if present, else written")
    args = ap.parse_args()
    import pmd
    from pmd.counters import CounterBook
    from pmd.interleaved.config import resolve_filters
    from pmd.interleaved.filters import filter_documents
    from pmd.text.langid import get_identifier

    if args.docs and args.docs.is_file():
        docs = [mg.from_dict(d) for d in json.loads(args.docs.read_text(encoding="utf-8"))]
    else:
        docs = mg.web_documents()
        if args.docs:
            args.docs.write_text(json.dumps([mg.doc_dict(d) for d in docs], ensure_ascii=False), encoding="utf-8")
    docs = docs * args.copies
    cfg = resolve_filters("obelics", {"min_images": 0})
    get_identifier()
    book = CounterBook()
    list(filter_documents(docs, cfg, book.get("filter"), book.get("filter_nodes")))
    times = []
    for _ in range(args.runs):
        book = CounterBook()
        t = time.process_time()
        kept = sum(not hasattr(d, "reason") for d in filter_documents(docs, cfg, book.get("filter"), book.get("filter_nodes")))
        times.append(time.process_time() - t)
    med = statistics.median(times)
    print(json.dumps({"pmd": str(Path(pmd.__file__).parent), "docs": len(docs), "kept": kept,
                      "cpu_s_median": round(med, 3), "docs_per_cpu_s": round(len(docs) / med, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
