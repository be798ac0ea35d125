"""WARC reading speed (pmd/interleaved/warc.py `read_warc`) on real pages, clean and damaged.

    taskset -c 1 .venv/bin/python bench/warc_read.py [--repeat 7] [--code /tmp/pmd-orig]

Packs every real HTML page of ../shared/data (article benchmark, trafilatura cache and the HTML
responses of the real WARC files) into a gzipped WARC with one member per record, as Common
Crawl writes them (warcio, block and payload digests included), and the same records as a plain
``.warc``; then times ``read_warc`` over each, plus a copy of the gzipped file with one flipped
byte in every 20th member (the resync path). Medians of ``--repeat`` runs in CPU seconds of this
process (robust to other load on a shared machine), as MB/s of file bytes and records/s.
``--code DIR`` imports ``pmd`` from another checkout (e.g. the code before a change) so that
before/after are measured in one sitting on the same files.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


# the same real pages as the WARC → documents benchmark
sys.path.insert(0, str(Path(__file__).resolve().parent))
from interleaved_extract import _real_pages as _pages  # noqa: E402


def _write(pages: list[tuple[str, bytes]], path: Path, gz: bool) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=gz)
        for url, html in pages:
            hh = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(html), http_headers=hh))


def _damage(src: Path, dst: Path, every: int) -> int:
    data = bytearray(src.read_bytes())
    pos, i, n = 0, 0, 0
    starts = []
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(bytes(data[pos:]))
        starts.append(pos)
        pos = len(data) - len(d.unused_data) if d.eof else len(data)
    for i, s in enumerate(starts):
        if i % every == every // 2:
            data[s + 40] ^= 0xFF
            n += 1
    dst.write_bytes(bytes(data))
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--code", help="import pmd from this checkout instead of this one")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.code).resolve() if args.code else REPO))
    from pmd.interleaved.warc import WarcPage, read_warc

    pages = _pages()
    import pmd

    res = {"code": str(Path(pmd.__file__).parent.parent), "pages": len(pages)}
    with tempfile.TemporaryDirectory() as tmp:
        gzp, plain, dmg = Path(tmp) / "real.warc.gz", Path(tmp) / "real.warc", Path(tmp) / "damaged.warc.gz"
        _write(pages, gzp, True)
        _write(pages, plain, False)
        res["damaged_members"] = _damage(gzp, dmg, 20)
        for label, path in (("gzip", gzp), ("plain", plain), ("gzip_damaged", dmg)):
            times, outcome = [], Counter()
            for _ in range(args.repeat):
                t0 = time.process_time()
                recs = list(read_warc(path))
                times.append(time.process_time() - t0)
            for r in recs:
                outcome["page" if isinstance(r, WarcPage) else getattr(r, "reason", None) or r.error] += 1
            med = statistics.median(times)
            size = path.stat().st_size
            res[label] = {"bytes": size, "median_cpu_s": round(med, 4), "MB_per_s": round(size / med / 1e6, 1),
                          "records_per_s": round(len(recs) / med), "outcomes": dict(outcome)}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
