"""The embedded sample built once per session (``sample_build``): layout, books, faults, export, retry."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pmd.pairs.config import STAGES
from pmd.counters import CounterBook
from pmd.shard import read_manifest, read_tar_shard, verify_manifest

pytestmark = pytest.mark.spark


def _sample(build: Path) -> dict:
    return json.loads((build / "sample" / "sample.json").read_text())


def _counters(build: Path) -> CounterBook:
    return CounterBook.from_list(json.loads((build / "stats" / "counters.json").read_text()))


def test_manifest_lists_intact_shards(sample_build):
    m = read_manifest(sample_build)
    assert m["kind"] == "pmd-pairs" and m["format_version"] == 1
    assert verify_manifest(sample_build) == []
    assert m["total_samples"] == sum(s["samples"] for s in m["shards"]) > 0
    assert [s["path"] for s in m["shards"]] == [f"shards/pairs-{i:06d}.tar" for i in range(len(m["shards"]))]
    k = m["config"]["shard"]["samples_per_shard"]
    assert all(s["samples"] == k for s in m["shards"][:-1]) and 0 < m["shards"][-1]["samples"] <= k
    assert [c["stage"] for c in m["counters"]][0] == "ingest" and m["versions"]["pyspark"]


def test_books_reconcile_per_stage_and_source(sample_build):
    book = _counters(sample_build)
    book.check_reconciled()
    for up, down in zip(STAGES, STAGES[1:]):
        book.check_chain(up, down)
    assert book.total("shard").kept == read_manifest(sample_build)["total_samples"]
    order = [c["stage"] for c in json.loads((sample_build / "stats" / "counters.json").read_text())]
    assert order == sorted(order, key=STAGES.index)


def test_shards_are_sorted_keyed_and_match_sidecars(sample_build):
    m = read_manifest(sample_build)
    keys = []
    for s in m["shards"]:
        side = pq.read_table(sample_build / s["parquet"]).to_pylist()
        samples = list(read_tar_shard(sample_build / s["path"]))
        assert [k for k, _ in samples] == [r["key"] for r in side]
        for (key, members), row in zip(samples, side):
            assert set(members) == {"jpg", "txt", "json"}
            meta = json.loads(members["json"])
            assert meta["id"] == key == row["id"] and members["txt"].decode() == row["text"] == meta["text"]
            assert members["jpg"][:2] == b"\xff\xd8" and row["shard"] == s["path"]
            assert ("image_url" in meta) != ("image_path" in meta)
            assert min(meta["width"], meta["height"]) <= 256
        keys += [k for k, _ in samples]
        with tarfile.open(sample_build / s["path"]) as tar:
            assert {(ti.mtime, ti.uid, ti.gid, ti.uname) for ti in tar} == {(0, 0, 0, "")}
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_stats_files_follow_the_contract(sample_build):
    stats = sample_build / "stats"
    samples = pq.read_table(stats / "samples.parquet")
    assert samples.column_names == ["id", "source", "text", "caption_words", "lang", "lang_score", "width", "height",
                                    "original_width", "original_height", "image_key", "sha256", "shard"]
    assert samples.num_rows == read_manifest(sample_build)["total_samples"]
    rejects = pq.read_table(stats / "rejects.parquet")
    assert rejects.column_names == ["stage", "source", "outcome", "reason", "message", "input_file", "input_line",
                                    "image_url"]
    book = _counters(sample_build)
    not_kept = sum(c.n_dropped + c.n_failed for c in book)
    assert rejects.num_rows == not_kept
    summary = json.loads((stats / "summary.json").read_text())
    assert summary["total_pairs"] == samples.num_rows and summary["wall_seconds"] > 0
    assert all(r["caption_words"] == len(r["text"].split()) for r in samples.to_pylist())
    try:
        import pmd.stats.card  # noqa: F401
    except ImportError:
        return
    assert (sample_build / "DATASET_CARD.md").stat().st_size > 0


def test_malformed_lines_are_rejected_with_file_and_line(sample_build):
    rejects = pq.read_table(sample_build / "stats" / "rejects.parquet").to_pylist()
    at = {(Path(r["input_file"]).name, r["input_line"]) for r in rejects if r["stage"] == "ingest" and r["input_file"]}
    planted = [(Path(m["file"]).name, m["line"]) for ms in _sample(sample_build)["expected"]["malformed"].values()
               for m in ms]
    assert planted and all(p in at for p in planted)


def test_download_faults_end_as_failed_rows_with_reasons(sample_build):
    rejects = [r for r in pq.read_table(sample_build / "stats" / "rejects.parquet").to_pylist()
               if r["stage"] == "download"]
    by_url = {r["image_url"]: r["reason"] for r in rejects if r["image_url"]}
    faults = _sample(sample_build)["expected"]["faults"]
    want = {"404": "http_404", "500": "http_500", "slow": "timeout", "truncated": "truncated_image",
            "notimage": "not_an_image", "noai": "disallowed_by_header"}
    seen = set()
    for kind, urls in faults.items():
        for u in urls:
            if u in by_url:
                assert by_url[u] == want[kind], (u, by_url[u])
                seen.add(kind)
    assert seen == set(want)
    assert all(r["outcome"] == "failed" for r in rejects)


def test_cross_source_duplicates_dropped_and_same_bytes_share_an_image(sample_build):
    exp = _sample(sample_build)["expected"]
    rejects = pq.read_table(sample_build / "stats" / "rejects.parquet").to_pylist()
    dups = {r["image_url"] for r in rejects if r["reason"] == "duplicate_pair"}
    assert {d["url"] for d in exp["cross_source_duplicates"]} <= dups
    sides = [pq.read_table(sample_build / s["parquet"]) for s in read_manifest(sample_build)["shards"]]
    rows = [r for t in sides for r in t.to_pylist()]
    key_of = {r["image_url"]: r["image_key"] for r in rows if r["image_url"]}
    shared = 0
    for group in exp["same_image_bytes"]:
        keys = {key_of[u] for u in group["urls"] if u in key_of}
        if len(keys) >= 1 and sum(u in key_of for u in group["urls"]) > 1:
            assert len(keys) == 1
            shared += 1
    assert shared > 0


def test_rerun_skips_finished_stages(sample_build, caplog):
    from pmd.spark.pairs.run import build_embedded_sample

    before = read_manifest(sample_build)
    with caplog.at_level("INFO", logger="pmd.spark.stages"):
        build_embedded_sample(sample_build)
    assert sum("already done" in r.getMessage() for r in caplog.records) == len(STAGES)
    after = read_manifest(sample_build)
    assert [s["sha256"] for s in after["shards"]] == [s["sha256"] for s in before["shards"]]


def test_export_pmd_has_one_row_per_caption(sample_build, tmp_path):
    from pmd import schemas
    from pmd.pairs.export import export_pmd

    n = export_pmd(sample_build, tmp_path / "pmd.parquet")
    t = pq.read_table(tmp_path / "pmd.parquet")
    schemas.validate(t, "pmd_export")
    assert t.column_names == ["image_url", "image", "text", "source", "meta"]
    assert n == t.num_rows == read_manifest(sample_build)["total_samples"]
    rows = t.to_pylist()
    assert all((r["image_url"] is None) != (r["image"] is None) for r in rows)
    assert any(r["image"] is not None for r in rows) and any(r["image_url"] is not None for r in rows)
    assert "google/wit" in {r["source"] for r in rows} and "wit" not in {r["source"] for r in rows}
    assert all(isinstance(json.loads(r["meta"]), dict) for r in rows)


@pytest.mark.slow
def test_retry_failed_recovers_timeouts_and_still_reconciles(sample_build, tmp_path):
    from pmd.spark.pairs.retry import retry_failed

    work = tmp_path / "build"
    shutil.copytree(sample_build, work, ignore=shutil.ignore_patterns("sample"))
    (work / "sample").symlink_to(sample_build / "sample")
    before = _counters(work)
    timeouts = before.total("download").failed.get("timeout", 0)
    assert timeouts > 0
    res = retry_failed(work, timeout=20)
    assert res["recovered"] >= 1
    after = _counters(work)
    after.check_reconciled()
    assert after.total("download").input == before.total("download").input
    assert after.total("download").failed.get("timeout", 0) < timeouts
    assert after.total("download").failed.get("http_404") == before.total("download").failed.get("http_404")
    m = read_manifest(work)
    assert m["total_samples"] == read_manifest(sample_build)["total_samples"] + (
        after.total("download").kept - before.total("download").kept)
    assert verify_manifest(work) == []
