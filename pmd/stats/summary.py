"""Summary tables of a build: per source, per stage, drop and failure reasons.

Counts come from ``stats/counters.json`` (exact, reconciled by the build); image and caption
statistics come from the per-item tables (``samples.parquet`` / ``documents.parquet``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from pmd.stats.load import INTERLEAVED, PAIRS, Build, as_build

TOTAL = "TOTAL"
SOURCE_COLUMNS = ["source", "records_in", "kept", "dropped", "failed", "images", "unique_images",
                  "mean_words", "median_words"]


def stage_table(build: Build, nodes: bool = False) -> pd.DataFrame:
    """One row per stage in pipeline order: input, kept, dropped, failed (all sources).

    ``nodes=True``: the node-level stages of an interleaved build (paragraphs and images).
    """
    rows = []
    for stage in (build.node_stage_order if nodes else build.stage_order):
        t = build.counters.total(stage)
        rows.append({"stage": stage, "input": t.input, "kept": t.kept, "dropped": t.n_dropped,
                     "failed": t.n_failed})
    return pd.DataFrame(rows, columns=["stage", "input", "kept", "dropped", "failed"])


def reasons_table(build: Build) -> pd.DataFrame:
    """Every non-zero drop reason and failure error: source, stage, outcome, reason, count.

    Record-level stages first, then node-level ones (interleaved), each in pipeline order.
    """
    order = {s: i for i, s in enumerate(build.stage_order + build.node_stage_order)}
    rows = []
    for c in build.counters:
        for outcome, counts in (("dropped", c.dropped), ("failed", c.failed)):
            for reason, n in counts.items():
                if n:
                    rows.append({"source": c.source, "stage": c.stage, "outcome": outcome, "reason": reason,
                                 "count": int(n)})
    df = pd.DataFrame(rows, columns=["source", "stage", "outcome", "reason", "count"])
    if len(df):
        df["_o"] = df["stage"].map(order)
        df = df.sort_values(["source", "_o", "outcome", "reason"]).drop(columns="_o").reset_index(drop=True)
    return df


def funnel_reasons(build: Build) -> pd.DataFrame:
    """Drops and failures summed over sources: stage, outcome, reason, count (pipeline order)."""
    df = reasons_table(build)
    if not len(df):
        return df.drop(columns="source")
    order = {s: i for i, s in enumerate(build.stage_order + build.node_stage_order)}
    out = df.groupby(["stage", "outcome", "reason"], as_index=False)["count"].sum()
    out["_o"] = out["stage"].map(order)
    return out.sort_values(["_o", "outcome", "count", "reason"], ascending=[True, True, False, True]
                           ).drop(columns="_o").reset_index(drop=True)


def download_failures(build: Build) -> pd.DataFrame:
    """Images that could not be fetched: source, outcome, reason, count from the download stage(s)."""
    df = reasons_table(build)
    df = df[df["stage"].str.startswith("download")] if len(df) else df
    return df.drop(columns="stage").sort_values(["count", "source", "reason"], ascending=[False, True, True]
                                                ).reset_index(drop=True)


def _word_stats(words: pd.Series) -> tuple[float, float]:
    words = words.dropna()
    if not len(words):
        return float("nan"), float("nan")
    return float(words.mean()), float(words.median())


def _image_columns(df: pd.DataFrame) -> tuple[str | None, str | None]:
    key = "image_key" if "image_key" in df else None
    uniq = "sha256" if "sha256" in df else key
    return key, uniq


def source_table(build: Build) -> pd.DataFrame:
    """Per source: records in, kept, dropped, failed, images, unique images, mean/median words; plus TOTAL.

    ``records_in`` is what the first stage read, ``kept`` what the last stage kept, ``dropped``
    and ``failed`` are summed over every stage (so in = kept + dropped + failed when the chain
    balances). Pairs: images = distinct image keys, unique images = distinct image sha256,
    words = caption words. Interleaved: images = image positions, unique images = distinct
    image URLs, words = words per document.
    """
    order = build.stage_order
    present = {(c.stage, c.source) for c in build.counters}
    sources = sorted({src for st, src in present if st in order})
    rows = []
    for src in sources:
        stages = [s for s in order if (s, src) in present]
        first, last = build.counters.get(stages[0], src), build.counters.get(stages[-1], src)
        rows.append({"source": src, "records_in": first.input, "kept": last.kept,
                     "dropped": sum(build.counters.get(s, src).n_dropped for s in stages),
                     "failed": sum(build.counters.get(s, src).n_failed for s in stages)})
    df = pd.DataFrame(rows, columns=SOURCE_COLUMNS[:5])
    total = {"source": TOTAL, **{c: int(df[c].sum()) for c in SOURCE_COLUMNS[1:5]}}
    items = build.items
    img = {c: [] for c in SOURCE_COLUMNS[5:]}
    if build.kind == PAIRS and len(items):
        key, uniq = _image_columns(items)
        # hash each id column once into integer codes; distinct counts per source are then cheap
        codes = {c: pd.factorize(items[c])[0] for c in {key, uniq} if c}
        frame = pd.DataFrame({f"_{c}": pd.Series(v, index=items.index).where(v >= 0)  # -1 (null) → NaN
                              for c, v in codes.items()}, index=items.index)
        if "source" in items:
            frame["source"] = items["source"]
        g = frame.groupby("source", observed=True) if "source" in items else None
        gw = items.groupby("source", observed=True) if "source" in items else None
        per = pd.DataFrame({
            "images": g[f"_{key}"].nunique() if key else g.size(),
            "unique_images": g[f"_{uniq}"].nunique() if uniq else g.size(),
            "mean_words": gw["caption_words"].mean() if "caption_words" in items else math.nan,
            "median_words": gw["caption_words"].median() if "caption_words" in items else math.nan,
        }) if g is not None else pd.DataFrame(columns=list(img))
        for src in df["source"]:
            have = src in per.index
            img["images"].append(int(per.at[src, "images"]) if have else 0)
            img["unique_images"].append(int(per.at[src, "unique_images"]) if have else 0)
            img["mean_words"].append(float(per.at[src, "mean_words"]) if have else math.nan)
            img["median_words"].append(float(per.at[src, "median_words"]) if have else math.nan)
        total["images"] = int(codes[key].max() + 1) if key else len(items)
        total["unique_images"] = int(codes[uniq].max() + 1) if uniq else len(items)
        total["mean_words"], total["median_words"] = _word_stats(items.get("caption_words", pd.Series(dtype=float)))
    elif build.kind == INTERLEAVED and len(items):
        n_img = int(items["n_images"].sum()) if "n_images" in items else 0
        n_unique = unique_document_images(build)
        mean, median = _word_stats(items["n_words"]) if "n_words" in items else (math.nan, math.nan)
        one = len(df) == 1  # documents carry no source column; attribute only when unambiguous
        for _ in df["source"]:
            img["images"].append(n_img if one else math.nan)
            img["unique_images"].append(n_unique if one else math.nan)
            img["mean_words"].append(mean if one else math.nan)
            img["median_words"].append(median if one else math.nan)
        total.update(images=n_img, unique_images=n_unique, mean_words=mean, median_words=median)
    else:
        for _ in df["source"]:
            for c in img:
                img[c].append(math.nan)
        total.update(images=0, unique_images=0, mean_words=math.nan, median_words=math.nan)
    for c, vals in img.items():
        df[c] = vals
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    return df[SOURCE_COLUMNS]


def unique_document_images(build: Build) -> int:
    """Distinct image URLs over the interleaved parquet shards (0 when there are none)."""
    import pyarrow.parquet as pq

    urls: set[str] = set()
    for p in build.shard_parquet_paths():
        if p.is_file():
            for lst in pq.read_table(p, columns=["images"]).column("images").to_pylist():
                urls.update(u for u in (lst or []) if u)
    return len(urls)


def document_table(build: Build) -> pd.DataFrame:
    """Interleaved: distribution of images, words and tokens per document (count, mean, median, p95, max)."""
    docs = build.items
    rows = []
    for col, label in (("n_images", "images per document"), ("n_words", "words per document"),
                       ("n_tokens", "tokens per document"), ("n_texts", "text nodes per document")):
        if col in docs and len(docs):
            s = docs[col].dropna()
            rows.append({"measure": label, "documents": len(s), "mean": float(s.mean()),
                         "median": float(s.median()), "p95": float(s.quantile(0.95)), "max": float(s.max())})
    return pd.DataFrame(rows, columns=["measure", "documents", "mean", "median", "p95", "max"])


def dedup_table(build: Build) -> pd.DataFrame:
    """Stages whose name contains "dedup" (documents or pairs, then nodes): input, kept, removed, reasons."""
    rows = []
    for stage in build.stage_order + build.node_stage_order:
        if "dedup" not in stage:
            continue
        t = build.counters.total(stage)
        removed = t.n_dropped + t.n_failed
        reasons = ", ".join(f"{r}={n}" for r, n in sorted((t.dropped + t.failed).items()))
        rows.append({"stage": stage, "input": t.input, "kept": t.kept, "removed": removed,
                     "removed_share": removed / t.input if t.input else 0.0, "reasons": reasons})
    return pd.DataFrame(rows, columns=["stage", "input", "kept", "removed", "removed_share", "reasons"])


def _fmt(df: pd.DataFrame) -> str:
    if not len(df):
        return "  (none)"
    return df.to_string(index=False, na_rep="-", float_format=lambda x: f"{x:.2f}")


def format_summary(build: Build | str | Path) -> str:
    """The text ``pmd stats`` prints: header, per-source table, stages, reasons (and documents).

    Takes a loaded ``Build`` or a build directory.
    """
    build = as_build(build)
    m = build.manifest
    lines = [f"Build {build.root}",
             f"kind {build.kind}, {len(m.get('shards', []))} shards, {m.get('total_samples', '?')} samples, "
             f"created {m.get('created', '?')}", ""]
    lines += ["Per source", _fmt(source_table(build)), ""]
    lines += ["Per stage (all sources)", _fmt(stage_table(build)), ""]
    if build.kind == INTERLEAVED:
        if build.node_stage_order:
            lines += ["Per node stage (paragraphs and images)", _fmt(stage_table(build, nodes=True)), ""]
        lines += ["Documents", _fmt(document_table(build)), ""]
        lines += ["Dedup", _fmt(dedup_table(build)), ""]
    reasons = reasons_table(build)
    lines += ["Dropped by reason", _fmt(reasons[reasons["outcome"] == "dropped"].drop(columns="outcome")), ""]
    lines += ["Failed by error", _fmt(reasons[reasons["outcome"] == "failed"].drop(columns="outcome"))]
    return "\n".join(lines)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):
        return _clean(v.item())
    return v


def summary_dict(build: Build | str | Path) -> dict[str, Any]:
    """The same content as ``format_summary`` as JSON-ready data (``pmd stats --json``)."""
    build = as_build(build)
    def records(df: pd.DataFrame) -> list[dict[str, Any]]:
        return [{k: _clean(v) for k, v in r.items()} for r in df.to_dict(orient="records")]

    out = {"build_dir": str(build.root), "kind": build.kind, "total_samples": build.manifest.get("total_samples"),
           "sources": records(source_table(build)), "stages": records(stage_table(build)),
           "reasons": records(reasons_table(build))}
    if build.kind == INTERLEAVED:
        out["node_stages"] = records(stage_table(build, nodes=True))
        out["documents"] = records(document_table(build))
        out["dedup"] = records(dedup_table(build))
    json.dumps(out)  # fail here, not in the caller, if something is not serialisable
    return out


def paper_comparison(build: Build) -> pd.DataFrame:
    """The build's pairs per FLAVA Table 1 row, with shares of the corpus next to the paper's."""
    from pmd.stats.paper import compare_with_paper

    s = build.items
    if "source" not in s or not len(s):
        return compare_with_paper({})
    counts = {str(k): int(n) for k, n in s["source"].value_counts().items() if n}
    words = ({str(k): float(v) for k, v in s.groupby("source", observed=True)["caption_words"].mean().items()}
             if "caption_words" in s else {})
    return compare_with_paper(counts, words)
