"""Shard lists: expansion, fsspec opening, node/worker splitting, epoch-seeded order, resampling, epochs."""

from __future__ import annotations

import json

import fsspec
import pytest
import torch
import webdataset as wds

from pmd.errors import UserError
from pmd.loaders import NotEnoughShardsError, collate, expand_shards, pair_pipeline, train_wordpiece
from pmd.loaders.shards import (ConsumerInfo, consumer_info, consumer_shards, epoch_order, register_fsspec_opener,
                                resampled_shards, wds_gopen)
from pmd.loaders.synthetic import WORDS, write_pair_build

URLS = [f"s-{i}.tar" for i in range(12)]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_pair_build(tmp_path_factory.mktemp("pairs"), shards=4, per_shard=5, image_px=48)


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece([" ".join(WORDS)], vocab_size=200)


def keys_of(ds):
    return [s["key"] for s in ds]


def test_expand_braces_lists_and_double_colon(tmp_path):
    assert expand_shards("d/pairs-{000000..000002}.tar") == [f"d/pairs-00000{i}.tar" for i in range(3)]
    assert expand_shards(["a-{0..1}.tar", "b.tar"]) == ["a-0.tar", "a-1.tar", "b.tar"]
    assert expand_shards("a.tar::b-{1..2}.tar") == ["a.tar", "b-1.tar", "b-2.tar"]
    with pytest.raises(UserError, match="without manifest.json"):
        expand_shards(str(tmp_path))


def test_expand_build_directory_and_manifest(build):
    tars = expand_shards(build)
    assert tars == [str(build / "shards" / f"pairs-{i:06d}.tar") for i in range(4)]
    assert expand_shards(build / "manifest.json") == tars
    assert expand_shards(build, manifest_field="parquet")[0].endswith("pairs-000000.parquet")


def test_split_by_node_and_worker_is_a_partition():
    seen = []
    for rank in range(2):
        for worker in range(3):
            part = consumer_shards(URLS, seed=1, epoch=0, shuffle=True, info=ConsumerInfo(rank, 2, worker, 3))
            assert len(part) == 2
            seen += part
    assert sorted(seen) == sorted(URLS)


def test_fewer_shards_than_consumers_is_a_clear_error():
    with pytest.raises(NotEnoughShardsError, match=r"3 shard\(s\) for 2 node\(s\) x 2 DataLoader worker\(s\) = 4 consumers"):
        consumer_shards(URLS[:3], seed=0, epoch=0, shuffle=False, info=ConsumerInfo(0, 2, 0, 2))


def test_shard_order_is_seeded_by_epoch():
    e0 = epoch_order(URLS, seed=0, epoch=0, shuffle=True)
    assert e0 == epoch_order(URLS, seed=0, epoch=0, shuffle=True)
    assert e0 != epoch_order(URLS, seed=0, epoch=1, shuffle=True)
    assert sorted(e0) == sorted(URLS) and e0 != URLS
    assert epoch_order(URLS, seed=0, epoch=5, shuffle=False) == URLS


def test_resampled_shards_differ_per_worker_and_repeat():
    a = resampled_shards(URLS[:3], seed=0, epoch=0, info=ConsumerInfo(0, 1, 0, 2))
    b = resampled_shards(URLS[:3], seed=0, epoch=0, info=ConsumerInfo(0, 1, 1, 2))
    da, db = [next(a) for _ in range(30)], [next(b) for _ in range(30)]
    assert set(da) == set(URLS[:3]) and da != db


def test_rank_env_as_set_by_torchrun(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("WORKER", "2")
    monkeypatch.setenv("NUM_WORKERS", "3")
    assert consumer_info() == ConsumerInfo(1, 4, 2, 3)


def test_ranks_and_dataloader_workers_read_disjoint_complete_shares(build, tokenizer, monkeypatch):
    monkeypatch.delenv("WORKER", raising=False)
    monkeypatch.delenv("NUM_WORKERS", raising=False)
    all_keys = sorted(keys_of(pair_pipeline(build, tokenizer=tokenizer, shuffle=False)))
    assert len(all_keys) == 20
    per_rank = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        ds = pair_pipeline(build, tokenizer=tokenizer, image_size=32, max_text_len=8, seed=3)
        loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate)
        keys = [k for batch in loader for k in batch["key"]]
        assert len(keys) == len(set(keys)) == 10
        per_rank.append(set(keys))
    assert per_rank[0].isdisjoint(per_rank[1])
    assert sorted(per_rank[0] | per_rank[1]) == all_keys
    monkeypatch.setenv("WORLD_SIZE", "3")  # 3 ranks x 2 workers = 6 consumers > 4 shards
    monkeypatch.setenv("RANK", "0")
    ds = pair_pipeline(build, tokenizer=tokenizer)
    with pytest.raises(NotEnoughShardsError):
        next(iter(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate)))


