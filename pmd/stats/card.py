"""The dataset card (Markdown) written with every build: what is in it, under which terms, and what is missing.

``write_dataset_card(build_dir)`` is called by the PMD and interleaved builds as their last
step. It reads only JSON (manifest, counters, summary) and, when present, rejects.parquet, so
it is cheap and needs no plotting libraries. Counts come from ``stats/counters.json``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from pmd.counters import CounterBook
from pmd.errors import UserError
from pmd.shard.manifest import read_manifest
from pmd.stats.load import INTERLEAVED, KINDS, PAIRS, read_counters, stage_order
from pmd.stats.paper import FLAVA_TABLE1, paper_group

log = logging.getLogger(__name__)

CARD_NAME = "DATASET_CARD.md"

# Terms per PMD source (from each source's own documentation, summarised in
# shared/data/sources/*/README.md and docs/pmd-sources.md). Not legal advice: check the originals.
SOURCE_TERMS: dict[str, str] = {
    "coco": "COCO annotations: CC BY 4.0. Images: Flickr photos under the licence listed per image "
            "(COCO terms of use).",
    "sbu_captions": "SBU Captions (Ordonez et al., 2011): for research use. Photos belong to their Flickr owners.",
    "localized_narratives": "Localized Narratives annotations: CC BY 4.0. Images keep the terms of their "
                            "dataset (Open Images: CC BY 2.0 per image; COCO; Flickr30k: non-commercial "
                            "research; ADE20K: MIT CSAIL terms).",
    "conceptual_captions": "Conceptual Captions (Google): may be freely used for any purpose; acknowledgement "
                           "of Google LLC appreciated. Images belong to the sites they are hosted on.",
    "visual_genome": "Visual Genome: CC BY 4.0. Images come from Flickr/COCO under their own terms.",
    "wit": "WIT (Wikipedia-based Image Text): CC BY-SA 3.0. Images on Wikimedia Commons carry their own "
           "licence per file.",
    "conceptual_12m": "Conceptual 12M (Google): freely usable for any purpose with acknowledgement. Images "
                      "belong to the sites they are hosted on.",
    "red_caps": "RedCaps annotations: CC BY 4.0 (plus its TERMSOFUSE). Images belong to their Reddit posters.",
    "yfcc100m": "YFCC100M: Yahoo Webscope terms; each photo's Creative Commons licence is given in its "
                "metadata line.",
    "common_crawl": "Web pages from Common Crawl: Common Crawl terms of use; page text and images remain "
                    "the property of their authors. Images marked noai/noimageai are not fetched.",
}
_TERMS_ALIASES = {"sbu": "sbu_captions", "google/wit": "wit", "cc3m": "conceptual_captions",
                  "cc12m": "conceptual_12m", "redcaps": "red_caps", "yfcc": "yfcc100m"}

# Settings that name sizes or counts of the machinery, not of the data: left out of the filter list.
_NOT_FILTERS = ("batch_size", "target_bytes", "thread_count", "processes_count", "samples_per_shard",
                "docs_per_shard", "shuffle_partitions", "partitions", "progress_interval", "karpathy_file",
                "encode_quality", "jpeg_quality")
_FILTER_WORDS = ("filter", "dedup", "lang", "min", "max", "threshold", "ratio", "score", "size", "words",
                 "tokens", "nsfw", "robots", "noai", "blocklist", "allow", "deny")


def source_terms(source: str, kind: str = PAIRS) -> str:
    """The licence / terms line of a source (PMD source name or a WARC file for interleaved builds)."""
    if source.startswith("localized_narratives"):
        return SOURCE_TERMS["localized_narratives"]
    key = _TERMS_ALIASES.get(source, source)
    if key in SOURCE_TERMS:
        return SOURCE_TERMS[key]
    if kind == INTERLEAVED:
        return SOURCE_TERMS["common_crawl"]
    return "unknown: check the source's own terms before use"


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        out = []
        for k, v in d.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, d)]


def filter_settings(config: dict[str, Any]) -> list[tuple[str, Any]]:
    """Config entries that set filters and thresholds (keys naming filters, dedup, limits, languages)."""
    return [(k, v) for k, v in _flatten(config) if any(w in k.lower() for w in _FILTER_WORDS)
            and k.rsplit(".", 1)[-1] not in _NOT_FILTERS]


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _n(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def _reason_str(c: Counter) -> str:
    return ", ".join(f"{r} {n:,}" for r, n in sorted(c.items(), key=lambda x: (-x[1], x[0])) if n) or "-"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def _guess_kind(root: Path) -> str:
    if (root / "stats" / "documents.parquet").is_file() or list(root.glob("shards/docs-*.tar")):
        return INTERLEAVED
    return PAIRS


def _reject_batches(root: Path, columns: set[str], batch_size: int = 65_536) -> Iterator[Any]:
    """Record batches of ``columns`` of rejects.parquet, streamed: a build's rejects grow with the build
    (every dropped record is a row), so the card never holds the whole file, only one batch."""
    path = root / "stats" / "rejects.parquet"
    if not path.is_file():
        return
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    if not columns <= set(f.schema_arrow.names):
        return
    yield from f.iter_batches(columns=sorted(columns), batch_size=batch_size)


def _stage_rows(batch: Any, stage_prefix: str) -> Any:
    """The rows of ``batch`` whose ``stage`` starts with ``stage_prefix`` (a null stage matches nothing)."""
    import pyarrow.compute as pc

    return batch.filter(pc.fill_null(pc.starts_with(batch.column("stage"), stage_prefix), False))


def _example_urls(root: Path, per_reason: int = 2) -> dict[tuple[str, str], list[str]]:
    """A few failed image URLs per (source, reason) from rejects.parquet, for the known-gaps section."""
    import pyarrow.compute as pc

    out: dict[tuple[str, str], list[str]] = {}
    for batch in _reject_batches(root, {"stage", "source", "reason", "image_url"}):
        rows = _stage_rows(batch, "download")
        rows = rows.filter(pc.fill_null(pc.not_equal(rows.column("image_url"), ""), False))
        for r in rows.to_pylist():  # only the download failures reach Python
            for key in ((r["source"], r["reason"]), ("", r["reason"])):  # by source, and by reason alone
                lst = out.setdefault(key, [])
                if len(lst) < per_reason:
                    lst.append(r["image_url"])
    return out


def _reject_reasons(root: Path, stage_prefix: str) -> list[tuple[str, int]]:
    """(reason, count) of rejects.parquet rows whose stage starts with ``stage_prefix``, largest first."""
    import pyarrow.compute as pc

    c: Counter = Counter()
    for batch in _reject_batches(root, {"stage", "reason"}):
        for vc in pc.value_counts(_stage_rows(batch, stage_prefix).column("reason")).to_pylist():
            c[vc["values"]] += vc["counts"]
    return sorted(c.items(), key=lambda x: (-x[1], str(x[0])))


def _resolved_profile(config: dict[str, Any]) -> dict[str, Any]:
    """The interleaved build's filter thresholds (profile + overrides), or {} if they cannot be resolved."""
    try:
        import dataclasses

        from pmd.interleaved.config import resolve_filters

        return dataclasses.asdict(resolve_filters(config["profile"], config.get("filter_overrides") or {}))
    except Exception as e:  # noqa: BLE001 - the card must still be written; say what is missing
        log.warning("dataset card: cannot resolve filter profile %r: %s", config.get("profile"), e)
        return {}


