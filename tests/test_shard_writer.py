"""Reproducible, atomic WebDataset shards."""

from __future__ import annotations

import hashlib
import os
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from pmd.shard.tar_writer import (ShardInfo, plan_shards, read_tar_shard, shard_exists_complete,
                                  write_parquet_sidecar, write_tar_shard)


def _samples(n=3):
    return [(f"{i:04x}ab", {"txt": f"caption {i}".encode(), "jpg": bytes([i]) * (100 + i), "json": b"{}"})
            for i in range(n)]


def test_same_samples_give_byte_identical_tars(tmp_path):
    a = write_tar_shard(tmp_path / "a" / "pairs-000000.tar", _samples())
    os.utime(tmp_path / "a" / "pairs-000000.tar", (1, 1))
    b = write_tar_shard(tmp_path / "b" / "pairs-000000.tar", iter(_samples()))
    assert a.sha256 == b.sha256
    assert (tmp_path / "a" / "pairs-000000.tar").read_bytes() == (tmp_path / "b" / "pairs-000000.tar").read_bytes()
    assert a.sha256 == hashlib.sha256((tmp_path / "a" / "pairs-000000.tar").read_bytes()).hexdigest()
    assert a.bytes == (tmp_path / "a" / "pairs-000000.tar").stat().st_size
    assert a.samples == 3


