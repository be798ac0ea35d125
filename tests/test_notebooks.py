"""The stats notebooks: stored without outputs, generated from pmd.stats.make_notebooks, and executed
top to bottom (nbclient, the venv's own Python as kernel) on a build, producing their plots."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from pmd.stats import make_notebooks
from stats_fixtures import make_interleaved_build, make_pmd_build

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PMD_PLOTS = ["paper_comparison", "filter_funnel", "caption_lengths", "lang_scores", "image_sizes",
             "download_failures", "sample_grid"]
IL_PLOTS = ["images_per_document", "tokens_per_document", "filter_funnel", "dedup", "lang_scores",
            "download_failures"]


@pytest.fixture(scope="module")
def venv_kernel(tmp_path_factory):
    """A ``python3`` kernel spec that runs this interpreter (sys.executable), first on JUPYTER_PATH.

    The venv's own share/jupyter/kernels/python3 runs ``python`` (which jupyter_client maps to
    sys.executable), but a user-level spec could shadow it; this one cannot.
    """
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pmd venv", "language": "python"}))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(root))
    mp.setenv("MPLBACKEND", "Agg")
    yield "python3"
    mp.undo()


def execute(name: str, kernel: str, **params: object) -> nbformat.NotebookNode:
    """Run a stored notebook with ``params`` injected after its parameters cell (papermill-style)."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    src = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    nb.cells.insert(idx + 1, nbformat.v4.new_code_cell(src, metadata={"tags": ["injected-parameters"]}))
    NotebookClient(nb, kernel_name=kernel, timeout=180, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode, mime: str) -> list[str]:
    return [o["data"][mime] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if mime in o.get("data", {})]


@pytest.mark.parametrize("name", sorted(make_notebooks.NOTEBOOKS))
def test_notebook_stored_without_outputs_and_up_to_date(name):
    text = (NOTEBOOKS / name).read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and re.search(r'^BUILD_DIR = "build/demo/\w+"', params[0].source, re.M)
    assert text == make_notebooks.render(name), "regenerate with: python -m pmd.stats.make_notebooks"


def test_notebooks_are_thin():
    """Logic lives in pmd.stats: no function definitions, loops or long cells in the notebooks."""
    for name in make_notebooks.NOTEBOOKS:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not re.search(r"^\s*(def|class|for|while) ", cell.source, re.M), cell.source
                assert len(cell.source.splitlines()) <= 10


def check_pmd_notebook(nb: nbformat.NotebookNode, plots_dir: Path) -> None:
    assert len(outputs(nb, "image/png")) == len(PMD_PLOTS)
    for p in PMD_PLOTS:
        assert (plots_dir / f"{p}.png").read_bytes()[:4] == b"\x89PNG"
    html = "\n".join(outputs(nb, "text/html"))
    assert "records_in" in html and "paper_share" in html and "reason" in html


def check_interleaved_notebook(nb: nbformat.NotebookNode, plots_dir: Path, n_images: int) -> None:
    assert len(outputs(nb, "image/png")) == len(IL_PLOTS)
    for p in IL_PLOTS:
        assert (plots_dir / f"{p}.png").read_bytes()[:4] == b"\x89PNG"
    viewer = outputs(nb, "text/html")[-1]
    assert 'class="pmd-doc"' in viewer
    assert viewer.count("data:image/") == n_images


def test_pmd_notebook_runs_on_synthetic_build(tmp_path, venv_kernel):
    build = make_pmd_build(tmp_path / "b")
    nb = execute("pmd_stats.ipynb", venv_kernel, BUILD_DIR=str(build), PLOTS_DIR=str(tmp_path / "plots"))
    check_pmd_notebook(nb, tmp_path / "plots")


def test_interleaved_notebook_runs_on_synthetic_build(tmp_path, venv_kernel):
    build = make_interleaved_build(tmp_path / "il")
    nb = execute("interleaved_stats.ipynb", venv_kernel, BUILD_DIR=str(build), PLOTS_DIR=str(tmp_path / "plots"))
    check_interleaved_notebook(nb, tmp_path / "plots", n_images=2)


def test_notebook_without_build_says_how_to_make_it(tmp_path, monkeypatch):
    """The notebooks' first step (notebook.open_build) explains how to make the missing build, then stops."""
    from pmd.errors import UserError
    from pmd.stats import notebook

    shown: list = []
    monkeypatch.setattr(notebook, "_display", shown.append)
    with pytest.raises(UserError, match="does not exist"):
        notebook.open_build(tmp_path / "missing", "pmd-pairs")
    assert "Cannot open" in shown[0].data and "`make demo`" in shown[0].data
    build = make_interleaved_build(tmp_path / "il")
    with pytest.raises(UserError, match="this notebook reads pmd-pairs builds"):
        notebook.open_build(build, "pmd-pairs")


# ---------------------------------------------------------------- the real embedded-sample builds (CI)


@pytest.mark.slow
@pytest.mark.spark
def test_pmd_notebook_runs_on_sample_build(sample_build, tmp_path, venv_kernel):
    nb = execute("pmd_stats.ipynb", venv_kernel, BUILD_DIR=str(sample_build), PLOTS_DIR=str(tmp_path / "plots"))
    check_pmd_notebook(nb, tmp_path / "plots")


@pytest.mark.slow
@pytest.mark.spark
def test_interleaved_notebook_runs_on_sample_build(interleaved_sample_build, tmp_path, venv_kernel):
    from pmd.stats import load

    doc = load.find_document(load.load_build(interleaved_sample_build), index=0)
    nb = execute("interleaved_stats.ipynb", venv_kernel, BUILD_DIR=str(interleaved_sample_build),
                 PLOTS_DIR=str(tmp_path / "plots"))
    check_interleaved_notebook(nb, tmp_path / "plots", n_images=sum(m is not None for m in doc["images"]))
