"""The loaders check shards against the build's manifest: damaged copies of the real sample build.

A build directory says how many samples (and bytes, and which sha256) each shard holds; a shard that
is missing, empty, cut short at a member boundary or altered must be a counted ``shard`` error (raised
under ``on_error="raise"``), never a silently smaller epoch (issue 15, item 3).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from pmd.loaders import CorruptSampleError, CorruptSampleWarning
from pmd.loaders.shards import ShardStream
from pmd.shard import read_manifest

pytestmark = [pytest.mark.slow, pytest.mark.spark]  # the session's sample build (Spark); each test is quick


def _keys(raw, rng):
    return {"key": raw.key}


def _copy(build: Path, dst: Path) -> Path:
    """The manifest and shards of ``build`` (what a loader reads), copied so they can be damaged."""
    dst.mkdir()
    shutil.copy2(build / "manifest.json", dst / "manifest.json")
    shutil.copytree(build / "shards", dst / "shards")
    return dst


def _read(build: Path, **kw) -> tuple[list[str], dict[str, int], list[str]]:
    ds = ShardStream(build, decode=_keys, shuffle=False, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CorruptSampleWarning)
        keys = [s["key"] for s in ds]
    messages = [str(w.message) for w in caught if issubclass(w.category, CorruptSampleWarning)]
    return keys, ds.errors.as_dict(), messages


def _member_ends(tar: Path) -> list[int]:
    """Byte offsets where each member (header + data + padding) of a ustar archive ends."""
    data = tar.read_bytes()
    ends, pos = [], 0
    while pos + 512 <= len(data) and data[pos:pos + 512] != b"\0" * 512:
        size = int(data[pos + 124:pos + 136].split(b"\0", 1)[0].strip() or b"0", 8)
        pos += 512 + (size + 511) // 512 * 512
        ends.append(pos)
    return ends


@pytest.fixture()
def damaged(sample_build, tmp_path):
    return _copy(sample_build, tmp_path / "build")


def test_intact_copy_reads_every_sample_without_errors(damaged):
    m = read_manifest(damaged)
    keys, errors, messages = _read(damaged, verify="sha256")
    assert len(keys) == len(set(keys)) == m["total_samples"] > 0
    assert sum(errors.values()) == 0 and messages == []


def test_deleted_shard_is_a_counted_error_and_raises_when_asked(damaged):
    m = read_manifest(damaged)
    assert len(m["shards"]) >= 2, "the sample build should have several shards"
    gone = m["shards"][1]
    (damaged / gone["path"]).unlink()
    keys, errors, messages = _read(damaged)
    assert len(keys) == m["total_samples"] - gone["samples"]
    assert errors["shard"] == 1 and sum(errors.values()) == 1
    assert len(messages) == 1 and "missing shard" in messages[0] and f"lists {gone['samples']} samples" in messages[0]
    with pytest.raises(CorruptSampleError, match="missing shard"):
        _read(damaged, on_error="raise")


def test_zero_byte_shard_is_caught(damaged):
    m = read_manifest(damaged)
    empty = m["shards"][0]
    (damaged / empty["path"]).write_bytes(b"")
    keys, errors, messages = _read(damaged)
    assert len(keys) == m["total_samples"] - empty["samples"]
    assert errors["shard"] == 1 and "empty shard" in messages[0]
    with pytest.raises(CorruptSampleError, match="empty shard"):
        _read(damaged, on_error="raise")


def test_tar_cut_at_a_member_boundary_is_caught(damaged):
    m = read_manifest(damaged)
    entry = m["shards"][-1]
    tar = damaged / entry["path"]
    ends = _member_ends(tar)
    per_sample = len(ends) // entry["samples"]
    assert per_sample * entry["samples"] == len(ends)
    kept = entry["samples"] // 2
    data = tar.read_bytes()
    tar.write_bytes(data[:ends[kept * per_sample - 1]])  # ends exactly after sample `kept`: a valid-looking tar
    keys, errors, messages = _read(damaged)
    assert len(keys) == m["total_samples"] - entry["samples"] + kept
    assert errors["shard"] == 1 and f"short shard: {kept} of the {entry['samples']} samples" in messages[0]
    with pytest.raises(CorruptSampleError, match="short shard"):
        _read(damaged, on_error="raise")
    # cut inside a sample (after its first member): the sample count still falls short
    tar.write_bytes(data[:ends[kept * per_sample]])
    _, errors, messages = _read(damaged)
    assert errors["shard"] == 1 and "short shard" in messages[0]


def test_altered_bytes_are_caught_by_sha256_when_asked(damaged):
    m = read_manifest(damaged)
    entry = m["shards"][0]
    tar = damaged / entry["path"]
    data = bytearray(tar.read_bytes())
    ends = _member_ends(tar)
    data[ends[0] + 512] ^= 0x01  # first data byte of the second member: headers and sizes stay valid
    tar.write_bytes(bytes(data))
    _, errors, _ = _read(damaged, verify="samples")
    assert errors["shard"] == 0  # same count and size: only the hash can tell
    _, errors, messages = _read(damaged, verify="sha256")
    assert errors["shard"] == 1 and "sha256" in messages[0]
    _, errors, _ = _read(damaged, verify="none")
    assert errors["shard"] == 0


def test_plain_shard_paths_are_not_checked(damaged):
    """Shards named directly (no manifest) have nothing to be compared with: read as they are."""
    m = read_manifest(damaged)
    entry = m["shards"][0]
    tar = damaged / entry["path"]
    ends = _member_ends(tar)
    tar.write_bytes(tar.read_bytes()[:ends[2]])
    keys, errors, _ = _read([str(tar)])
    assert 1 <= len(keys) < entry["samples"] and errors["shard"] == 0
