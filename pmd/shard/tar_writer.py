"""Reproducible WebDataset tar shards and their Parquet sidecars, committed atomically.

A sample is ``(key, {ext: bytes})`` and becomes tar members ``{key}.{ext}``. Every header field
that could vary between runs is fixed (mtime 0, uid/gid 0, empty user/group names, mode 0644,
PAX format, UTF-8) and members are written in a fixed order, so the same samples always give a
byte-identical tar, hence the same sha256 on a laptop and on a cluster. Files are written to
``.<name>.tmp-<pid>`` beside ``path`` and renamed into place: a reader never sees half a shard,
and a rerun that finds the final name knows the shard is complete.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from pmd.ids import is_valid_key
from pmd.shard.tar_format import BLOCK, archive_end, iter_members, member_header, padding

Sample = tuple[str, dict[str, bytes]]


@dataclass(frozen=True)
class ShardInfo:
    """A finished shard: where it is, how many samples, its size and sha256 (and its sidecar)."""

    path: str
    samples: int
    bytes: int
    sha256: str
    parquet: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["parquet"] is None:
            del d["parquet"]
        return d


class _HashingWriter:
    """File wrapper that hashes and counts what goes through it (no second read of the shard)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f, self.sha = f, hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self._f.write(data)

    def tell(self) -> int:
        return self.size


def tmp_name(path: str | os.PathLike[str]) -> Path:
    """``dir/.name.tmp-<pid>``: beside the target (same filesystem, so the rename is atomic) and
    hidden, so Spark and pyarrow dataset readers skip one left behind by a killed process."""
    p = Path(path)
    return p.parent / f".{p.name}.tmp-{os.getpid()}"


def _check_ext(key: str, ext: str) -> None:
    if not ext or ext.startswith(".") or ext.endswith(".") or "/" in ext or "\\" in ext or "\x00" in ext:
        raise ValueError(f"sample {key!r}: bad member extension {ext!r}")


def _ordered(key: str, members: dict[str, bytes], ext_order: Sequence[str] | None) -> list[tuple[str, bytes]]:
    if not members:
        raise ValueError(f"sample {key!r} has no members")
    for ext in members:
        _check_ext(key, ext)
    if ext_order:
        rank = {e: i for i, e in enumerate(ext_order)}
        names = sorted(members, key=lambda e: (rank.get(e, len(rank)), e))
    else:
        names = sorted(members)
    return [(e, members[e]) for e in names]


class TarShardWriter:
    """Write one reproducible WebDataset tar incrementally (``add`` one sample at a time), atomically.

    The one tar writer of pmd: ``write_tar_shard`` and every build's shard step go through it, so the
    bytes (and the sha256 in the manifest) are the same whichever stage wrote a shard. Use as a context
    manager: a clean exit renames the temp file into place and sets :attr:`info`; an exception removes
    the temp file, so no partial shard is ever visible under ``path``.
    Keys must be valid ``pmd.ids`` keys (hex: no dots, since WebDataset splits member names at the
    first dot) and unique within the shard. Extensions may hold dots (``000.jpg``). Members of a
    sample are written in ``ext_order`` (unlisted ones after, sorted), or sorted by extension.
    ``fsync`` forces the bytes to disk before the rename (off by default: it costs seconds per shard
    on busy disks, and the manifest's sha256 already catches a shard damaged by a machine crash).
    """

    def __init__(self, path: str | os.PathLike[str], ext_order: Sequence[str] | None = None,
                 fsync: bool = False) -> None:
        self.path = Path(path)
        self.ext_order = tuple(ext_order) if ext_order else None
        self.fsync = fsync
        self.info: ShardInfo | None = None
        self._seen: set[str] = set()
        self._raw: BinaryIO | None = None
        self._hw: _HashingWriter | None = None

    def __enter__(self) -> "TarShardWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = tmp_name(self.path)
        self._raw = open(self._tmp, "wb")
        self._hw = _HashingWriter(self._raw)
        return self

    def add(self, key: str, members: dict[str, bytes | str]) -> None:
        """Append one sample (``{ext: bytes}``; ``str`` values are written as UTF-8)."""
        hw = self._hw
        if hw is None:
            raise RuntimeError("TarShardWriter.add outside its with-block")
        if not isinstance(key, str) or not is_valid_key(key):
            raise ValueError(f"bad sample key {key!r}: keys must be lowercase hex without dots")
        if key in self._seen:
            raise ValueError(f"duplicate sample key {key!r} in shard {self.path.name}")
        ordered = _ordered(key, members, self.ext_order)  # validates before any byte is written
        self._seen.add(key)
        for ext, data in ordered:
            self.add_member(f"{key}.{ext}", data)

    def add_member(self, name: str, data: bytes | str) -> None:
        """Append one raw member named ``name``, unchecked and not counted as a sample: for test
        fixtures that need names a build never writes (other keys, duplicates, directories)."""
        hw = self._hw
        if hw is None:
            raise RuntimeError("TarShardWriter.add_member outside its with-block")
        if isinstance(data, str):
            data = data.encode("utf-8")
        hw.write(member_header(name, len(data)))
        hw.write(data)
        if len(data) % BLOCK:
            hw.write(padding(len(data)))

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        raw, hw = self._raw, self._hw
        self._raw = self._hw = None
        assert raw is not None and hw is not None
        try:
            if exc_type is None:
                hw.write(archive_end(hw.size))
                if self.fsync:
                    raw.flush()
                    os.fsync(raw.fileno())
            raw.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
                self.info = ShardInfo(str(self.path), len(self._seen), hw.size, hw.sha.hexdigest())
        finally:
            if self.info is None:
                raw.close()
                self._tmp.unlink(missing_ok=True)


