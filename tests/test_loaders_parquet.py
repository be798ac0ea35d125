"""Parquet sidecars: pyarrow readers, DuckDB and HF datasets read the same files."""

from __future__ import annotations

import pytest

from pmd.loaders import iter_parquet_rows, parquet_files, read_pairs_table
from pmd.loaders.synthetic import write_pair_build


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_pair_build(tmp_path_factory.mktemp("pairs"), shards=3, per_shard=4, image_px=32)


def test_pyarrow_readers(build):
    files = parquet_files(build)
    assert [f.rsplit("/", 1)[1] for f in files] == [f"pairs-{i:06d}.parquet" for i in range(3)]
    table = read_pairs_table(build, columns=["key", "text", "shard"])
    assert table.num_rows == 12 and table.column_names == ["key", "text", "shard"]
    rows = list(iter_parquet_rows(build, columns=["key", "shard"], batch_size=5))
    assert len(rows) == 12 and rows[0]["shard"] == "pairs-000000" and rows[-1]["shard"] == "pairs-000002"
    assert [r["key"] for r in rows] == table.column("key").to_pylist()


def test_duckdb_reads_the_sidecars(build):
    duckdb = pytest.importorskip("duckdb")
    got = duckdb.sql(
        f"SELECT shard, count(*) AS n FROM read_parquet('{build}/shards/pairs-*.parquet') GROUP BY shard ORDER BY shard"
    ).fetchall()
    assert got == [("pairs-000000", 4), ("pairs-000001", 4), ("pairs-000002", 4)]


def test_hf_datasets_loads_the_sidecars(build):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(
        "parquet", data_files={"train": f"{build}/shards/pairs-*.parquet"}, split="train",
        cache_dir=str(build / "hf_cache"),
    )
    assert ds.num_rows == 12
    assert sorted(ds["key"]) == sorted(read_pairs_table(build, columns=["key"]).column("key").to_pylist())
