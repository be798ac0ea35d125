"""Byte-reproducible zip, tar.gz and gzip writers.

Archives normally embed the current time, the user and the file order of the file system; here
every entry has a fixed mtime and owner, entries are sorted, and gzip headers carry mtime 0, so the
same input gives the same bytes on every run and machine.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path
from typing import Iterable

FIXED_MTIME = 1262304000  # 2010-01-01T00:00:00Z
_ZIP_DATE = (2010, 1, 1, 0, 0, 0)


def write_zip(path: Path, members: Iterable[tuple[str, bytes]]) -> None:
    """A zip with members stored (JPEGs do not compress), sorted by name, fixed dates and modes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, data)


def write_tar_gz(path: Path, members: Iterable[tuple[str, bytes]]) -> None:
    """A gzip-compressed ustar tar with sorted members, fixed mtime and uid/gid 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))


def gzip_bytes(data: bytes) -> bytes:
    """gzip with mtime 0 and no file name in the header."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()