def render_dataset_card(build_dir: str | Path, manifest: dict[str, Any] | None = None) -> str:
    """The card's Markdown for a build directory (``manifest`` given when it is not written yet)."""
    root = Path(build_dir)
    if not root.is_dir():
        raise UserError(f"build directory {root} does not exist")
    manifest = manifest if manifest is not None else read_manifest(root, missing_ok=True)
    kind = manifest.get("kind") or _guess_kind(root)
    if kind not in KINDS:
        raise UserError(f"{root}: unknown build kind {kind!r}; expected one of {', '.join(KINDS)}")
    book: CounterBook = read_counters(root, manifest)
    summary = _read_json(root / "stats" / "summary.json")
    config = manifest.get("config") or {}
    versions = manifest.get("versions") or {}
    order = stage_order(book, kind)
    sources = sorted({c.source for c in book})
    unit = "pairs" if kind == PAIRS else "documents"
    title = "PMD image-text pairs" if kind == PAIRS else "Interleaved image-text web documents"
    last = order[-1] if order else None
    final = {s: book.get(last, s).kept for s in sources} if last else {}
    total = manifest.get("total_samples", sum(final.values()))

    out = [f"# Dataset card: {title}", ""]
    out += [f"- Build directory: `{root.name}`", f"- Kind: `{kind}` (format version {manifest.get('format_version', '?')})",
            f"- Created: {manifest.get('created', 'unknown')}",
            f"- {unit.capitalize()}: {_n(total)}",
            f"- Shards: {len(manifest.get('shards', []))} "
            f"({sum(int(s.get('bytes', 0)) for s in manifest.get('shards', [])):,} bytes)"]
    wall = summary.get("wall_seconds", summary.get("wall_time_s"))
    if isinstance(wall, (int, float)):
        out.append(f"- Build wall time: {float(wall):.1f} s")
    if not manifest:
        out.append("- Note: manifest.json was not written when this card was made; shard facts are missing.")
    out.append("")
    if kind == PAIRS:
        out += ["PMD (FLAVA, arXiv 2112.04482) collects image-text pairs from public datasets. Each sample is a "
                "JPEG, its caption and a JSON record (WebDataset tar shards with a Parquet index per shard).", ""]
    else:
        out += ["Web pages from WARC files turned into documents of text and images in page order "
                "(M3W / OBELICS layout). Each sample is a JSON document with its images as separate tar members.", ""]

    out += ["## Sources and terms", ""]
    if kind == PAIRS:
        rows = [[f"`{s}`", f"{final.get(s, 0):,}", paper_group(s) or "-", source_terms(s, kind)] for s in sources]
        out += [_md_table(["source", unit, "FLAVA Table 1 row", "licence / terms"], rows) if rows
                else "No counters were recorded.", ""]
    else:
        inputs = config.get("inputs") or sorted(s for s in sources if s != "*")
        out += [f"{_n(total)} documents from {len(inputs)} WARC input(s): "
                + (", ".join(f"`{i}`" for i in inputs) or "not recorded") + ".", "",
                f"Terms: {SOURCE_TERMS['common_crawl']}", ""]
    out += ["Terms are summarised from each source's documentation; the original terms govern. Images are "
            "fetched from their hosts and remain under their owners' rights.", ""]

    out += ["## Filters and thresholds", ""]
    per_source = config.get("sources") if isinstance(config.get("sources"), dict) else {}
    per_source = {k: v for k, v in per_source.items() if isinstance(v, dict)}
    fs = filter_settings({k: v for k, v in config.items() if not (k == "sources" and per_source)})
    out += [_md_table(["setting", "value"], [[f"`{k}`", f"`{json.dumps(v)}`"] for k, v in fs]) if fs
            else "The config in manifest.json names no global filter settings.", ""]
    if kind == INTERLEAVED and config.get("profile"):
        resolved = _resolved_profile(config)
        if resolved:
            out += [f"Filter thresholds of profile `{config['profile']}` with the overrides above applied:", "",
                    _md_table(["threshold", "value"], [[f"`{k}`", f"`{json.dumps(v, default=str)}`"]
                                                       for k, v in resolved.items()]), ""]
    if per_source:
        keys = sorted({k for v in per_source.values() for k, _ in filter_settings(v)}
                      | ({"enabled"} & {k for v in per_source.values() for k in v}))

        def val(v: dict[str, Any], k: str) -> str:
            flat = dict(_flatten(v))
            return "-" if k not in flat else "any" if flat[k] is None else json.dumps(flat[k])

        rows = [[f"`{src}`"] + [val(v, k) for k in keys] for src, v in sorted(per_source.items())]
        out += ["Per-source filters:", "", _md_table(["source"] + keys, rows), ""]
    if order:
        out += ["Stages, in order: " + " → ".join(f"`{s}`" for s in order) + ".", ""]

    out += ["## Counts", "", f"Per stage ({unit} entering, kept, dropped and failed; all sources):", ""]
    rows = []
    for st in order:
        t = book.total(st)
        rows.append([st, f"{t.input:,}", f"{t.kept:,}", f"{t.n_dropped:,}", f"{t.n_failed:,}",
                     _reason_str(t.dropped), _reason_str(t.failed)])
    out += [_md_table(["stage", "in", "kept", "dropped", "failed", "drop reasons", "failure errors"], rows), ""]
    node_order = stage_order(book, kind, nodes=True)
    if node_order:
        rows = []
        for st in node_order:
            t = book.total(st)
            rows.append([st, f"{t.input:,}", f"{t.kept:,}", f"{t.n_dropped:,}", f"{t.n_failed:,}",
                         _reason_str(t.dropped), _reason_str(t.failed)])
        out += ["Node-level stages (paragraphs and images inside kept documents):", "",
                _md_table(["stage", "in", "kept", "dropped", "failed", "drop reasons", "failure errors"], rows), ""]
    present = {(c.stage, c.source) for c in book}
    rows = []
    for s in sources:
        stages = [st for st in order if (st, s) in present]
        if not stages:
            continue
        cells = [f"`{s}`", f"{book.get(stages[0], s).input:,}"]
        cells += [f"{book.get(st, s).kept:,}" if (st, s) in present else "-" for st in order]
        drops = Counter({f"{st}: {r}": n for st in stages for r, n in book.get(st, s).dropped.items()})
        fails = Counter({f"{st}: {e}": n for st in stages for e, n in book.get(st, s).failed.items()})
        rows.append(cells + [_reason_str(drops), _reason_str(fails)])
    if len(sources) > 1 or kind == PAIRS:
        out += [f"Per source: {unit} read, then kept after each stage, and what was dropped or failed where:", "",
                _md_table(["source", "in"] + order + ["dropped (stage: reason count)", "failed (stage: error count)"],
                          rows), ""]
    if kind == PAIRS:
        rows = [[r.group, f"{r.pairs_m:.1f}M", f"{r.avg_words:.1f}",
                 f"{sum(n for s, n in final.items() if paper_group(s) == r.group):,}"] for r in FLAVA_TABLE1]
        out += ["Compared with FLAVA Table 1 (70M pairs, 68M unique images, mean 12.1 words):", "",
                _md_table(["Table 1 row", "paper pairs", "paper mean words", "this build"], rows), ""]

    out += ["## Known gaps", ""]
    dl = [st for st in order + stage_order(book, kind, nodes=True) if st.startswith("download")]
    gap_rows = []
    examples = _example_urls(root)
    for s in sources:
        for st in dl:
            c = book.get(st, s)
            for outcome, counts in (("failed", c.failed), ("refused/dropped", c.dropped)):
                for reason, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])):
                    if n:
                        ex = ", ".join(f"<{u}>" for u in examples.get((s, reason)) or examples.get(("", reason), []))
                        gap_rows.append([f"`{s}`", st, outcome, reason, f"{n:,}", ex or "-"])
    if gap_rows:
        def missing(stages: list[str]) -> tuple[int, int]:
            n = sum(book.get(st, s).n_failed + book.get(st, s).n_dropped for s in sources for st in stages)
            return n, sum(book.get(st, s).input for s in sources for st in stages)

        doc_dl = [st for st in dl if st in order]
        node_dl = [st for st in dl if st not in order]
        if kind == PAIRS:
            n, tried = missing(doc_dl)
            lead = (f"{n:,} of {tried:,} pairs that reached the download stage have no image (dead URLs, "
                    "refusals, bad images). They are listed in `stats/rejects.parquet` and can be retried with "
                    "`pmd retry-failed`.")
        else:
            n, tried = missing(doc_dl)
            lead = f"{n:,} of {tried:,} documents that reached the download stage were dropped there"
            if node_dl:
                ni, ti = missing(node_dl)
                lead += f"; {ni:,} of {ti:,} images in kept documents could not be used"
            lead += ". Every failed image is a row of `stats/rejects.parquet`."
        out += [lead, "", _md_table(["source", "stage", "outcome", "reason", "count", "examples"], gap_rows), ""]
    else:
        out += ["No download failures were recorded.", ""]
    if kind == INTERLEAVED:
        img_gaps = _reject_reasons(root, "download")
        if img_gaps:
            out += ["Image-level rejects at the download stage (from rejects.parquet):", "",
                    _md_table(["reason", "count"], [[r, f"{n:,}"] for r, n in img_gaps]), ""]
    other = [(c.source, c.stage, e, n) for c in book for e, n in c.failed.items()
             if n and not c.stage.startswith("download")]
    if other:
        out += ["Records that failed outside the download stage (bad input, kept in rejects.parquet):", "",
                _md_table(["source", "stage", "error", "count"], [[f"`{a}`", b, e, f"{n:,}"] for a, b, e, n in other]),
                ""]
    if kind == PAIRS:
        out += ["Counts are far below FLAVA's: source URLs die over time and this build covers what it was "
                "given.", ""]

    out += ["## Config", "", "```json", json.dumps(config, indent=2, sort_keys=True, default=str), "```", ""]
    out += ["## Versions", ""]
    out += [_md_table(["package", "version"], [[k, v] for k, v in sorted(versions.items())]) if versions
            else "Not recorded.", ""]
    out += ["Generated by `pmd.stats.card.write_dataset_card`; numbers come from `stats/counters.json`.", ""]
    return "\n".join(out)


def write_dataset_card(build_dir: str | Path, manifest: dict[str, Any] | None = None) -> Path:
    """Write ``BUILD_DIR/DATASET_CARD.md`` atomically (temp file + rename) and return its path.

    Works for both build kinds. Pass ``manifest`` when the card is written before manifest.json.
    """
    root = Path(build_dir)
    text = render_dataset_card(root, manifest)
    fd, tmp = tempfile.mkstemp(prefix=".card-", suffix=".tmp", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, root / CARD_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return root / CARD_NAME