def write_tar_shard(path: str | os.PathLike[str], samples: Iterable[Sample],
                    ext_order: Sequence[str] | None = None, fsync: bool = False) -> ShardInfo:
    """Write ``samples`` as a reproducible WebDataset tar at ``path`` (atomically) and describe it.

    ``(key, {ext: bytes})`` pairs through :class:`TarShardWriter` (its rules for keys, member order
    and ``fsync``). Raises ``ValueError`` on a bad key; no partial file is left behind on any error.
    """
    with TarShardWriter(path, ext_order, fsync) as w:
        for key, members in samples:
            w.add(key, members)
    assert w.info is not None
    return w.info


def read_tar_shard(path: str | os.PathLike[str]) -> Iterator[Sample]:
    """Samples of a shard in file order, grouped like WebDataset does (key = name up to the first dot)."""
    current: str | None = None
    members: dict[str, bytes] = {}
    with open(path, "rb") as f:
        for name, data in iter_members(f):
            key, _, ext = name.partition(".")
            if current is not None and key != current:
                yield current, members
                members = {}
            current = key
            members[ext] = data
    if current is not None:
        yield current, members


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def shard_exists_complete(path: str | os.PathLike[str], expected_sha256: str | None = None) -> bool:
    """True when a finished shard is at ``path`` (writers rename only complete files into place) and,
    if ``expected_sha256`` is given, its content hash matches (resume after a crash or an edit)."""
    p = Path(path)
    if not p.is_file():
        return False
    return expected_sha256 is None or sha256_file(p) == expected_sha256


def write_parquet_sidecar(path: str | os.PathLike[str], rows: list[dict[str, Any]] | pa.Table,
                          schema: pa.Schema | None = None) -> Path:
    """Write rows (dicts or a table) as Parquet at ``path`` via a temp name and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(rows, pa.Table):
        table = rows if schema is None else rows.cast(schema)
    elif rows:
        table = pa.Table.from_pylist(rows, schema=schema)
    elif schema is not None:
        table = schema.empty_table()
    else:
        raise ValueError(f"{path}: cannot write an empty sidecar without a schema")
    tmp = tmp_name(path)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def plan_shards(n_samples: int, samples_per_shard: int) -> list[range]:
    """Contiguous index ranges of at most ``samples_per_shard`` covering ``range(n_samples)``."""
    if samples_per_shard <= 0:
        raise ValueError(f"samples_per_shard must be > 0, got {samples_per_shard}")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    return [range(s, min(s + samples_per_shard, n_samples)) for s in range(0, n_samples, samples_per_shard)]
