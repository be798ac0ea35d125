"""Build manifests: write, read, verify, fingerprint."""

from __future__ import annotations

import json

import pytest

from pmd.counters import CounterBook, StageCounters
from pmd.errors import UserError
from pmd.shard.manifest import manifest_fingerprint, read_manifest, verify_manifest, versions, write_manifest
from pmd.shard.tar_writer import write_parquet_sidecar, write_tar_shard


def _build(root, n_shards=2):
    shards = []
    for s in range(n_shards):
        info = write_tar_shard(root / "shards" / f"pairs-{s:06d}.tar",
                               [(f"{s:02x}{i:02x}", {"txt": f"c{s}{i}".encode()}) for i in range(3)])
        side = write_parquet_sidecar(root / "shards" / f"pairs-{s:06d}.parquet", [{"key": f"{s:02x}00"}])
        shards.append(info if s % 2 == 0 else {**info.to_dict(), "parquet": str(side)})
    book = CounterBook([StageCounters("shard", "coco", 6, 6)])
    return shards, book


def test_write_and_read(tmp_path):
    shards, book = _build(tmp_path)
    path = write_manifest(tmp_path, "pmd-pairs", shards, {"seed": 0, "out": str(tmp_path)}, book, extra={"note": "x"})
    assert path == tmp_path / "manifest.json"
    m = read_manifest(tmp_path)
    assert m["kind"] == "pmd-pairs" and m["format_version"] == 1
    assert [s["path"] for s in m["shards"]] == ["shards/pairs-000000.tar", "shards/pairs-000001.tar"]
    assert m["shards"][1]["parquet"] == "shards/pairs-000001.parquet"
    assert m["total_samples"] == 6
    assert m["counters"] == [{"stage": "shard", "source": "coco", "input": 6, "kept": 6, "dropped": {}, "failed": {}}]
    assert m["note"] == "x" and m["created"].endswith("+00:00")
    assert m["versions"]["pyarrow"] and m["versions"]["python"]
    assert verify_manifest(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


def test_verify_reports_tampering_and_missing(tmp_path):
    shards, book = _build(tmp_path)
    write_manifest(tmp_path, "pmd-pairs", shards, {}, book)
    tar = tmp_path / "shards" / "pairs-000000.tar"
    data = bytearray(tar.read_bytes())
    data[600] ^= 0xFF
    tar.write_bytes(bytes(data))
    problems = verify_manifest(tmp_path)
    assert len(problems) == 1 and problems[0].startswith("shards/pairs-000000.tar: sha256")
    (tmp_path / "shards" / "pairs-000001.tar").unlink()
    (tmp_path / "shards" / "pairs-000001.parquet").unlink()
    problems = verify_manifest(tmp_path)
    assert "shards/pairs-000001.tar: missing" in problems
    tar.write_bytes(bytes(data[:-512]))
    assert any("size" in p for p in verify_manifest(tmp_path))


def test_verify_missing_manifest(tmp_path):
    assert "no manifest.json" in verify_manifest(tmp_path)[0]
    with pytest.raises(UserError):
        read_manifest(tmp_path)


def test_fingerprint_ignores_volatile_fields(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        shards, book = _build(root)
        write_manifest(root, "pmd-pairs", shards, {"seed": 0, "out_dir": str(root), "input": str(root / "in")},
                       book, extra={"wall_time": 1.5 if root == a else 9.0})
    ma, mb = read_manifest(a), read_manifest(b)
    mb["created"] = "1999-01-01T00:00:00+00:00"
    assert manifest_fingerprint(ma) == manifest_fingerprint(mb) == manifest_fingerprint(a)
    mb["shards"][0]["sha256"] = "0" * 64
    assert manifest_fingerprint(ma) != manifest_fingerprint(mb)


def test_reserved_extra_and_outside_paths_rejected(tmp_path):
    shards, book = _build(tmp_path)
    with pytest.raises(ValueError, match="reserved"):
        write_manifest(tmp_path, "pmd-pairs", shards, {}, book, extra={"shards": []})
    with pytest.raises(ValueError, match="outside"):
        write_manifest(tmp_path / "other", "pmd-pairs", shards, {}, book)
    with pytest.raises(ValueError, match="lacks"):
        write_manifest(tmp_path, "pmd-pairs", [{"path": "x.tar"}], {}, book)


def test_counters_as_list_and_config_dataclass(tmp_path):
    from pmd.download.engine import DownloadConfig
    path = write_manifest(tmp_path, "interleaved-docs", [], DownloadConfig(), [{"stage": "x"}])
    m = json.loads(path.read_text())
    assert m["total_samples"] == 0 and m["counters"] == [{"stage": "x"}]
    assert m["config"]["image_size"] == 256 and m["config"]["max_aspect_ratio"] == "inf"
    assert set(versions()) >= {"python", "pmd", "pyspark", "pyarrow", "img2dataset", "webdataset", "pillow"}


def test_paths_relative_to_cwd_are_rebased(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    info = write_tar_shard("build/shards/pairs-000000.tar", [("00aa", {"txt": b"x"})])
    assert info.path == "build/shards/pairs-000000.tar"
    write_manifest(tmp_path / "build", "pmd-pairs", [info], {}, [])
    assert read_manifest(tmp_path / "build")["shards"][0]["path"] == "shards/pairs-000000.tar"
    assert verify_manifest("build") == []


def test_one_reader_checks_kind_and_reads_fsspec_urls(tmp_path):
    import fsspec

    from pmd.shard import manifest_shards, shard_entries

    shards, book = _build(tmp_path)
    write_manifest(tmp_path, "pmd-pairs", shards, {}, book)
    assert read_manifest(tmp_path, kind="pmd-pairs")["kind"] == "pmd-pairs"
    assert read_manifest(tmp_path / "manifest.json", kind=("interleaved-docs", "pmd-pairs"))["total_samples"] == 6
    with pytest.raises(UserError, match="build kind 'pmd-pairs'; expected 'interleaved-docs'"):
        read_manifest(tmp_path, kind="interleaved-docs")
    assert manifest_shards(tmp_path) == [str(tmp_path / "shards" / f"pairs-00000{i}.tar") for i in range(2)]
    assert manifest_shards(tmp_path, "parquet") == [str(tmp_path / "shards" / "pairs-000001.parquet")]
    assert [e["samples"] for e in shard_entries(tmp_path).values()] == [3, 3]
    fs = fsspec.filesystem("memory")
    fs.pipe("/h7m/b/manifest.json", (tmp_path / "manifest.json").read_bytes())
    try:
        assert read_manifest("memory://h7m/b")["total_samples"] == 6
        assert manifest_shards("memory://h7m/b/manifest.json")[0] == "memory://h7m/b/shards/pairs-000000.tar"
        with pytest.raises(UserError, match="no manifest.json at memory://h7m/none"):
            read_manifest("memory://h7m/none")
    finally:
        fs.rm("/h7m", recursive=True)


def test_reader_errors_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_manifest(tmp_path / "nope")
    assert read_manifest(tmp_path, missing_ok=True) == {}
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not a pmd manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"kind": "videos"}')
    with pytest.raises(UserError, match="unknown build kind 'videos'"):
        read_manifest(tmp_path, kind=("pmd-pairs", "interleaved-docs"))
    with pytest.raises(UserError, match="no shards list"):
        read_manifest(tmp_path)


def test_interleaved_manifest_records_walker_and_textstats(tmp_path):
    from pmd.interleaved import extract, metrics

    m = json.loads(write_manifest(tmp_path, "interleaved-docs", [], {}, []).read_text())
    assert m["versions"]["walker"] == extract.WALKER in ("compiled", "python")
    assert m["versions"]["textstats"] == metrics.TEXTSTATS in ("compiled", "python")
    pairs = json.loads(write_manifest(tmp_path / "p", "pmd-pairs", [], {}, []).read_text())
    assert "walker" not in pairs["versions"]  # a pairs build runs no HTML walk


def test_code_that_depends_on_internals_pins_exact_versions():
    """The compiled walk reads selectolax 1.0.2's lexbor structs; pmd/download drives img2dataset 1.47's
    internals: pyproject.toml and constraints.txt pin exactly those, and nothing unused is required."""
    import tomllib
    from pathlib import Path

    import importlib

    import importlib.util

    mods = [importlib.import_module(m) for m in ("pmd.interleaved.compiled", "pmd.interleaved.extract")
            if importlib.util.find_spec(m) is not None]
    verified = next(m.VERIFIED_SELECTOLAX for m in mods if hasattr(m, "VERIFIED_SELECTOLAX"))
    root = Path(__file__).resolve().parents[1]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(d.split("==") for d in deps if "==" in d)
    assert pins == {"img2dataset": "1.47.0", "selectolax": "1.0.2"} and {"1.0.2"} == set(verified)
    constraints = dict(line.split("==") for line in (root / "constraints.txt").read_text().splitlines()
                       if "==" in line and not line.startswith("#"))
    assert all(constraints[k] == v for k, v in pins.items())
    assert not any(d.startswith("tqdm") for d in deps)
