"""The loaders on the real embedded-sample builds (tests/conftest.py fixtures, built once per session)."""

from __future__ import annotations

import json

import pytest

from pmd.loaders import m3w_pipeline, pair_pipeline, read_interleaved_table, read_pairs_table, train_wordpiece

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_pair_stream_reads_every_sample_of_the_sample_build(sample_build):
    manifest = json.loads((sample_build / "manifest.json").read_text())
    table = read_pairs_table(sample_build, columns=["key", "text"])
    assert table.num_rows == manifest["total_samples"] > 0
    tok = train_wordpiece(table.column("text").to_pylist(), vocab_size=2000)
    ds = pair_pipeline(sample_build, tokenizer=tok, image_size=64, max_text_len=32, shuffle=False)
    samples = list(ds)
    assert ds.errors.total == 0, ds.errors.as_dict()
    assert sorted(s["key"] for s in samples) == sorted(table.column("key").to_pylist())
    assert all(s["image"].shape == (3, 64, 64) and s["input_ids"].shape == (32,) for s in samples)
    texts = dict(zip(table.column("key").to_pylist(), table.column("text").to_pylist()))
    assert all(texts[s["key"]] == s["text"] for s in samples)


def test_duckdb_counts_the_sample_build(sample_build):
    duckdb = pytest.importorskip("duckdb")
    manifest = json.loads((sample_build / "manifest.json").read_text())
    [(n,)] = duckdb.sql(f"SELECT count(*) FROM read_parquet('{sample_build}/shards/*.parquet')").fetchall()
    assert n == manifest["total_samples"]


def test_m3w_stream_over_the_interleaved_sample_build(interleaved_sample_build):
    docs = read_interleaved_table(interleaved_sample_build, columns=["id", "texts"])
    assert docs.num_rows > 0
    texts = [t for row in docs.column("texts").to_pylist() for t in row if t]
    tok = train_wordpiece(texts, vocab_size=4000)
    ds = m3w_pipeline(interleaved_sample_build, tokenizer=tok, image_size=32, shuffle=False)
    samples = list(ds)
    assert ds.errors.total == 0, ds.errors.as_dict()
    assert len(samples) == docs.num_rows
    image_id = tok.token_to_id("<image>")
    for s in samples:
        n_images = int((s["input_ids"] == image_id).sum())
        assert n_images == int(s["image_mask"].sum()) <= 5
        assert int(s["image_index"].max()) == n_images