def test_epochs_change_the_order_and_set_epoch_reaches_workers(build, tokenizer):
    ds = pair_pipeline(build, tokenizer=tokenizer, image_size=32, shuffle_buffer=8, seed=0)
    first, second = keys_of(ds), keys_of(ds)  # in-process: each iteration is the next epoch
    assert sorted(first) == sorted(second) and first != second
    ds.set_epoch(0)
    assert keys_of(ds) == first
    assert keys_of(ds) == first  # an explicit epoch stays until changed
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=1)
    ds.set_epoch(1)
    assert [s["key"] for s in loader] == second


def test_with_epoch_and_resampled_give_fixed_length_epochs(build, tokenizer):
    ds = pair_pipeline(build, tokenizer=tokenizer, image_size=32, resampled=True).with_epoch(37)
    keys = keys_of(ds)
    assert len(keys) == 37 and len(set(keys)) <= 20
    fixed = pair_pipeline(build, tokenizer=tokenizer, image_size=32, epoch_length=50, shuffle=False)
    keys = keys_of(fixed)
    assert len(keys) == 50 and keys[:20] == keys[20:40] and len(set(keys)) == 20  # passes over the shards repeat


def test_fsspec_urls_stream_through_our_pipeline_and_webdataset(build, tokenizer):
    fs = fsspec.filesystem("memory")
    for i in range(4):
        fs.pipe(f"/pmdtest/shards/pairs-{i:06d}.tar", (build / "shards" / f"pairs-{i:06d}.tar").read_bytes())
    manifest = json.loads((build / "manifest.json").read_text())
    fs.pipe("/pmdtest/manifest.json", json.dumps(manifest).encode())
    try:
        pattern = "memory://pmdtest/shards/pairs-{000000..000003}.tar"
        got = sorted(keys_of(pair_pipeline(pattern, tokenizer=tokenizer, image_size=32)))
        assert got == sorted(keys_of(pair_pipeline(build, tokenizer=tokenizer, image_size=32)))
        assert sorted(keys_of(pair_pipeline("memory://pmdtest", tokenizer=tokenizer, image_size=32))) == got
        table = dict(wds_gopen.gopen_schemes)
        try:
            assert "memory" in register_fsspec_opener()  # webdataset itself, once a program asks for it
            native = wds.WebDataset(pattern, shardshuffle=False, empty_check=False)
            assert sorted(s["__key__"] for s in native) == got
        finally:
            wds_gopen.gopen_schemes.clear()
            wds_gopen.gopen_schemes.update(table)
    finally:
        fs.rm("/pmdtest", recursive=True)


def test_importing_the_loaders_leaves_webdataset_gopen_alone():
    import subprocess
    import sys

    code = ("import importlib; g = importlib.import_module('webdataset.gopen'); before = dict(g.gopen_schemes); "
            "import pmd.loaders, pmd.loaders.shards; print(dict(g.gopen_schemes) == before, 'memory' in before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


@pytest.mark.parametrize("fmt", ["pax", "gnu", "ustar"])
def test_tar_reader_matches_tarfile(tmp_path, fmt):
    import io
    import tarfile

    from pmd.loaders.shards import TarFormatError, iter_tar

    path = tmp_path / f"x-{fmt}.tar"
    entries = [("d" * 120 + "/k1.jpg", b"x" * 700), ("d" * 120 + "/k1.txt", b"hi"), ("k2.json", b"{}"), ("k2.txt", b"")]
    with tarfile.open(path, "w", format={"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT,
                                         "ustar": tarfile.USTAR_FORMAT}[fmt]) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo("folder")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    samples = list(iter_tar(str(path)))
    assert [(s.key, s.members) for s in samples] == [
        ("d" * 120 + "/k1", {"jpg": b"x" * 700, "txt": b"hi"}),
        ("k2", {"json": b"{}", "txt": b""}),
    ]
    data = bytearray(path.read_bytes())
    data[150] ^= 0x01  # break the first header's checksum
    (tmp_path / "bad.tar").write_bytes(bytes(data))
    with pytest.raises(TarFormatError):
        list(iter_tar(str(tmp_path / "bad.tar")))


def test_loaders_do_not_import_pyspark():
    import subprocess
    import sys

    code = "import sys, pmd.loaders; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
