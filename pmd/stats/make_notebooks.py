"""Generate notebooks/pmd_stats.ipynb and notebooks/interleaved_stats.ipynb (stored without outputs).

The notebooks are written from this script so that they stay thin (they call ``pmd.stats``),
reviewable as code, and free of outputs. Regenerate with ``python -m pmd.stats.make_notebooks``;
a test checks the stored files match.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from pmd.config import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"

_SETUP = """\
import matplotlib
matplotlib.use("Agg")  # figures are rendered to PNG and displayed as images
import pandas as pd
from IPython.display import Markdown, display

from pmd.stats import interleaved, notebook, plots, summary

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)"""


def _params(build_dir: str, extra: str = "") -> nbformat.NotebookNode:
    src = (f'# Parameters (papermill-style: this cell is tagged "parameters")\n'
           f'BUILD_DIR = "{build_dir}"  # a build --out directory; relative paths also resolve from the repo root\n'
           'PLOTS_DIR = None  # where PNGs go; None: BUILD_DIR/stats/plots' + extra)
    return new_code_cell(src, metadata={"tags": ["parameters"]})


def pmd_notebook() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# PMD build statistics\n\n"
            "What a `pmd build` produced, before training on it: pairs per source against FLAVA's Table 1, the "
            "filter funnel with drop reasons, caption lengths, language scores, image sizes, download failures and "
            "sample pairs read from the tar shards.\n\n"
            "Set `BUILD_DIR` below (default: the embedded sample build that `make demo` writes to "
            "`build/demo/pmd`). The same numbers are printed by `pmd stats BUILD_DIR`."),
        _params("build/demo/pmd"),
        new_code_cell(_SETUP),
        new_code_cell('build = notebook.open_build(BUILD_DIR, "pmd-pairs")\n'
                      "out = notebook.plots_dir(build, PLOTS_DIR)\n"
                      "display(Markdown(notebook.header(build)))"),
        new_markdown_cell("## Per source\n\nRecords read, kept after the last stage, dropped and failed over all "
                          "stages (from `stats/counters.json`), images, unique images (by content hash) and caption "
                          "words (from `stats/samples.parquet`)."),
        new_code_cell("summary.source_table(build)"),
        new_markdown_cell("## Against FLAVA Table 1\n\nEach Table 1 row's share of this build's pairs next to its "
                          "share of the paper's 70M pairs (COCO 0.9M, SBU 1.0M, Localized Narratives 1.9M, CC3M "
                          "3.1M, Visual Genome 5.4M, WIT 4.8M, CC12M 11.0M, RedCaps 11.6M, YFCC 30.3M; mean caption "
                          "12.1 words)."),
        new_code_cell("summary.paper_comparison(build)"),
        new_code_cell('notebook.show(plots.plot_paper_comparison(build), "paper_comparison", out)'),
        new_markdown_cell("## Filter funnel\n\nRecords entering and kept per stage, and every drop reason and "
                          "failure error."),
        new_code_cell("display(summary.stage_table(build))\nsummary.funnel_reasons(build)"),
        new_code_cell('notebook.show(plots.plot_filter_funnel(build), "filter_funnel", out)'),
        new_markdown_cell("## Caption length per source"),
        new_code_cell('notebook.show(plots.plot_caption_lengths(build), "caption_lengths", out)'),
        new_markdown_cell("## Language score"),
        new_code_cell('notebook.show(plots.plot_lang_scores(build), "lang_scores", out)'),
        new_markdown_cell("## Image size and aspect ratio"),
        new_code_cell('notebook.show(plots.plot_image_sizes(build), "image_sizes", out)'),
        new_markdown_cell("## Download failures\n\nImages that could not be fetched, by reason (dead URLs, "
                          "refusals, bad images); each is a row of `stats/rejects.parquet`."),
        new_code_cell("display(summary.download_failures(build))\n"
                      'notebook.show(plots.plot_download_failures(build), "download_failures", out)'),
        new_markdown_cell("## Sample pairs from the shards"),
        new_code_cell('notebook.show(plots.plot_sample_grid(build, n=12), "sample_grid", out)'),
    ]
    return _notebook(cells)


def interleaved_notebook() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# Interleaved build statistics\n\n"
            "What a `pmd interleaved` build produced: documents, images and tokens per document, the filter "
            "funnel by rule, what dedup removed, and a viewer that renders a document's text with its images "
            "inline (read from the tar shards).\n\n"
            "Set `BUILD_DIR` below (default: the embedded sample build that `make demo` writes to "
            "`build/demo/interleaved`). The same numbers are printed by `pmd stats BUILD_DIR`."),
        _params("build/demo/interleaved", "\nDOC_INDEX = 0  # which document the viewer shows"),
        new_code_cell(_SETUP),
        new_code_cell('build = notebook.open_build(BUILD_DIR, "interleaved-docs")\n'
                      "out = notebook.plots_dir(build, PLOTS_DIR)\n"
                      "display(Markdown(notebook.header(build)))"),
        new_markdown_cell("## Documents"),
        new_code_cell("display(summary.source_table(build))\nsummary.document_table(build)"),
        new_code_cell('notebook.show(plots.plot_images_per_document(build), "images_per_document", out)'),
        new_code_cell('notebook.show(plots.plot_tokens_per_document(build), "tokens_per_document", out)'),
        new_markdown_cell("## Filter funnel by rule\n\nDocument-level stages, then the node-level stages that remove "
                          "paragraphs and images inside kept documents, then every rule that dropped something."),
        new_code_cell("display(summary.stage_table(build))\n"
                      "display(summary.stage_table(build, nodes=True))\n"
                      "summary.funnel_reasons(build)"),
        new_code_cell('notebook.show(plots.plot_filter_funnel(build), "filter_funnel", out)'),
        new_markdown_cell("## Dedup effects"),
        new_code_cell("display(summary.dedup_table(build))\n"
                      'notebook.show(plots.plot_dedup(build), "dedup", out)'),
        new_markdown_cell("## Language score and download failures"),
        new_code_cell('notebook.show(plots.plot_lang_scores(build), "lang_scores", out)\n'
                      'notebook.show(plots.plot_download_failures(build), "download_failures", out)'),
        new_markdown_cell("## Document viewer\n\nText and images in page order; images are the shard's members "
                          "inlined as data URIs. Change `DOC_INDEX` (or pass `doc_id=`) to see another document."),
        new_code_cell("notebook.show_html(interleaved.render_document(build, index=DOC_INDEX))"),
    ]
    return _notebook(cells)


def _notebook(cells: list) -> nbformat.NotebookNode:
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i:02d}"  # stable ids: regenerating gives identical files
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb


NOTEBOOKS = {"pmd_stats.ipynb": pmd_notebook, "interleaved_stats.ipynb": interleaved_notebook}


def render(name: str) -> str:
    return nbformat.writes(NOTEBOOKS[name](), version=4) + "\n"


def write_notebooks(out_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in NOTEBOOKS:
        path = out_dir / name
        path.write_text(render(name), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=NOTEBOOK_DIR)
    args = ap.parse_args(argv)
    for p in write_notebooks(args.out):
        sys.stdout.write(f"{p}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
