"""Plots of a build (matplotlib, no pyplot: figures render with Agg and never open windows).

Every function takes a ``Build``, returns a ``Figure`` and, given ``save=PATH``, writes a PNG.
Empty inputs give a figure that says so instead of failing, so a small or odd build still
produces every plot.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.figure import Figure

from pmd.stats.load import PAIRS, Build, as_build, decode_image, iter_shard_samples
from pmd.stats.summary import dedup_table, funnel_reasons, paper_comparison, reasons_table, stage_table

DPI = 100
MAX_SCATTER = 20_000  # points drawn in a scatter plot (a fixed random sample beyond this)
_COLOURS = {"build": "#1f77b4", "paper": "#bbbbbb", "dropped": "#ff7f0e", "failed": "#d62728"}


def _finish(fig: Figure, save: str | Path | None) -> Figure:
    # leave room for a figure title above the subplot titles
    fig.tight_layout(rect=(0, 0, 1, 0.96) if fig.get_suptitle() else (0, 0, 1, 1))
    if save is not None:
        save = Path(save)
        save.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save, format="png", dpi=DPI)
    return fig


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this build", ha="center", va="center", transform=ax.transAxes,
            fontsize=11, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _int_axis(axis) -> None:
    """Counts are whole numbers: no 2.5-record ticks."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _plain_log(axis) -> None:
    """Log axis labelled 100, 200, 500 rather than 10^2."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (for IPython.display.Image)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


# ---------------------------------------------------------------- both kinds


def plot_filter_funnel(build: Build, save: str | Path | None = None) -> Figure:
    """Records entering each stage (the funnel) and what each stage dropped or failed, by reason."""
    stages = stage_table(build)
    reasons = funnel_reasons(build)
    unit = "pairs" if build.kind == PAIRS else "documents"
    n_reasons = max(len(reasons), 1)
    fig = Figure(figsize=(12, max(4.0, 0.32 * n_reasons + 1.5)))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    if len(stages):
        y = np.arange(len(stages))
        ax1.barh(y, stages["input"], color=_COLOURS["paper"], label="entered stage")
        ax1.barh(y, stages["kept"], color=_COLOURS["build"], label="kept by stage")
        for yi, (i, k) in enumerate(zip(stages["input"], stages["kept"])):
            ax1.text(i, yi, f" {k:,}/{i:,}", va="center", fontsize=8)
        ax1.set_yticks(y, stages["stage"])
        ax1.invert_yaxis()
        ax1.set_xlim(0, max(stages["input"].max(), 1) * 1.35)
        _int_axis(ax1.xaxis)
        ax1.legend(loc="lower right", fontsize=8)
    else:
        _empty(ax1, "counters")
    ax1.set_xlabel(f"records ({unit})")
    ax1.set_title("Filter funnel: records per stage")
    if len(reasons):
        labels = [f"{s}: {r}" for s, r in zip(reasons["stage"], reasons["reason"])]
        y = np.arange(len(reasons))
        ax2.barh(y, reasons["count"], color=[_COLOURS[o] for o in reasons["outcome"]])
        ax2.set_yticks(y, labels, fontsize=8)
        ax2.invert_yaxis()
        for yi, n in enumerate(reasons["count"]):
            ax2.text(n, yi, f" {n:,}", va="center", fontsize=8)
        ax2.set_xlim(0, reasons["count"].max() * 1.2)
        _int_axis(ax2.xaxis)
        from matplotlib.patches import Patch

        ax2.legend(handles=[Patch(color=_COLOURS["dropped"], label="dropped (reason)"),
                            Patch(color=_COLOURS["failed"], label="failed (error)")], loc="lower right", fontsize=8)
    else:
        _empty(ax2, "drops or failures")
    nodes = len(reasons) and reasons["stage"].str.endswith("_nodes").any()
    ax2.set_xlabel(f"{unit} (*_nodes stages: paragraphs or images)" if nodes else unit)
    ax2.set_title("Drops and failures by stage and reason")
    return _finish(fig, save)


def plot_download_failures(build: Build, save: str | Path | None = None) -> Figure:
    """Images that could not be fetched, by reason, stacked by source (the build's dead URLs)."""
    df = reasons_table(build)
    df = df[df["stage"].str.startswith("download")] if len(df) else df
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    if len(df):
        pivot = df.pivot_table(index="reason", columns="source", values="count", aggfunc="sum", fill_value=0)
        pivot = pivot.loc[pivot.sum(axis=1).sort_values(ascending=True).index]
        left = np.zeros(len(pivot))
        cmap = _cmap(len(pivot.columns))
        for i, src in enumerate(pivot.columns):
            ax.barh(pivot.index, pivot[src], left=left, label=src, color=cmap[i])
            left += pivot[src].to_numpy()
        for yi, n in enumerate(left):
            ax.text(n, yi, f" {int(n):,}", va="center", fontsize=8)
        ax.set_xlim(0, left.max() * 1.2)
        _int_axis(ax.xaxis)
        ax.legend(fontsize=8, loc="lower right")
    else:
        _empty(ax, "download failures")
    ax.set_xlabel("images not downloaded")
    ax.set_ylabel("reason")
    ax.set_title("Download failures and refusals by reason")
    return _finish(fig, save)


def _horizontal() -> dict:
    """boxplot's horizontal switch: ``orientation`` since matplotlib 3.10, ``vert`` before."""
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _cmap(n: int) -> list:
    from matplotlib import colormaps

    cm = colormaps["tab10" if n <= 10 else "tab20"]
    return [cm(i % cm.N) for i in range(max(n, 1))]


# ---------------------------------------------------------------- pairs


def plot_paper_comparison(build: Build, save: str | Path | None = None) -> Figure:
    """Each Table 1 group's share of the build's pairs next to its share of FLAVA's 70M."""
    cmp = paper_comparison(build)
    fig = Figure(figsize=(10, 5))
    ax = fig.subplots()
    y = np.arange(len(cmp))
    ax.barh(y - 0.2, 100 * cmp["share"], height=0.4, color=_COLOURS["build"], label="this build")
    ax.barh(y + 0.2, 100 * cmp["paper_share"].fillna(0), height=0.4, color=_COLOURS["paper"],
            label="FLAVA Table 1 (70M pairs)")
    for yi, (n, p) in enumerate(zip(cmp["pairs"], cmp["paper_pairs_m"])):
        ax.text(100 * cmp["share"].iloc[yi], yi - 0.2, f" {n:,} pairs", va="center", fontsize=8)
        if not math.isnan(p):
            ax.text(100 * cmp["paper_share"].iloc[yi], yi + 0.2, f" {p:.1f}M", va="center", fontsize=8,
                    color="#555555")
    ax.set_yticks(y, cmp["group"])
    ax.invert_yaxis()
    top = max(100 * cmp["share"].max(), 100 * cmp["paper_share"].fillna(0).max(), 1)
    ax.set_xlim(0, top * 1.3)
    ax.set_xlabel("share of corpus pairs (%)")
    ax.set_title("Pairs per source as a share of the corpus: this build vs FLAVA Table 1")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)
    return _finish(fig, save)


