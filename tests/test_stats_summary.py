"""pmd.stats.load / summary / paper on small synthetic builds with exactly known numbers."""

from __future__ import annotations

import json

import pytest

from pmd.errors import UserError
from pmd.stats import load, paper, summary
from stats_fixtures import il_build, make_pmd_build, pmd_build  # noqa: F401 - fixtures


def test_load_detects_kind_and_tables(pmd_build, il_build):
    assert pmd_build.kind == "pmd-pairs" and len(pmd_build.samples) == 8 and pmd_build.documents is None
    assert il_build.kind == "interleaved-docs" and len(il_build.documents) == 3 and il_build.samples is None
    assert len(pmd_build.rejects) == 15  # 9 drops + 6 failures, one row each


def test_missing_build_says_how_to_make_it(tmp_path):
    with pytest.raises(UserError, match="make demo"):
        load.load_build(tmp_path / "nope")
    with pytest.raises(UserError, match="no manifest.json"):
        load.load_build(tmp_path)


def test_unknown_kind_is_a_user_error(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "videos"}))
    with pytest.raises(UserError, match="unknown build kind 'videos'"):
        load.load_build(tmp_path)


def test_stage_order_follows_pipeline_not_alphabet(pmd_build, il_build):
    assert pmd_build.stage_order == ["ingest", "filter", "dedup", "download", "dedup_images", "shard"]
    assert il_build.stage_order == ["read", "extract", "filter", "dedup", "download", "shard"]
    assert il_build.node_stage_order == ["filter_nodes", "dedup_nodes", "download_nodes"]


def test_source_table_matches_counters_json(pmd_build):
    raw = json.loads((pmd_build.root / "stats" / "counters.json").read_text())
    table = summary.source_table(pmd_build).set_index("source")
    for src in {r["source"] for r in raw}:
        rows = [r for r in raw if r["source"] == src]
        ingest = next(r for r in rows if r["stage"] == "ingest")
        shard = next(r for r in rows if r["stage"] == "shard")
        assert table.loc[src, "records_in"] == ingest["input"]
        assert table.loc[src, "kept"] == shard["kept"]
        assert table.loc[src, "dropped"] == sum(sum(r["dropped"].values()) for r in rows)
        assert table.loc[src, "failed"] == sum(sum(r["failed"].values()) for r in rows)
    assert table.loc["coco"].tolist()[:6] == [6, 3, 2, 1, 2, 2]
    assert table.loc["sbu_captions", "failed"] == 4
    assert table.loc["TOTAL"].tolist()[:6] == [23, 8, 9, 6, 7, 7]
    assert table.loc["TOTAL", "mean_words"] == pytest.approx(58 / 8)
    assert table.loc["coco", "median_words"] == 9.0


def test_stage_and_reason_tables(pmd_build):
    st = summary.stage_table(pmd_build).set_index("stage")
    assert st.loc["download"].tolist() == [14, 8, 1, 5]
    r = summary.reasons_table(pmd_build)
    http = r[(r.reason == "http_404")].set_index("source")["count"].to_dict()
    assert http == {"coco": 1, "sbu_captions": 2}
    f = summary.funnel_reasons(pmd_build)
    assert f[f.reason == "http_404"]["count"].item() == 3
    assert list(f["stage"].unique()) == ["ingest", "filter", "dedup", "download"]
    d = summary.download_failures(pmd_build)
    assert d["count"].sum() == 6 and d.iloc[0].tolist() == ["sbu_captions", "failed", "http_404", 2]


def test_interleaved_tables(il_build):
    t = summary.source_table(il_build).set_index("source")
    assert t.loc["TOTAL"].tolist()[:6] == [14, 3, 10, 1, 3, 3]
    docs = summary.document_table(il_build).set_index("measure")
    assert docs.loc["images per document", "mean"] == 1.0
    assert docs.loc["images per document", "max"] == 2.0
    dd = summary.dedup_table(il_build)
    assert dd.iloc[0][["stage", "input", "kept", "removed"]].tolist() == ["dedup", 7, 4, 3]
    assert dd.iloc[0]["reasons"] == "duplicate_url=2, near_duplicate=1"
    assert dd.iloc[1][["stage", "input", "kept", "removed"]].tolist() == ["dedup_nodes", 14, 13, 1]
    nodes = summary.stage_table(il_build, nodes=True).set_index("stage")
    assert nodes.loc["download_nodes"].tolist() == [5, 3, 2, 0]
    assert "filter_nodes" not in summary.stage_table(il_build)["stage"].tolist()


def test_format_summary_and_json(pmd_build, il_build):
    text = summary.format_summary(pmd_build)
    assert "Per source" in text and "Dropped by reason" in text and "karpathy_val_test" in text
    d = summary.summary_dict(il_build)
    assert d["kind"] == "interleaved-docs" and d["sources"][-1]["source"] == "TOTAL"
    assert json.loads(json.dumps(d))["dedup"][0]["removed"] == 3


def test_paper_table_and_groups():
    t = paper.paper_table()
    assert t["pairs_m"].sum() == pytest.approx(70.0)
    assert paper.paper_group("localized_narratives__ADE20k") == "Localized Narratives"
    assert paper.paper_group("google/wit") == "WIT"
    assert paper.paper_group("something_else") is None


def test_compare_with_paper_shares(pmd_build):
    c = summary.paper_comparison(pmd_build).set_index("group")
    assert c.loc["COCO", "pairs"] == 3
    assert c.loc["COCO", "share"] == pytest.approx(3 / 8)
    assert c.loc["YFCC100M (filtered)", "paper_share"] == pytest.approx(30.3 / 70.0)
    assert c.loc["WIT", "pairs"] == 0
    assert c["share"].sum() == pytest.approx(1.0)
    other = paper.compare_with_paper({"coco": 1, "laion": 3}).set_index("group")
    assert other.loc["other", "pairs"] == 3 and other.loc["COCO", "share"] == 0.25


def test_shard_readers(pmd_build, il_build):
    samples = list(load.iter_shard_samples(pmd_build))
    assert len(samples) == 8 and all(s["ext"] == "jpg" and s["image"][:2] == b"\xff\xd8" for s in samples)
    assert samples[0]["text"] == "A man riding a red moped on a dirt road."
    assert len(list(load.iter_shard_samples(pmd_build, limit=3))) == 3
    doc = load.find_document(il_build, index=0)
    assert doc["images"] == [None, "000.jpg", None, "001.jpg"]
    assert [b is not None for b in doc["image_bytes"]] == [False, True, False, True]
    with pytest.raises(UserError, match="not found"):
        load.find_document(il_build, doc_id="ffff")


def test_format_summary_accepts_a_path(pmd_build):
    assert summary.format_summary(pmd_build.root) == summary.format_summary(pmd_build)
    assert summary.summary_dict(str(pmd_build.root))["total_samples"] == 8


def test_null_image_keys_are_not_counted(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = make_pmd_build(tmp_path / "b")
    t = pq.read_table(root / "stats" / "samples.parquet").to_pandas()
    t.loc[t["source"] == "coco", ["image_key", "sha256"]] = None
    pq.write_table(pa.Table.from_pandas(t, preserve_index=False), root / "stats" / "samples.parquet")
    table = summary.source_table(load.load_build(root)).set_index("source")
    assert table.loc["coco", "images"] == 0 and table.loc["coco", "unique_images"] == 0
    assert table.loc["TOTAL", "images"] == 5
