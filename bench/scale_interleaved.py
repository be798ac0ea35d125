"""Driver memory and stage times of the interleaved build at N and 10N documents (issue 12).

Generates WARCs of N English article pages (the embedded sample's page kind: paragraphs that
describe the scene images between them, a logo in the navigation, a site promo paragraph) with
distinct URLs, and plants work for every dedup: recrawled URLs (``dup_url``), an ad image in many
pages (``image_url_too_frequent``), a repeated image inside a page (``dup_image_in_doc``), the
site promo (``dup_domain_paragraph``), pages sharing an image set (``dup_image_set``), one-word
edits of other pages (``near_duplicate``) and French pages (``doc_language``). Images are the
sample's rendered scenes, served on loopback; each image URL (a scene plus a query) is used by at
most 10 pages so the frequency dedup keeps it. Each size runs in a fresh subprocess, which reports
the peak RSS of the driver Python (``VmHWM``) and the driver JVM's peak heap.

    .venv/bin/python bench/scale_interleaved.py --n-small 5000 --factor 10 --cores 2

prints one JSON line ``{"build": "interleaved", "n_small", "n_large", "driver_rss_mb_small", ...}``.
``run(n_small, factor, cores)`` returns that dict (for ``bench/scale.py``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from driver_memory import jvm_heap_peak_mb, vm_hwm_mb  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white", "pink", "brown"]
SHAPES = ["circle", "square", "triangle", "star", "hexagon", "diamond", "heart", "cross"]
PLACES = ["to the left of", "to the right of", "above", "below", "next to", "far from"]
BACKGROUNDS = ["pale blue", "light grey", "cream", "pale green", "white", "sand"]
SITES = [f"https://www.shapes-{i}.example" for i in range(20)]
DOCS_PER_FILE = 2500


def _sentence(rng: random.Random, k: int) -> str:
    c1, c2 = rng.sample(COLOURS, 2)
    s1, s2 = rng.sample(SHAPES, 2)
    return (f"The picture below shows a {c1} {s1} {rng.choice(PLACES)} a {c2} {s2} on a "
            f"{rng.choice(BACKGROUNDS)} background, and it is drawing number {k} of our archive.")


def _paragraph(rng: random.Random, k: int, filler: list[str]) -> str:
    return " ".join([_sentence(rng, k), rng.choice(filler), _sentence(rng, k + 1)])


def _html(title: str, paras: list[str], images: list[tuple[str, str]], logo: str, promo: str | None,
          lang: str = "en") -> str:
    body = [f"<h1>{title}</h1>"]
    for i, p in enumerate(paras):
        body.append(f"<p>{p}</p>")
        if i < len(images):
            url, alt = images[i]
            body.append(f'<figure><img src="{url}" alt="{alt}" width="480" height="400">'
                        f"<figcaption>{alt}</figcaption></figure>")
    if promo:
        body.append(f"<p>{promo}</p>")
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title></head><body>'
            f'<nav><a href="/"><img src="{logo}" alt="logo" width="32" height="32"></a> <a href="/about">About</a></nav>'
            f"<main><article>{''.join(body)}</article></main><footer>Shapes daily, all rights reserved.</footer>"
            f"</body></html>")


def write_warcs(out: Path, n: int, base_url: str, scenes: list[str], seed: int = 0) -> dict[str, int]:
    """``n`` pages into ``out/*.warc.gz``; returns how many of each planted duplicate were written."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from pmd.sample.warc import EN_FILLER, FR_FILLER

    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    t0 = datetime(2021, 3, 1, tzinfo=timezone.utc)
    n_urls = max(20, n // 5)  # each image URL in 10 pages (2 per page): never "too frequent"
    img_url = lambda j, part: f"{base_url}/{scenes[(j + part) % len(scenes)]}?v={j}"  # noqa: E731
    promos = {s: f"Subscribe to the {s.split('//')[1]} newsletter and get a new shape in your inbox every day." for s in SITES}
    planted = {"recrawl": 0, "near": 0, "image_set": 0, "french": 0, "ad": 0, "in_doc": 0}
    pages: list[tuple[str, str, datetime]] = []
    kept_text: list[tuple[list[str], str]] = []
    for i in range(n):
        site = SITES[i % len(SITES)]
        url = f"{site}/{2021 + i % 3}/post-{i}.html"
        when = t0 + timedelta(minutes=i)
        roll = rng.random()
        a, b = i % n_urls, (i + i // n_urls + 1) % n_urls
        images = [(img_url(a, 0), f"scene {a}"), (img_url(b, 7), f"scene {b}")]
        paras = [_paragraph(rng, 10 * i + j, EN_FILLER) for j in range(4)]
        lang = "en"
        if roll < 0.02 and kept_text:  # a one-word edit of an earlier page, with images of its own
            src, _ = kept_text[rng.randrange(len(kept_text))]
            paras = list(src)
            paras[1] = paras[1].replace("archive", "collection", 1)
            planted["near"] += 1
        elif roll < 0.03 and i > 10:  # the image set of the page before it, with other text
            pa, pb = (i - 1) % n_urls, (i - 1 + (i - 1) // n_urls + 1) % n_urls
            images = [(img_url(pa, 0), "same"), (img_url(pb, 7), "same")]
            planted["image_set"] += 1
        elif roll < 0.05:
            paras = [" ".join(rng.sample(FR_FILLER, 3)) for _ in range(4)]
            lang = "fr"
            planted["french"] += 1
        if rng.random() < 0.05:
            images.append((f"{base_url}/images/web/ads/ad-300x250.jpg", "our sponsor"))
            planted["ad"] += 1
        if rng.random() < 0.02:
            images.append(images[0])
            planted["in_doc"] += 1
        promo = promos[site] if rng.random() < 0.1 else None
        html = _html(f"Shapes post {i}", paras, images, f"{base_url}/images/web/logos/site-32.png", promo, lang)
        pages.append((url, html, when))
        kept_text.append((paras, url))
        if rng.random() < 0.02:  # recrawled a day later
            pages.append((url, html, when + timedelta(days=1)))
            planted["recrawl"] += 1
    for f in range(0, len(pages), DOCS_PER_FILE):
        buf = io.BytesIO()
        w = WARCWriter(buf, gzip=True, warc_version="1.1")
        for k, (url, html, when) in enumerate(pages[f:f + DOCS_PER_FILE]):
            body = html.encode("utf-8")
            date = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            hdrs = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                               ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), length=len(body),
                                                http_headers=hdrs, warc_headers_dict={
                                                    "WARC-Date": date,
                                                    "WARC-Record-ID": f"<urn:uuid:00000000-0000-4000-8000-{f + k:012d}>"}))
        (out / f"crawl-{f // DOCS_PER_FILE:05d}.warc.gz").write_bytes(buf.getvalue())
    planted["pages"] = len(pages)
    return planted


# -- one size, in a fresh process -----------------------------------------------------------

def child(n: int, work: Path, cores: int) -> dict[str, Any]:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from pmd.config import load
    from pmd.interleaved.config import InterleavedConfig
    from pmd.log import setup_logging
    from pmd.sample.generate import ensure_sample
    from pmd.sample.server import serve_sample
    from pmd.spark.interleaved import build
    from pmd.spark.session import spark_session

    setup_logging(0)
    sdir = work / "sample"
    ensure_sample(sdir)
    meta = json.loads((sdir / "sample.json").read_text())
    scenes = sorted(str(p.relative_to(sdir)) for p in (sdir / "images" / "web").glob("scene-[0-9][0-9][0-9].jpg"))
    planted = write_warcs(work / "warc", n, meta["base_url"].rstrip("/"), scenes)
    cfg = load(InterleavedConfig, {
        "inputs": [str(p) for p in sorted((work / "warc").glob("*.warc.gz"))], "partitions": cores * 2,
        "download": {"allow_loopback": True, "thread_count": 16, "timeout": 10, "samples_per_shard": 2000},
        "shard": {"docs_per_shard": 1000},
        "filter_overrides": {"doc_max_word_rep": None, "doc_max_char_rep": None}})
    spark = spark_session(f"local[{cores}]", app_name="pmd-bench-interleaved",
                          conf={"spark.sql.shuffle.partitions": str(cores * 2)})
    t0 = time.monotonic()
    with serve_sample(sdir):
        build(cfg, work / "build", spark=spark)
    wall = time.monotonic() - t0
    secs = {}
    for stage in ("extract", "dedup", "download", "shard"):
        secs[stage] = json.loads((work / "build" / "stages" / stage / "_SUCCESS").read_text())["seconds"]
    counters = {c["stage"]: c for c in json.loads((work / "build" / "stats" / "counters.json").read_text())}
    manifest = json.loads((work / "build" / "manifest.json").read_text())
    return {"n": n, "pages": planted["pages"], "planted": planted, "stage_seconds": secs, "wall_s": round(wall, 1),
            "documents": manifest["total_samples"], "dedup_dropped": counters["dedup"]["dropped"],
            "dedup_nodes_dropped": counters["dedup_nodes"]["dropped"],
            "driver_rss_mb": round(vm_hwm_mb(), 1), "driver_jvm_heap_mb": round(jvm_heap_peak_mb(spark), 1)}


def run_size(n: int, work: Path, cores: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--n", str(n), "--work", str(work), "--cores", str(cores)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"scale_interleaved: the build at n={n} failed (rc {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(n_small: int = 5_000, factor: int = 10, cores: int = 2, work: Path | None = None,
        keep: bool = False) -> dict[str, Any]:
    """Both sizes, each in a fresh subprocess; the result line as a dict."""
    work = Path(work or tempfile.mkdtemp(prefix="pmd-bench-interleaved-"))
    try:
        small = run_size(n_small, work / "small", cores)
        large = run_size(n_small * factor, work / "large", cores)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    per = {k: {"small": round(small["stage_seconds"][k] / small["n"] * 1e6, 1),
               "large": round(large["stage_seconds"][k] / large["n"] * 1e6, 1)} for k in small["stage_seconds"]}
    return {"build": "interleaved", "n_small": small["n"], "n_large": large["n"],
            "driver_rss_mb_small": small["driver_rss_mb"], "driver_rss_mb_large": large["driver_rss_mb"],
            "driver_jvm_heap_mb_small": small["driver_jvm_heap_mb"], "driver_jvm_heap_mb_large": large["driver_jvm_heap_mb"],
            "stage_seconds_small": small["stage_seconds"], "stage_seconds_large": large["stage_seconds"],
            "rss_ratio": round(large["driver_rss_mb"] / small["driver_rss_mb"], 3), "stage_us_per_record": per,
            "documents_small": small["documents"], "documents_large": large["documents"],
            "dedup_dropped_small": small["dedup_dropped"], "dedup_dropped_large": large["dedup_dropped"],
            "dedup_nodes_dropped_large": large["dedup_nodes_dropped"],
            "wall_s_small": small["wall_s"], "wall_s_large": large["wall_s"], "cores": cores,
            "loadavg": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-small", type=int, default=5_000)
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--work", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.n, Path(a.work), a.cores)), flush=True)
        return
    print(json.dumps(run(a.n_small, a.factor, a.cores, Path(a.work) if a.work else None, a.keep)), flush=True)


if __name__ == "__main__":  # img2dataset's logger process is spawned: the main guard is required
    main()
