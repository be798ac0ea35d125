"""Where each stage's output lives and how a stage commits: ``DIR/stages/<stage>/``.

A stage writes ``data/`` (Spark Parquet, one row per input record with its outcome), then
``counters.json``, then ``_SUCCESS`` (JSON with the stage's config fingerprint) last. A rerun skips a
stage whose marker carries the same fingerprint; a killed stage has no marker and is redone from
scratch. Paths may be local or fsspec URLs (``s3://``); Spark gets the ``s3a://`` spelling.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pmd.counters import CounterBook

log = logging.getLogger(__name__)


def fs_and_path(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])


def spark_path(url: str) -> str:
    """The spelling Spark's Hadoop filesystems understand (s3:// → s3a://, local → absolute)."""
    if url.startswith("s3://"):
        return "s3a://" + url[len("s3://"):]
    if "://" in url:
        return url
    return os.path.abspath(url)


def exists(url: str) -> bool:
    fs, p = fs_and_path(url)
    return fs.exists(p)


def write_bytes_atomic(url: str, data: bytes) -> None:
    """Local: temp file + rename. Object stores: a single PUT is already all-or-nothing."""
    fs, p = fs_and_path(url)
    parent = p.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        tmp = f"{p}.tmp-{uuid.uuid4().hex}"
        with fs.open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
    else:
        with fs.open(p, "wb") as f:
            f.write(data)


def write_json_atomic(url: str, obj: Any) -> None:
    write_bytes_atomic(url, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8"))


def read_json(url: str) -> Any:
    fs, p = fs_and_path(url)
    with fs.open(p, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def remove(url: str) -> None:
    fs, p = fs_and_path(url)
    if fs.exists(p):
        fs.rm(p, recursive=True)


@dataclass(frozen=True)
class StageDir:
    out_dir: str
    stage: str

    @property
    def path(self) -> str:
        return join(self.out_dir, "stages", self.stage)

    def sub(self, name: str) -> str:
        return join(self.path, name)

    @property
    def data(self) -> str:
        return self.sub("data")

    @property
    def marker(self) -> str:
        return self.sub("_SUCCESS")

    def is_done(self, fingerprint: str) -> bool:
        if not exists(self.marker):
            return False
        try:
            return read_json(self.marker).get("fingerprint") == fingerprint
        except (ValueError, OSError):
            return False

    def reset(self) -> None:
        """Start the stage afresh: whatever a killed or outdated run left is removed."""
        remove(self.path)

    def counters(self) -> CounterBook:
        return CounterBook.from_list(read_json(self.sub("counters.json")))

    def commit(self, fingerprint: str, counters: CounterBook, extra: dict[str, Any] | None = None) -> None:
        write_json_atomic(self.sub("counters.json"), counters.to_list())
        write_json_atomic(self.marker, {"stage": self.stage, "fingerprint": fingerprint, **(extra or {})})

    def info(self) -> dict[str, Any]:
        return read_json(self.marker)
