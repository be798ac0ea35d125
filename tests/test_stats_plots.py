"""pmd.stats.plots and the document viewer: every plot renders, is labelled, and saves a PNG."""

from __future__ import annotations

import base64
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.figure import Figure

from pmd.errors import UserError
from pmd.stats import interleaved, load, plots
from stats_fixtures import il_build, make_pmd_build, pmd_build  # noqa: F401 - fixtures

PNG = b"\x89PNG\r\n\x1a\n"


def _is_number(text: str) -> bool:
    try:
        float(text.replace("\u2212", "-"))
        return True
    except ValueError:
        return False


def _check_labelled(fig: Figure, name: str) -> None:
    """A title on every plot; an x label and a y label (or named categories on y) unless it is the image grid."""
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert visible
    assert all(ax.get_title() for ax in visible), f"{name}: every plot needs a title"
    if name == "sample_grid":
        return
    assert any(ax.get_xlabel() for ax in visible), f"{name}: no x label"
    categories = [t.get_text() for ax in visible for t in ax.get_yticklabels() if t.get_text()]
    assert any(ax.get_ylabel() for ax in visible) or (categories and not any(map(_is_number, categories))), \
        f"{name}: no y label"


@pytest.mark.parametrize("name", sorted(plots.PAIR_PLOTS))
def test_pair_plots_render_and_save(pmd_build, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig = plots.PAIR_PLOTS[name](pmd_build, save=path)
    assert isinstance(fig, Figure)
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000
    _check_labelled(fig, name)


@pytest.mark.parametrize("name", sorted(plots.INTERLEAVED_PLOTS))
def test_interleaved_plots_render_and_save(il_build, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig = plots.INTERLEAVED_PLOTS[name](il_build, save=path)
    assert path.read_bytes()[:8] == PNG
    _check_labelled(fig, name)


def test_axis_labels_name_units(pmd_build):
    fig = plots.plot_image_sizes(pmd_build)
    assert [ax.get_xlabel() for ax in fig.axes][0] == "original width (px)"
    fig = plots.plot_caption_lengths(pmd_build)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5  # one per source, x axis shared: labelled under the lowest plot of each column
    assert [ax.get_xlabel() for ax in visible] == ["", "", "caption length (words)", "caption length (words)",
                                                   "caption length (words)"]
    assert [ax.get_ylabel() for ax in visible] == ["pairs", "", "", "pairs", ""]
    assert visible[0].get_title() == "coco (n=3, mean 8.0)"


def test_funnel_lists_every_reason(pmd_build):
    fig = plots.plot_filter_funnel(pmd_build)
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert "download: http_404" in labels and "ingest: karpathy_val_test" in labels and len(labels) == 10


def test_sample_grid_shows_each_source_first(pmd_build):
    fig = plots.plot_sample_grid(pmd_build, n=5)
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_visible()]
    assert titles == ["[coco]", "[conceptual_captions]", "[localized_narratives__coco]", "[sbu_captions]",
                      "[visual_genome]"]


def test_save_all_plots_default_dir(il_build):
    written = plots.save_all_plots(il_build)
    assert set(written) == set(plots.INTERLEAVED_PLOTS)
    assert all(p.parent == il_build.root / "stats" / "plots" and p.is_file() for p in written.values())


def test_empty_build_still_plots(tmp_path):
    root = make_pmd_build(tmp_path / "b")
    table = pq.read_table(root / "stats" / "samples.parquet")
    pq.write_table(pa.Table.from_pylist([], schema=table.schema), root / "stats" / "samples.parquet")
    build = load.load_build(root)
    out = plots.save_all_plots(build, tmp_path / "plots")
    assert len(out) == len(plots.PAIR_PLOTS)
    fig = plots.plot_caption_lengths(build)
    assert "no captions in this build" in [t.get_text() for t in fig.axes[0].texts]


def test_document_viewer_inlines_shard_images(il_build):
    doc = load.find_document(il_build, index=0)
    html = interleaved.render_document(il_build, index=0)
    uris = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == 2
    assert base64.b64decode(uris[0]) == doc["image_bytes"][1]
    assert html.index("Hello world") < html.index(uris[0]) < html.index("It has two images.")
    by_id = interleaved.render_document(il_build, doc_id=doc["id"])
    assert by_id == html


def test_document_viewer_escapes_text_and_needs_interleaved(pmd_build):
    html = interleaved.document_html({"url": "u", "texts": ["<script>x</script>", None], "images": [None, "000.jpg"],
                                      "image_bytes": [None, None]})
    assert "&lt;script&gt;" in html and "<script>" not in html and "missing from the shard" in html
    with pytest.raises(UserError, match="needs an interleaved build"):
        interleaved.render_document(pmd_build)
