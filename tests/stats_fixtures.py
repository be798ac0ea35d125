"""Small synthetic build directories in the ARCHITECTURE.md layout, for the stats unit tests.

They are independent of the real builds (which need Spark and the embedded sample) so that the
stats code can be tested quickly and against exactly known numbers. ``EXPECTED_*`` hold the
facts the tests check.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pmd.counters import CounterBook, StageCounters
from pmd.ids import stable_id
from pmd.shard import write_manifest, write_tar_shard

# (source, caption, original size, lang_score); the second and third coco pairs share one image.
_PAIRS = [
    ("coco", "A man riding a red moped on a dirt road.", (640, 480), 0.98),
    ("coco", "Two dogs play in the snow near a fence.", (500, 375), 0.97),
    ("coco", "Dogs playing outside in snow.", (500, 375), 0.95),
    ("sbu_captions", "Man sits in a rusted car buried in the sand", (800, 600), 0.91),
    ("conceptual_captions", "a very typical bus station", (1024, 683), 0.88),
    ("conceptual_captions", "actor attends the premiere of the film", (683, 1024), 0.93),
    ("localized_narratives__coco", "In this image there are cows eating grass.", (640, 427), 0.99),
    ("visual_genome", "the clock is green", (82, 139), 0.72),
]

# per source: ingest (in, dropped, failed), filter drops, dedup drops, download failures
_FUNNEL = {
    "coco": {"ingest": ({}, {}), "filter": ({"too_short": 1}, {}), "dedup": ({"duplicate_text": 1}, {}),
             "download": ({}, {"http_404": 1})},
    "sbu_captions": {"ingest": ({}, {"bad_json": 1}), "filter": ({"lang_not_en": 2}, {}), "dedup": ({}, {}),
                     "download": ({}, {"http_404": 2, "timeout": 1})},
    "conceptual_captions": {"ingest": ({"empty_caption": 1}, {}), "filter": ({}, {}), "dedup": ({}, {}),
                            "download": ({"noai": 1}, {"not_an_image": 1})},
    "localized_narratives__coco": {"ingest": ({"karpathy_val_test": 2}, {}), "filter": ({}, {}),
                                   "dedup": ({}, {}), "download": ({}, {})},
    "visual_genome": {"ingest": ({}, {}), "filter": ({"too_short": 1}, {}), "dedup": ({}, {}),
                      "download": ({}, {})},
}
STAGES = ["ingest", "filter", "dedup", "download", "dedup_images", "shard"]

CONFIG = {
    "sources": ["coco", "sbu_captions", "conceptual_captions", "localized_narratives__coco", "visual_genome"],
    "filter": {"lang": "en", "min_lang_score": 0.5, "min_words": 2, "max_words": 128},
    "dedup": {"text": True, "images": "sha256"},
    "download": {"image_size": 256, "timeout_s": 10, "retries": 1},
    "shard": {"samples_per_shard": 5},
}


def _jpeg(w: int, h: int, colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _scaled(w: int, h: int, short: int = 64) -> tuple[int, int]:
    s = short / min(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def _book() -> CounterBook:
    kept_final = {}
    for src, *_ in _PAIRS:
        kept_final[src] = kept_final.get(src, 0) + 1
    book = CounterBook()
    for src, funnel in _FUNNEL.items():
        # walk backwards from the final count: each stage's input = kept + drops + failures
        kept = kept_final[src]
        for stage in reversed(STAGES):
            dropped, failed = funnel.get(stage, ({}, {}))
            c = StageCounters(stage, src)
            c.add_kept(kept)
            for r, n in dropped.items():
                c.add_dropped(r, n)
            for e, n in failed.items():
                c.add_failed(e, n)
            c.add_input(c.n_out)
            book.add(c)
            kept = c.input
    book.check_reconciled()
    for a, b in zip(STAGES, STAGES[1:]):
        book.check_chain(a, b)
    return book


def _rejects(book: CounterBook) -> pa.Table:
    rows = []
    for c in book:
        for outcome, counts in (("dropped", c.dropped), ("failed", c.failed)):
            for reason, n in sorted(counts.items()):
                for i in range(n):
                    rows.append({"stage": c.stage, "source": c.source, "outcome": outcome, "reason": reason,
                                 "message": f"{reason} #{i}", "input_file": f"{c.source}/data.txt",
                                 "input_line": i + 1,
                                 "image_url": f"http://127.0.0.1:8765/{c.source}/{i}.jpg"
                                 if c.stage == "download" else None})
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("stage", pa.string()), ("source", pa.string()), ("outcome", pa.string()), ("reason", pa.string()),
        ("message", pa.string()), ("input_file", pa.string()), ("input_line", pa.int64()),
        ("image_url", pa.string())]))


def make_pmd_build(root: Path, samples_per_shard: int = 5) -> Path:
    """Write a small ``pmd-pairs`` build (2 shards, 8 pairs, 7 unique images) under ``root``."""
    root = Path(root)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    (root / "stats").mkdir(parents=True, exist_ok=True)
    samples, image_of = [], {}
    for i, (src, text, (ow, oh), score) in enumerate(_PAIRS):
        ikey = image_of.setdefault((ow, oh, src), stable_id("img", src, ow, oh))
        w, h = _scaled(ow, oh)
        jpg = _jpeg(w, h, (40 * i % 255, 120, 200 - 20 * i))
        pid = stable_id("pair", src, ikey, text)
        samples.append({"key": pid, "id": pid, "source": src, "text": text, "caption_words": len(text.split()),
                        "lang": "en", "lang_score": score, "width": w, "height": h, "original_width": ow,
                        "original_height": oh, "image_key": ikey,
                        "sha256": stable_id("sha", ikey, length=64), "image_url": f"http://x/{ikey}.jpg",
                        "crop": None, "meta": "{}", "_jpg": jpg})
    shards = []
    for s in range(0, len(samples), samples_per_shard):
        idx = s // samples_per_shard
        part = samples[s:s + samples_per_shard]
        name = f"shards/pairs-{idx:06d}"
        info = write_tar_shard(root / f"{name}.tar", [
            (r["key"], {"jpg": r["_jpg"], "txt": r["text"],
                        "json": json.dumps({k: v for k, v in r.items() if k not in ("_jpg", "key", "caption_words")})})
            for r in part], ext_order=("jpg", "txt", "json"))
        rows = [{**{k: v for k, v in r.items() if k not in ("_jpg", "caption_words")}, "shard": f"{name}.tar"}
                for r in part]
        pq.write_table(pa.Table.from_pylist(rows), root / f"{name}.parquet")
        for r in part:
            r["shard"] = f"{name}.tar"
        shards.append({**info.to_dict(), "parquet": str(root / f"{name}.parquet")})
    cols = ["id", "source", "text", "caption_words", "lang", "lang_score", "width", "height", "original_width",
            "original_height", "image_key", "sha256", "shard"]
    pq.write_table(pa.Table.from_pylist([{c: r[c] for c in cols} for r in samples]),
                   root / "stats" / "samples.parquet")
    book = _book()
    (root / "stats" / "counters.json").write_text(book.to_json(indent=1))
    pq.write_table(_rejects(book), root / "stats" / "rejects.parquet")
    per_source = {}
    for c in book:
        if c.stage == "shard":
            per_source[c.source] = {"samples": c.kept}
    (root / "stats" / "summary.json").write_text(json.dumps({"sources": per_source, "wall_seconds": 12.5}))
    write_manifest(root, "pmd-pairs", shards, CONFIG, book)
    return root


# ---------------------------------------------------------------- interleaved

_DOCS = [
    ("http://a.example/one", ["Hello world, this is page one.", None, "It has two images.", None],
     [None, "http://img.example/1.jpg", None, "http://img.example/2.jpg"]),
    ("http://b.example/two", [None, "A second page with a single picture and some words."],
     ["http://img.example/3.jpg", None]),
    ("http://a.example/three", ["Text only page, no pictures at all here."], [None]),
]
IL_STAGES = ["read", "extract", "filter", "dedup", "download", "shard"]
IL_NODE_STAGES = {  # node-level (paragraphs and images): input, dropped
    "filter_nodes": (20, {"short_paragraph": 4, "image_too_small": 2}),
    "dedup_nodes": (14, {"repeated_paragraph": 1}),
    "download_nodes": (5, {"download_http_404": 2}),
}
IL_CONFIG = {"inputs": ["warc/sample.warc.gz"], "filter": {"min_words": 5, "max_images": 30, "min_lang_score": 0.5},
             "dedup": {"url": True, "minhash_threshold": 0.8}, "download": {"image_size": 256}}


def _il_book() -> CounterBook:
    spec = {  # stage: (dropped, failed) for the documents (source "*", as the interleaved build counts)
        "read": ({"not_html": 2}, {"bad_warc_record": 1}),
        "extract": ({}, {}),
        "filter": ({"too_few_words": 3, "no_english": 1}, {}),
        "dedup": ({"duplicate_url": 2, "near_duplicate": 1}, {}),
        "download": ({"all_images_failed": 1}, {}),
        "shard": ({}, {}),
    }
    book, kept = CounterBook(), len(_DOCS)
    for stage in reversed(IL_STAGES):
        c = StageCounters(stage)
        c.add_kept(kept)
        for r, n in spec[stage][0].items():
            c.add_dropped(r, n)
        for e, n in spec[stage][1].items():
            c.add_failed(e, n)
        c.add_input(c.n_out)
        book.add(c)
        kept = c.input
    for stage, (n_in, dropped) in IL_NODE_STAGES.items():
        c = StageCounters(stage)
        c.add_input(n_in)
        for r, n in dropped.items():
            c.add_dropped(r, n)
        c.add_kept(n_in - c.n_dropped)
        book.add(c)
    book.check_reconciled()
    return book


def make_interleaved_build(root: Path) -> Path:
    """Write a small ``interleaved-docs`` build (1 shard, 3 documents, 3 images) under ``root``."""
    root = Path(root)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    (root / "stats").mkdir(parents=True, exist_ok=True)
    rows, docs, samples = [], [], []
    name = "shards/docs-000000"
    for d, (url, texts, images) in enumerate(_DOCS):
        key = stable_id("doc", url)
        members, names, sample = [], [], {}
        for i, im in enumerate(images):
            if im is None:
                names.append(None)
                continue
            member = f"{len(members):03d}.jpg"
            names.append(member)
            members.append(member)
            sample[member] = _jpeg(48, 32, (200, 30 * i, 90))
        js = {"id": key, "url": url, "texts": texts, "images": names,
              "metadata": [None] * len(texts), "general_metadata": {"url": url, "warc_file": "sample.warc.gz"}}
        samples.append((key, {**sample, "json": json.dumps(js)}))
        rows.append({"id": key, "url": url, "texts": texts, "images": images, "metadata": "[]",
                     "general_metadata": json.dumps(js["general_metadata"]),
                     "image_members": [f"{key}.{m}" for m in members]})
        words = sum(len(t.split()) for t in texts if t)
        docs.append({"id": key, "url": url, "domain": url.split("/")[2], "n_texts": sum(t is not None for t in texts),
                     "n_images": len(members), "n_words": words, "n_tokens": words + 3, "lang_score": 0.9 - d / 10})
    info = write_tar_shard(root / f"{name}.tar", samples, ext_order=("json",))
    pq.write_table(pa.Table.from_pylist(rows), root / f"{name}.parquet")
    pq.write_table(pa.Table.from_pylist(docs), root / "stats" / "documents.parquet")
    book = _il_book()
    (root / "stats" / "counters.json").write_text(book.to_json(indent=1))
    pq.write_table(_rejects(book), root / "stats" / "rejects.parquet")
    write_manifest(root, "interleaved-docs", [{**info.to_dict(), "parquet": str(root / f"{name}.parquet")}],
                   IL_CONFIG, book)
    return root


# ---------------------------------------------------------------- loaded builds (module-scoped fixtures)

@pytest.fixture(scope="module")
def pmd_build(tmp_path_factory):
    """``make_pmd_build`` loaded by ``pmd.stats.load`` (import this name into a test module to use it)."""
    from pmd.stats import load

    return load.load_build(make_pmd_build(tmp_path_factory.mktemp("pmd")))


@pytest.fixture(scope="module")
def il_build(tmp_path_factory):
    """``make_interleaved_build`` loaded by ``pmd.stats.load``."""
    from pmd.stats import load

    return load.load_build(make_interleaved_build(tmp_path_factory.mktemp("il")))