def test_headers_are_fixed_and_members_ordered(tmp_path):
    info = write_tar_shard(tmp_path / "s.tar", _samples(2), fsync=True)
    with tarfile.open(info.path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["0000ab.jpg", "0000ab.json", "0000ab.txt",
                                         "0001ab.jpg", "0001ab.json", "0001ab.txt"]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
    ordered = write_tar_shard(tmp_path / "o.tar", _samples(1), ext_order=["txt", "json"])
    with tarfile.open(ordered.path) as tar:
        assert tar.getnames() == ["0000ab.txt", "0000ab.json", "0000ab.jpg"]


def test_webdataset_reads_our_shards(tmp_path):
    info = write_tar_shard(tmp_path / "s.tar", [("00aa", {"txt": b"hi", "000.jpg": b"x", "001.jpg": b"yy"})])
    got = list(wds.WebDataset(info.path, shardshuffle=False))
    assert len(got) == 1
    assert got[0]["__key__"] == "00aa"
    assert (got[0]["txt"], got[0]["000.jpg"], got[0]["001.jpg"]) == (b"hi", b"x", b"yy")
    assert list(read_tar_shard(info.path)) == [("00aa", {"000.jpg": b"x", "001.jpg": b"yy", "txt": b"hi"})]


@pytest.mark.parametrize("key", ["ab.cd", "ABCD", "", "ab/cd", "xyz"])
def test_bad_keys_are_rejected_and_leave_nothing(tmp_path, key):
    with pytest.raises(ValueError, match="bad sample key"):
        write_tar_shard(tmp_path / "s.tar", [("00aa", {"txt": b"ok"}), (key, {"txt": b"x"})])
    assert os.listdir(tmp_path) == []


def test_duplicate_key_and_bad_ext_rejected(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        write_tar_shard(tmp_path / "s.tar", [("00aa", {"txt": b"1"}), ("00aa", {"txt": b"2"})])
    with pytest.raises(ValueError, match="extension"):
        write_tar_shard(tmp_path / "s.tar", [("00aa", {".txt": b"1"})])
    assert os.listdir(tmp_path) == []


def test_exception_mid_write_leaves_no_partial_file(tmp_path):
    def gen():
        yield "00aa", {"txt": b"a" * 10000}
        raise RuntimeError("upstream broke")

    with pytest.raises(RuntimeError, match="upstream broke"):
        write_tar_shard(tmp_path / "s.tar", gen())
    assert os.listdir(tmp_path) == []
    assert not shard_exists_complete(tmp_path / "s.tar")


def test_shard_exists_complete_checks_sha(tmp_path):
    info = write_tar_shard(tmp_path / "s.tar", _samples(1))
    assert shard_exists_complete(info.path)
    assert shard_exists_complete(info.path, info.sha256)
    assert not shard_exists_complete(info.path, "0" * 64)


def test_parquet_sidecar_atomic(tmp_path):
    schema = pa.schema([("key", pa.string()), ("n", pa.int64())])
    p = write_parquet_sidecar(tmp_path / "x" / "s.parquet", [{"key": "00aa", "n": 1}], schema)
    assert pq.read_table(p).to_pylist() == [{"key": "00aa", "n": 1}]
    empty = write_parquet_sidecar(tmp_path / "e.parquet", [], schema)
    assert pq.read_table(empty).num_rows == 0
    with pytest.raises(ValueError):
        write_parquet_sidecar(tmp_path / "bad.parquet", [])
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        write_parquet_sidecar(tmp_path / "bad.parquet", [{"key": "a", "n": "not a number"}], schema)
    assert sorted(os.listdir(tmp_path)) == ["e.parquet", "x"]


def test_plan_shards():
    assert plan_shards(0, 10) == []
    assert plan_shards(25, 10) == [range(0, 10), range(10, 20), range(20, 25)]
    assert plan_shards(10, 10) == [range(0, 10)]
    with pytest.raises(ValueError):
        plan_shards(5, 0)


def test_shard_info_dict():
    assert ShardInfo("a.tar", 1, 2, "x").to_dict() == {"path": "a.tar", "samples": 1, "bytes": 2, "sha256": "x"}
    assert ShardInfo("a.tar", 1, 2, "x", "a.parquet").to_dict()["parquet"] == "a.parquet"


def _tarfile_reference(path, samples):
    """The shard as ``tarfile`` writes it (what write_tar_shard did before it built headers itself)."""
    import io

    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for key, members in samples:
            for ext in sorted(members):
                ti = tarfile.TarInfo(f"{key}.{ext}")
                ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = len(members[ext]), 0, 0o644, 0, 0, "", ""
                tar.addfile(ti, io.BytesIO(members[ext]))


@pytest.mark.parametrize("sizes", [[0, 1, 511, 512, 513], [10239], [10240 - 3 * 512], [100_000, 7]])
def test_tar_bytes_equal_tarfile_pax_output(tmp_path, sizes):
    samples = [(f"{i:04x}", {"jpg": os.urandom(n), "txt": b"t" * (i + 1),
                              # an extension too long for the ustar name field, and a non-ASCII one: pax records
                              "e" * (120 if i == 0 else 3): b"x", ("é" if i == 1 else "json"): b"{}"})
               for i, n in enumerate(sizes)]
    _tarfile_reference(tmp_path / "ref.tar", samples)
    info = write_tar_shard(tmp_path / "ours.tar", samples)
    assert (tmp_path / "ours.tar").read_bytes() == (tmp_path / "ref.tar").read_bytes()
    assert info.sha256 == hashlib.sha256((tmp_path / "ref.tar").read_bytes()).hexdigest()
    assert [(k, m) for k, m in read_tar_shard(tmp_path / "ref.tar")] == [(k, dict(sorted(m.items()))) for k, m in samples]


def test_member_reader_rejects_damage(tmp_path):
    from pmd.shard.tar_format import TarFormatError

    info = write_tar_shard(tmp_path / "s.tar", _samples(3))
    data = bytearray((tmp_path / "s.tar").read_bytes())
    for cut in (600, 700):  # inside the first member's data, then inside its padding
        (tmp_path / "short.tar").write_bytes(data[:cut])
        with pytest.raises(TarFormatError, match="end of data"):
            list(read_tar_shard(tmp_path / "short.tar"))
    data[10] ^= 0xFF  # inside the first member's name: the header checksum no longer matches
    (tmp_path / "bad.tar").write_bytes(bytes(data))
    with pytest.raises(TarFormatError, match="checksum"):
        list(read_tar_shard(tmp_path / "bad.tar"))
    assert info.samples == 3


def test_incremental_writer_gives_the_same_bytes_and_leaves_nothing_on_error(tmp_path):
    from pmd.shard import TarShardWriter

    samples = [(f"{i:04x}", {"jpg": bytes([i]) * (300 + i), "txt": f"caption {i}"}) for i in range(5)]
    whole = write_tar_shard(tmp_path / "a.tar", samples, ext_order=("jpg", "txt"))
    with TarShardWriter(tmp_path / "b.tar", ext_order=("jpg", "txt")) as w:
        for key, members in samples:
            w.add(key, members)
    assert w.info is not None and (w.info.samples, w.info.sha256) == (5, whole.sha256)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with pytest.raises(ValueError, match="duplicate"):
        with TarShardWriter(tmp_path / "c.tar") as w:
            w.add("00aa", {"txt": b"x"})
            w.add("00aa", {"txt": b"y"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "b.tar"]
