"""Main-content extraction quality and speed on every ground-truth page set in ../shared/data/web.

    taskset -c 0 .venv/bin/python bench/extract_quality.py [--half all|a|b] [--tools pmd,trafilatura,resiliparse]

For each set with a ``ground-truth.json`` (article-benchmark, dragnet, readability; trafilatura-cache
has none and is listed as such) and each tool: bag-of-words precision, recall and F1 of the
extracted text against the page's ground truth (lower-cased ``\\w+`` tokens, multiset overlap), as
means over pages, and pages per CPU-second of extraction (``time.process_time``, one process, the
same pages, in the same run). ``macro_f1`` is the mean of the sets' F1. trafilatura and resiliparse
are compared when installed (``pip install -e .[bench]``); they never are runtime dependencies.
``--half a``/``b`` keeps the even/odd positions of each set's sorted page ids, to design on one half
and check on the other.

Tools: pmd = ``extract_document`` (main content, the compiled walk when built); trafilatura =
``trafilatura.extract`` (comments excluded: the ground truths exclude them); resiliparse =
``extract_plain_text(main_content=True)`` on its own parse with its encoding detection.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("PMD_SHARED_DATA", REPO.parent / "shared" / "data"))
_WORD = re.compile(r"\w+")


def tokens(s: str) -> Counter:
    return Counter(_WORD.findall(s.lower()))


def page_sets(half: str = "all") -> dict[str, list[tuple[str, str, bytes, str]]]:
    """set name -> [(page id, url, html bytes, ground-truth text)], for every set with ground truth."""
    out: dict[str, list[tuple[str, str, bytes, str]]] = {}
    for d in sorted((DATA / "web").iterdir()):
        gt_file = d / "ground-truth.json"
        if not gt_file.is_file():
            continue
        gt = json.loads(gt_file.read_text(encoding="utf-8"))
        pages = []
        for i, key in enumerate(sorted(gt)):
            if half != "all" and i % 2 != (0 if half == "a" else 1):
                continue
            html_dir = d / "html"
            f = next((p for p in (html_dir / f"{key}.html.gz", html_dir / f"{key}.html") if p.exists()), None)
            if f is None:
                continue
            data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
            url = gt[key].get("url") or f"https://{d.name}.example/{key}"
            pages.append((key, url, data, gt[key]["articleBody"]))
        out[d.name] = pages
    return out


def sets_without_ground_truth() -> list[str]:
    return sorted(d.name for d in (DATA / "web").iterdir() if d.is_dir() and not (d / "ground-truth.json").is_file())


def tools(wanted: list[str]) -> dict[str, Callable[[bytes, str], str]]:
    found: dict[str, Callable[[bytes, str], str]] = {}
    if "pmd" in wanted:
        from pmd.interleaved.extract import extract_document

        found["pmd"] = lambda html, url: "\n\n".join(t for t in extract_document(html, url).texts if t)
    if "trafilatura" in wanted:
        try:
            import trafilatura

            found["trafilatura"] = lambda html, url: trafilatura.extract(html, url=url, include_comments=False) or ""
        except ImportError:
            pass
    if "resiliparse" in wanted:
        try:
            from resiliparse.extract.html2text import extract_plain_text
            from resiliparse.parse.encoding import detect_encoding
            from resiliparse.parse.html import HTMLTree

            found["resiliparse"] = lambda html, url: extract_plain_text(
                HTMLTree.parse_from_bytes(html, detect_encoding(html)), main_content=True)
        except ImportError:
            pass
    return found


def score(got: str, truth: str) -> tuple[float, float, float]:
    g, w = tokens(got), tokens(truth)
    inter = sum((g & w).values())
    p = inter / sum(g.values()) if g else 0.0
    r = inter / max(sum(w.values()), 1)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def run(half: str, wanted: list[str], per_page: bool = False) -> dict:
    sets = page_sets(half)
    result: dict = {"half": half, "sets": {}, "no_ground_truth": sets_without_ground_truth()}
    fns = tools(wanted)
    result["tools"] = list(fns)
    try:
        from pmd.interleaved.extract import runtime_info

        result["pmd_runtime"] = runtime_info()
    except ImportError:
        pass
    total_pages = sum(len(p) for p in sets.values())
    for name, fn in fns.items():
        cpu = 0.0
        for set_name, pages in sets.items():
            ps, rs, fs, rows = [], [], [], []
            for key, url, html, truth in pages:
                t0 = time.process_time()
                text = fn(html, url)
                cpu += time.process_time() - t0
                p, r, f = score(text, truth)
                ps.append(p)
                rs.append(r)
                fs.append(f)
                rows.append((key, round(p, 3), round(r, 3)))
            entry = {"pages": len(pages), "P": round(statistics.mean(ps), 4), "R": round(statistics.mean(rs), 4),
                     "F1": round(statistics.mean(fs), 4)}
            if per_page:
                entry["per_page"] = rows
            result["sets"].setdefault(set_name, {})[name] = entry
        result.setdefault("pages_per_cpu_s", {})[name] = round(total_pages / cpu, 1) if cpu else None
        result.setdefault("macro_f1", {})[name] = round(statistics.mean(
            result["sets"][s][name]["F1"] for s in sets), 4)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--half", choices=["all", "a", "b"], default="all")
    ap.add_argument("--tools", default="pmd,trafilatura,resiliparse")
    ap.add_argument("--per-page", action="store_true", help="also list each page's P/R (to study failure kinds)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args()
    res = run(args.half, args.tools.split(","), args.per_page)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return
    names = res["tools"]
    print("| page set | pages | " + " | ".join(f"{n} P / R / F1" for n in names) + " |")
    print("| --- | --- |" + " --- |" * len(names))
    for s, by_tool in res["sets"].items():
        cells = [f"{by_tool[n]['P']:.3f} / {by_tool[n]['R']:.3f} / {by_tool[n]['F1']:.3f}" for n in names]
        print(f"| {s} | {by_tool[names[0]]['pages']} | " + " | ".join(cells) + " |")
    print("| macro-F1 | | " + " | ".join(f"{res['macro_f1'][n]:.3f}" for n in names) + " |")
    print("| pages/CPU-s | | " + " | ".join(f"{res['pages_per_cpu_s'][n]}" for n in names) + " |")
    print(f"no ground truth (not scored): {', '.join(res['no_ground_truth']) or '-'}; pmd: {res.get('pmd_runtime')}")


if __name__ == "__main__":
    main()
