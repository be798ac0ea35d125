"""Interleaved documents: extraction quality and WARC → filtered documents throughput on real pages.

    .venv/bin/python bench/interleaved_extract.py quality
        token-level recall/precision of the extracted text against ground-truth article bodies
        (../shared/data/web/article-benchmark, 91 pages) and extraction docs/s.

    taskset -c 0 .venv/bin/python bench/interleaved_extract.py throughput [--repeat 3]
        packs the real pages (article-benchmark + trafilatura-cache + every HTML response of the
        real WARCs) into a gzipped WARC (one member per record, as Common Crawl does), then times
        read → extract → filter (obelics profile, fastText language ID batched) in one process;
        medians of --repeat runs, per stage and end to end, in docs per CPU-second of the process
        (time.process_time: robust to other load on a shared machine; wall time reported too).
        ``walker``/``textstats`` say whether the compiled modules (pmd/interleaved/_walk.c,
        _textstats.c) were used or the Python fallbacks; ``--python`` forces the fallbacks (the
        pure-Python reference, same outputs) to compare both in one session.
        ``extract_parse_only`` times lexbor parsing alone in a separate pass (not part of end to end),
        the floor under the extract stage.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("PMD_SHARED_DATA", REPO.parent / "shared" / "data"))


def _tokens(s: str) -> Counter:
    return Counter(re.findall(r"\w+", s.lower()))


def quality() -> dict:
    from pmd.interleaved.extract import extract_document

    d = DATA / "web" / "article-benchmark"
    gt = json.loads((d / "ground-truth.json").read_text(encoding="utf-8"))
    pages = [(k, v["url"], gzip.decompress((d / "html" / f"{k}.html.gz").read_bytes()), v["articleBody"])
             for k, v in sorted(gt.items())]
    recalls, precisions, n_images = [], [], 0
    t0 = time.process_time()
    docs = [extract_document(html, url) for _, url, html, _ in pages]
    dt = time.process_time() - t0
    for doc, (_, _, _, truth) in zip(docs, pages):
        got, want = _tokens("\n".join(t for t in doc.texts if t)), _tokens(truth)
        inter = sum((got & want).values())
        recalls.append(inter / max(sum(want.values()), 1))
        precisions.append(inter / sum(got.values()) if got else 0.0)
        n_images += len(doc.image_urls)
    return {"pages": len(pages), "recall_mean": round(statistics.mean(recalls), 4),
            "recall_median": round(statistics.median(recalls), 4),
            "precision_mean": round(statistics.mean(precisions), 4),
            "precision_median": round(statistics.median(precisions), 4),
            "f1_mean": round(statistics.mean(2 * r * p / (r + p) if r + p else 0.0 for r, p in zip(recalls, precisions)), 4),
            "images": n_images, "extract_docs_per_s": round(len(pages) / dt, 1)}


def _real_pages() -> list[tuple[str, bytes]]:
    from pmd.interleaved.warc import WarcPage, read_warc

    out = []
    d = DATA / "web" / "article-benchmark"
    gt = json.loads((d / "ground-truth.json").read_text(encoding="utf-8"))
    for k, v in sorted(gt.items()):
        out.append((v["url"], gzip.decompress((d / "html" / f"{k}.html.gz").read_bytes())))
    for p in sorted((DATA / "web" / "trafilatura-cache").glob("*.htm*")):
        out.append((f"https://{p.stem}/", p.read_bytes()))
    for w in sorted((DATA / "warc").glob("*.warc.gz")):
        out += [(r.url, r.html) for r in read_warc(w) if isinstance(r, WarcPage)]
    return out


def _write_warc(pages: list[tuple[str, bytes]], path: Path) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=True)
        for url, html in pages:
            hh = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(html), http_headers=hh))


def throughput(repeat: int) -> dict:
    from pmd.counters import CounterBook
    from pmd.interleaved.config import resolve_filters
    from selectolax.lexbor import LexborHTMLParser

    from pmd.interleaved.extract import extract_document, to_utf8
    from pmd.interleaved.filters import filter_documents
    from pmd.interleaved.warc import WarcPage, read_warc
    from pmd.text.langid import get_identifier

    pages = _real_pages()
    get_identifier()  # model load is a once-per-process cost, not per document
    cfg = resolve_filters("obelics")
    with tempfile.TemporaryDirectory() as tmp:
        warc = Path(tmp) / "real.warc.gz"
        _write_warc(pages, warc)
        size = warc.stat().st_size
        runs: dict[str, list[float]] = {"read": [], "extract": [], "filter": [], "end_to_end": [], "wall": [],
                                        "extract_parse_only": []}
        kept = 0
        clock = time.process_time  # CPU seconds of this process: what one core spends, whatever the machine load
        for _ in range(repeat):
            w0 = time.perf_counter()
            t0 = clock()
            recs = [r for r in read_warc(warc) if isinstance(r, WarcPage)]
            t1 = clock()
            docs = [extract_document(r.html, r.url, charset=r.charset, general_metadata=r.general_metadata()) for r in recs]
            t2 = clock()
            book = CounterBook()
            out = [d for d in filter_documents(docs, cfg, book.get("filter"), book.get("filter_nodes"))
                   if not hasattr(d, "reason")]
            t3 = clock()
            runs["read"].append(t1 - t0)
            runs["extract"].append(t2 - t1)
            runs["filter"].append(t3 - t2)
            runs["end_to_end"].append(t3 - t0)
            runs["wall"].append(time.perf_counter() - w0)
            t4 = clock()
            for r in recs:
                LexborHTMLParser(to_utf8(r.html, r.charset)[0])
            runs["extract_parse_only"].append(clock() - t4)
            kept = len(out)
    n = len(recs)
    med = {k: statistics.median(v) for k, v in runs.items()}
    from pmd.interleaved.extract import runtime_info

    return {**runtime_info(), "pages": n, "warc_mb": round(size / 1e6, 2), "html_mb": round(sum(len(h) for _, h in pages) / 1e6, 2),
            "kept_after_filter": kept, "repeat": repeat,
            **{f"{k}_docs_per_s": round(n / v, 1) for k, v in med.items()},
            "end_to_end_cpu_seconds_median": round(med["end_to_end"], 3),
            "wall_seconds_median": round(med["wall"], 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["quality", "throughput", "all"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--python", action="store_true", help="use the pure-Python walk and text statistics")
    args = ap.parse_args()
    if args.python:
        from pmd.interleaved import extract as extract_mod
        from pmd.interleaved import metrics

        extract_mod.use_walker("python")
        metrics.use_textstats("python")
    res = {}
    if args.mode in ("quality", "all"):
        res["quality"] = quality()
    if args.mode in ("throughput", "all"):
        res["throughput"] = throughput(args.repeat)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