def _by_source(s, col: str) -> dict:
    """{source: non-null values of ``col``} in one groupby pass (empty when either column is missing)."""
    if not len(s) or col not in s or "source" not in s:
        return {}
    return {str(k): v.dropna() for k, v in s.groupby("source", observed=True)[col] if v.notna().any()}


def _grid(n: int, cols: int = 3) -> tuple[int, int]:
    cols = min(cols, max(n, 1))
    return math.ceil(max(n, 1) / cols), cols


def plot_caption_lengths(build: Build, save: str | Path | None = None) -> Figure:
    """Histogram of caption length (words) per source on one shared x axis, with each source's mean."""
    s = build.items
    by_src = _by_source(s, "caption_words")
    groups = sorted(by_src)
    rows, cols = _grid(len(groups))
    fig = Figure(figsize=(4 * cols, 2.5 * rows + 0.8))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=True)).ravel()
    if not groups:
        _empty(axes[0], "captions")
    top = max((float(w.quantile(0.99)) for w in by_src.values()), default=2.0)
    bins = np.arange(0, int(top) + 2) - 0.5 if top < 60 else np.linspace(0, top, 41)
    for i, (ax, src) in enumerate(zip(axes, groups)):
        w = by_src[src]
        ax.hist(w.clip(upper=bins[-1]), bins=bins, color=_COLOURS["build"], edgecolor="white")
        ax.axvline(w.mean(), color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{src} (n={len(w):,}, mean {w.mean():.1f})", fontsize=9)
        if i % cols == 0:
            ax.set_ylabel("pairs")
        _int_axis(ax.yaxis)
    for i, ax in enumerate(axes):
        # x labels on the lowest visible plot of each column only (the axis is shared)
        if i < len(groups) and i + cols >= len(groups):
            ax.set_xlabel("caption length (words)")
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[len(groups):] if groups else axes[1:]:
        ax.set_visible(False)
    fig.suptitle("Caption word-length distribution per source (dashed: mean; longest 1% in the last bin)")
    return _finish(fig, save)


def plot_lang_scores(build: Build, save: str | Path | None = None) -> Figure:
    """Language-ID score of kept items: histogram over all, and a box per source (pairs)."""
    s = build.items
    col = "lang_score"
    unit = "pairs" if build.kind == PAIRS else "documents"
    has = len(s) and col in s and s[col].notna().any()
    per_source = bool(has and "source" in s)
    fig = Figure(figsize=(12 if per_source else 8, max(4.5, 0.3 * s["source"].nunique() + 1.5) if per_source else 4.2))
    axes = fig.subplots(1, 2 if per_source else 1, squeeze=False).ravel()
    ax = axes[0]
    if has:
        v = s[col].dropna()
        ax.hist(v, bins=np.linspace(0, 1, 41), color=_COLOURS["build"], edgecolor="white")
        ax.axvline(v.median(), color="black", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1)
        _int_axis(ax.yaxis)
        ax.set_title(f"All kept {unit} (n={len(v):,}, median {v.median():.2f})")
    else:
        _empty(ax, "language scores")
        ax.set_title(f"All kept {unit}")
    ax.set_xlabel("language-ID score (probability of English)")
    ax.set_ylabel(unit)
    if per_source:
        ax2 = axes[1]
        by_src = _by_source(s, col)
        srcs = sorted(by_src)
        data = [by_src[src].to_numpy() for src in srcs]
        ax2.boxplot(data, widths=0.6, showfliers=True, flierprops={"markersize": 3}, **_horizontal())
        ax2.set_yticks(np.arange(1, len(srcs) + 1), [f"{x} (n={len(d):,})" for x, d in zip(srcs, data)], fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xlim(0, 1)
        ax2.set_xlabel("language-ID score (probability of English)")
        ax2.set_title("Per source (box: quartiles, line: median)")
    fig.suptitle(f"Language score distribution of kept {unit} (dashed: median)")
    return _finish(fig, save)


def plot_image_sizes(build: Build, save: str | Path | None = None) -> Figure:
    """Original image width × height (px) and aspect ratio (width / height), log scale; one point per image."""
    s = build.items
    if len(s) and "image_key" in s:
        s = s.drop_duplicates("image_key")  # several captions of one image count once
    fig = Figure(figsize=(13, 4.8))
    ax1, ax2 = fig.subplots(1, 2)
    w_col = "original_width" if "original_width" in s else "width"
    h_col = "original_height" if "original_height" in s else "height"
    if len(s) and w_col in s and h_col in s and s[w_col].notna().any():
        d = s[[w_col, h_col, "source"]].dropna() if "source" in s else s[[w_col, h_col]].dropna()
        d = d[(d[w_col] > 0) & (d[h_col] > 0)]
        srcs = sorted(str(x) for x in d["source"].unique()) if "source" in d else [None]
        cm = _cmap(len(srcs))
        # a scatter of millions of points is slow and unreadable: plot a fixed sample, count them all
        pts = d.sample(MAX_SCATTER, random_state=0) if len(d) > MAX_SCATTER else d
        for i, src in enumerate(srcs):
            part = pts if src is None else pts[pts["source"].astype(str) == src]
            ax1.scatter(part[w_col], part[h_col], s=10, alpha=0.6, color=cm[i], label=src)
        ax1.set_xscale("log")
        ax1.set_yscale("log")
        _plain_log(ax1.xaxis)
        _plain_log(ax1.yaxis)
        if srcs != [None]:
            ax1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=1.5, frameon=False)
        aspect = (d[w_col] / d[h_col]).to_numpy(dtype=float)
        bins = np.logspace(np.log10(max(aspect.min(), 0.05) * 0.9), np.log10(min(aspect.max(), 20) * 1.1), 30)
        ax2.hist(aspect, bins=bins, color=_COLOURS["build"])
        ax2.set_xscale("log")
        _plain_log(ax2.xaxis)
        from matplotlib.ticker import FixedLocator

        ticks = [t for t in (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 8) if bins[0] <= t <= bins[-1]]
        ax2.xaxis.set_major_locator(FixedLocator(ticks or [1]))
        _int_axis(ax2.yaxis)
        ax2.axvline(1.0, color="black", linestyle="--", linewidth=1)
    else:
        _empty(ax1, "image sizes")
        _empty(ax2, "image sizes")
    ax1.set_xlabel("original width (px)")
    ax1.set_ylabel("original height (px)")
    shown = f", {MAX_SCATTER:,} shown" if len(s) > MAX_SCATTER else ""
    ax1.set_title(f"Original image size ({len(s):,} distinct images{shown})")
    ax2.set_xlabel("aspect ratio (width / height, log scale; dashed: square)")
    ax2.set_ylabel("images")
    ax2.set_title("Aspect ratio of the original images")
    return _finish(fig, save)


def plot_sample_grid(build: Build, n: int = 12, cols: int = 4, save: str | Path | None = None,
                     scan: int = 500) -> Figure:
    """A grid of images from the tar shards with their captions, spread over the sources."""
    pool = list(iter_shard_samples(build, limit=scan))
    by_src: dict[str, list[dict]] = {}
    for smp in pool:
        by_src.setdefault(smp["json"].get("source", "?"), []).append(smp)
    chosen: list[dict] = []
    while len(chosen) < n and any(by_src.values()):
        for src in sorted(by_src):
            if by_src[src] and len(chosen) < n:
                chosen.append(by_src[src].pop(0))
    rows, cols = _grid(len(chosen), cols)
    fig = Figure(figsize=(3.2 * cols, 3.6 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    if not chosen:
        _empty(axes[0], "samples in the shards")
    for ax, smp in zip(axes, chosen):
        ax.set_xticks([])
        ax.set_yticks([])
        if smp["image"]:
            try:
                ax.imshow(np.asarray(decode_image(smp["image"]).convert("RGB")))
            except Exception as e:  # noqa: BLE001 - a bad member should show, not stop the grid
                ax.text(0.5, 0.5, f"unreadable image\n{type(e).__name__}", ha="center", va="center",
                        transform=ax.transAxes)
        caption = textwrap.shorten(smp["text"], 90, placeholder=" …")
        ax.set_title(f"[{smp['json'].get('source', '?')}]\n" + "\n".join(textwrap.wrap(caption, 34)), fontsize=8)
    for ax in axes[len(chosen):] if chosen else axes[1:]:
        ax.set_visible(False)
    fig.suptitle("Sample pairs from the shards (image as stored, caption)")
    return _finish(fig, save)


# ---------------------------------------------------------------- interleaved


def _doc_hist(build: Build, col: str, xlabel: str, title: str, save, integer: bool) -> Figure:
    d = build.items
    fig = Figure(figsize=(8, 4.2))
    ax = fig.subplots()
    if len(d) and col in d:
        v = d[col].dropna().to_numpy()
        small = integer and v.max() < 60
        bins = np.arange(0, int(v.max()) + 2) - 0.5 if small else 30
        ax.hist(v, bins=bins, color=_COLOURS["build"], edgecolor="white")
        if small:
            _int_axis(ax.xaxis)
        ax.axvline(v.mean(), color="black", linestyle="--", linewidth=1)
        _int_axis(ax.yaxis)
        ax.set_title(f"{title} (n={len(v):,} documents, mean {v.mean():.1f}, median {np.median(v):.0f})")
    else:
        _empty(ax, col)
        ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("documents")
    return _finish(fig, save)


def plot_images_per_document(build: Build, save: str | Path | None = None) -> Figure:
    return _doc_hist(build, "n_images", "images per document", "Images per document", save, True)


def plot_tokens_per_document(build: Build, save: str | Path | None = None) -> Figure:
    return _doc_hist(build, "n_tokens", "tokens per document (tokenizer tokens)", "Tokens per document", save, False)


def plot_dedup(build: Build, save: str | Path | None = None) -> Figure:
    """What each dedup stage removed, as a share of what entered it, stacked by reason.

    Shares rather than counts, so that document-level and node-level stages share one axis.
    """
    t = dedup_table(build)
    unit = "pairs" if build.kind == PAIRS else "documents"
    fig = Figure(figsize=(9, max(3.2, 0.8 * len(t) + 1.8)))
    ax = fig.subplots()
    if len(t):
        y = np.arange(len(t))
        reasons = sorted({r for st in t["stage"] for r in (build.counters.total(st).dropped
                                                          + build.counters.total(st).failed)})
        cm = _cmap(len(reasons))
        left = np.zeros(len(t))
        for i, reason in enumerate(reasons):
            vals = np.array([100 * (build.counters.total(st).dropped + build.counters.total(st).failed)[reason]
                             / max(build.counters.total(st).input, 1) for st in t["stage"]])
            ax.barh(y, vals, left=left, color=cm[i], label=reason)
            left += vals
        for yi, (removed, n_in) in enumerate(zip(t["removed"], t["input"])):
            ax.text(left[yi], yi, f" {removed:,} of {n_in:,} removed", va="center", fontsize=9)
        what = {st: ("paragraphs/images" if st.endswith("_nodes") else unit) for st in t["stage"]}
        ax.set_yticks(y, [f"{st}\n({what[st]})" for st in t["stage"]])
        ax.invert_yaxis()
        ax.set_xlim(0, max(left.max() * 1.5, 1))
        if reasons:
            ax.legend(fontsize=8, loc="lower right", title="reason", title_fontsize=8)
    else:
        _empty(ax, "dedup stages")
    ax.set_xlabel("removed (% of records entering the stage)")
    ax.set_title("Dedup effects: share removed per dedup stage, by reason")
    return _finish(fig, save)


# ---------------------------------------------------------------- all


PAIR_PLOTS: dict[str, Callable[..., Figure]] = {
    "paper_comparison": plot_paper_comparison,
    "filter_funnel": plot_filter_funnel,
    "caption_lengths": plot_caption_lengths,
    "lang_scores": plot_lang_scores,
    "image_sizes": plot_image_sizes,
    "download_failures": plot_download_failures,
    "sample_grid": plot_sample_grid,
}
INTERLEAVED_PLOTS: dict[str, Callable[..., Figure]] = {
    "filter_funnel": plot_filter_funnel,
    "images_per_document": plot_images_per_document,
    "tokens_per_document": plot_tokens_per_document,
    "dedup": plot_dedup,
    "lang_scores": plot_lang_scores,
    "download_failures": plot_download_failures,
}


def plots_for(build: Build) -> dict[str, Callable[..., Figure]]:
    return PAIR_PLOTS if build.kind == PAIRS else INTERLEAVED_PLOTS


def save_all_plots(build: Build | str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write every plot of the build's kind as ``<name>.png`` (default ``BUILD/stats/plots``)."""
    build = as_build(build)
    out = Path(out_dir) if out_dir is not None else build.root / "stats" / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, fn in plots_for(build).items():
        path = out / f"{name}.png"
        fn(build, save=path)
        written[name] = path
    return written

