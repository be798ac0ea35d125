"""`pmd stats BUILD_DIR`: the printed tables equal the build's counters, exactly; plots are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pmd.cli import main
from pmd.stats import plots
from stats_fixtures import make_interleaved_build, make_pmd_build


def parse_section(out: str, title: str) -> list[dict[str, str]]:
    """Rows of one whitespace-aligned table printed under ``title``."""
    lines = out.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0].splitlines()
    header = lines[0].split()
    return [dict(zip(header, line.split())) for line in lines[1:]]


def check_against_counters(out: str, build_dir: Path) -> None:
    """Every per-source and per-stage number printed equals what stats/counters.json says."""
    raw = json.loads((build_dir / "stats" / "counters.json").read_text())
    manifest = json.loads((build_dir / "manifest.json").read_text())
    node_raw = [r for r in raw if r["stage"].endswith("_nodes")]  # interleaved paragraphs/images
    raw = [r for r in raw if not r["stage"].endswith("_nodes")]
    rows = {r["source"]: r for r in parse_section(out, "Per source")}
    stages = {r["stage"]: r for r in parse_section(out, "Per stage (all sources)")}
    assert set(rows) == {r["source"] for r in raw} | {"TOTAL"}
    assert set(stages) == {r["stage"] for r in raw}
    if node_raw:
        nodes = {r["stage"]: r for r in parse_section(out, "Per node stage (paragraphs and images)")}
        assert {k: (int(v["input"]), int(v["kept"])) for k, v in nodes.items()} == \
            {r["stage"]: (r["input"], r["kept"]) for r in node_raw}
    # stage order in the output is the pipeline order: each stage takes in what the previous kept
    names = [r["stage"] for r in parse_section(out, "Per stage (all sources)")]
    for a, b in zip(names, names[1:]):
        assert stages[a]["kept"] == stages[b]["input"]
    first, last = names[0], names[-1]
    for src in {r["source"] for r in raw}:
        mine = [r for r in raw if r["source"] == src]
        by_stage = {r["stage"]: r for r in mine}
        assert int(rows[src]["records_in"]) == by_stage[first]["input"]
        assert int(rows[src]["kept"]) == by_stage[last]["kept"]
        assert int(rows[src]["dropped"]) == sum(sum(r["dropped"].values()) for r in mine)
        assert int(rows[src]["failed"]) == sum(sum(r["failed"].values()) for r in mine)
    for st, r in stages.items():
        mine = [c for c in raw if c["stage"] == st]
        assert int(r["input"]) == sum(c["input"] for c in mine)
        assert int(r["kept"]) == sum(c["kept"] for c in mine)
        assert int(r["dropped"]) == sum(sum(c["dropped"].values()) for c in mine)
        assert int(r["failed"]) == sum(sum(c["failed"].values()) for c in mine)
    assert int(rows["TOTAL"]["kept"]) == manifest["total_samples"]
    reasons = parse_section(out, "Dropped by reason") + parse_section(out, "Failed by error")
    expected = sorted((c["source"], c["stage"], k, v) for c in raw + node_raw for d in (c["dropped"], c["failed"])
                      for k, v in d.items() if v)
    assert sorted((r["source"], r["stage"], r["reason"], int(r["count"])) for r in reasons) == expected


def test_pmd_stats_pairs(tmp_path, capsys):
    root = make_pmd_build(tmp_path / "b")
    assert main(["stats", str(root), "--no-plots"]) == 0  # the plots: test_stats_plots and the interleaved test
    out = capsys.readouterr().out
    check_against_counters(out, root)
    assert "kind pmd-pairs, 2 shards, 8 samples" in out
    coco = next(r for r in parse_section(out, "Per source") if r["source"] == "coco")
    assert coco == {"source": "coco", "records_in": "6", "kept": "3", "dropped": "2", "failed": "1", "images": "2",
                    "unique_images": "2", "mean_words": "8.00", "median_words": "9.00"}
    assert not (root / "stats" / "plots").exists()


def test_pmd_stats_interleaved_default_plot_dir_and_card(tmp_path, capsys):
    root = make_interleaved_build(tmp_path / "il")
    assert main(["stats", str(root), "--card"]) == 0
    out = capsys.readouterr().out
    check_against_counters(out, root)
    assert "kind interleaved-docs" in out and "images per document" in out
    dedup = parse_section(out, "Dedup")[0]
    assert (dedup["input"], dedup["kept"], dedup["removed"]) == ("7", "4", "3")
    assert {p.name for p in (root / "stats" / "plots").iterdir()} == {f"{n}.png" for n in plots.INTERLEAVED_PLOTS}
    assert (root / "DATASET_CARD.md").is_file()


def test_pmd_stats_json(tmp_path, capsys):
    root = make_pmd_build(tmp_path / "b")
    assert main(["stats", str(root), "--json", "--no-plots"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["total_samples"] == 8
    assert {s["source"]: s["failed"] for s in d["sources"]}["sbu_captions"] == 4
    assert not (root / "stats" / "plots").exists()


def test_pmd_stats_missing_build_is_exit_2(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "make demo" in err


# ---------------------------------------------------------------- the real embedded-sample builds


@pytest.mark.slow
@pytest.mark.spark
def test_pmd_stats_on_sample_build(sample_build, capsys):
    # the same 7 plots are rendered from this build by test_pmd_notebook_runs_on_sample_build
    assert main(["stats", str(sample_build), "--no-plots"]) == 0
    out = capsys.readouterr().out
    check_against_counters(out, Path(sample_build))
    import pyarrow.parquet as pq

    samples = pq.read_table(Path(sample_build) / "stats" / "samples.parquet")
    rows = {r["source"]: r for r in parse_section(out, "Per source")}
    assert int(rows["TOTAL"]["kept"]) == samples.num_rows
    assert (Path(sample_build) / "DATASET_CARD.md").is_file()  # written by the build itself


@pytest.mark.slow
@pytest.mark.spark
def test_pmd_stats_on_interleaved_sample_build(interleaved_sample_build, tmp_path, capsys):
    assert main(["stats", str(interleaved_sample_build), "--plots", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    check_against_counters(out, Path(interleaved_sample_build))
    assert len(list((tmp_path / "p").glob("*.png"))) == len(plots.INTERLEAVED_PLOTS)
