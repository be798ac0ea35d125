"""``manifest.json``: the last file a build writes, describing every shard, the config and versions.

Written atomically after all shards exist, so its presence means the build finished. Shard paths
are relative to the build directory so a build can be moved or synced to object storage.
``verify_manifest`` re-checks sizes and sha256s; ``manifest_fingerprint`` hashes the manifest
without its volatile fields (creation time, wall times, absolute paths) so two builds of the same
config can be compared with one string.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import posixpath
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

from pmd import schemas
from pmd.counters import CounterBook
from pmd.errors import UserError
from pmd.shard.tar_writer import ShardInfo, sha256_file, tmp_name

MANIFEST_NAME = "manifest.json"
PAIRS_KIND = "pmd-pairs"
INTERLEAVED_KIND = "interleaved-docs"
KINDS = (PAIRS_KIND, INTERLEAVED_KIND)
FORMAT_VERSION = 1
_RESERVED = ("kind", "format_version", "shards", "total_samples", "config", "versions", "counters", "created")
_VERSIONED = ("pmd", "pyspark", "pyarrow", "img2dataset", "webdataset", "pillow", "numpy", "fasttext-numpy2",
              "selectolax", "fastwarc", "tokenizers", "torch")
#: Keys dropped by ``manifest_fingerprint`` wherever they occur.
VOLATILE_KEYS = frozenset({"created", "wall_time", "wall_seconds", "wall_time_s", "duration", "duration_s",
                           "elapsed", "elapsed_s", "start_time", "end_time", "hostname", "build_dir", "out_dir"})


def versions() -> dict[str, str | None]:
    """Versions of Python and the packages that shape a build's bytes (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _interleaved_runtime() -> dict[str, str | None]:
    """Which HTML walker and text-statistics module an interleaved build ran ("compiled"/"python").

    They give the same records but differ 2x in speed, so a slow build can be explained from its
    manifest. Taken from ``pmd.interleaved.extract`` (``runtime_info()`` when it offers one, else its
    ``WALKER``) and ``pmd.interleaved.filters``; a key is None when its module cannot say.
    """
    out: dict[str, str | None] = {"walker": None, "textstats": None}
    try:
        from pmd.interleaved import extract
    except ImportError:
        extract = None  # type: ignore[assignment]
    if extract is not None:
        info = getattr(extract, "runtime_info", None)
        if callable(info):
            out.update({k: (None if v is None else str(v)) for k, v in dict(info()).items()})
        elif getattr(extract, "WALKER", None) is not None:
            out["walker"] = str(extract.WALKER)
    if out.get("textstats") is None:
        try:
            from pmd.interleaved.filters import TEXTSTATS
            out["textstats"] = TEXTSTATS
        except ImportError:
            pass
    return out


def runtime_versions(kind: str | None = None) -> dict[str, str | None]:
    """What ``write_manifest`` records under ``versions``: ``versions()`` plus, for interleaved builds,
    the walker and text-stat module that ran (``walker``, ``textstats``)."""
    out = versions()
    if kind == INTERLEAVED_KIND:
        out.update(_interleaved_runtime())
    return out


def _manifest_path(build_dir: str | os.PathLike[str]) -> Path:
    p = Path(build_dir)
    return p if p.name == MANIFEST_NAME and not p.is_dir() else p / MANIFEST_NAME


def _relative(build_dir: Path, p: str | None) -> str | None:
    if p is None:
        return None
    path = Path(p)
    if not path.is_absolute():
        if (build_dir / path).exists() or not path.exists():
            return path.as_posix()  # already relative to the build directory
        path = path.resolve()  # relative to the working directory
    try:
        return path.resolve().relative_to(build_dir.resolve()).as_posix()
    except ValueError:
        raise ValueError(f"shard {p} is outside the build directory {build_dir}") from None


def _shard_row(build_dir: Path, shard: ShardInfo | dict[str, Any]) -> dict[str, Any]:
    d = shard.to_dict() if isinstance(shard, ShardInfo) else dict(shard)
    missing = [k for k in ("path", "samples", "bytes", "sha256") if k not in d]
    if missing:
        raise ValueError(f"shard entry {d!r} lacks {missing}")
    row = {"path": _relative(build_dir, d.pop("path")), "samples": int(d.pop("samples")),
           "bytes": int(d.pop("bytes")), "sha256": str(d.pop("sha256"))}
    if d.get("parquet") is not None:
        row["parquet"] = _relative(build_dir, d.pop("parquet"))
    d.pop("parquet", None)
    row.update(d)  # extra per-shard fields the caller chose to record
    return row


def _plain(value: Any) -> Any:
    """JSON-ready: dataclasses as dicts, non-finite floats as strings (strict JSON has no Infinity)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        from pmd.config import to_dict
        value = to_dict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_manifest(build_dir: str | os.PathLike[str], kind: str, shards: Iterable[ShardInfo | dict[str, Any]],
                   config: dict[str, Any] | Any, counters: CounterBook | list[dict[str, Any]],
                   extra: dict[str, Any] | None = None) -> Path:
    """Write ``build_dir/manifest.json`` atomically and return its path.

    ``shards`` are ``ShardInfo`` or dicts (path, samples, bytes, sha256, optional parquet); paths
    become relative to ``build_dir``. The shard table is validated against ``schemas/manifest.json``.
    ``config`` may be a dict or a config dataclass; ``extra`` adds top-level keys (not reserved ones).
    """
    root = Path(build_dir)
    rows = [_shard_row(root, s) for s in shards]
    schemas.table_from_rows([{k: r[k] for k in ("path", "samples", "bytes", "sha256")} for r in rows], "manifest")
    paths = [r["path"] for r in rows]
    if len(set(paths)) != len(paths):
        raise ValueError("manifest lists a shard path twice")
    clash = sorted(set(extra or {}) & set(_RESERVED))
    if clash:
        raise ValueError(f"extra manifest keys {clash} are reserved")
    manifest: dict[str, Any] = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "shards": rows,
        "total_samples": sum(r["samples"] for r in rows),
        "config": _plain(config),
        "versions": runtime_versions(kind),
        "counters": counters.to_list() if isinstance(counters, CounterBook) else list(counters),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **_plain(extra or {}),
    }
    path = _manifest_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    try:
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _is_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def manifest_location(source: str | os.PathLike[str]) -> str:
    """The manifest path or URL of a build directory, its manifest file, or an fsspec URL of either."""
    s = os.fspath(source)
    if _is_url(s):
        return s if s.rstrip("/").endswith(MANIFEST_NAME) else s.rstrip("/") + "/" + MANIFEST_NAME
    return str(_manifest_path(s.removeprefix("file://")))


def read_manifest(source: str | os.PathLike[str], kind: str | Sequence[str] | None = None, *,
                  missing_ok: bool = False, hint: str = "") -> dict[str, Any]:
    """The manifest of a build: a directory, its ``manifest.json``, or an fsspec URL of either.

    The one reader of ``manifest.json`` (builds, loaders, stats, trainer, export all call it), so a
    damaged or foreign file gives the same one-line ``UserError`` everywhere. ``kind`` (one or several)
    is checked; ``missing_ok`` returns ``{}`` when there is no manifest yet (the dataset card can be
    written before it); ``hint`` is appended to the error when the build is absent (how to make one).
    """
    loc = manifest_location(source)
    tail = f". {hint}" if hint else ""
    if _is_url(loc):
        import fsspec

        try:
            with fsspec.open(loc, "rt", encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            if missing_ok:
                return {}
            raise UserError(f"no {MANIFEST_NAME} at {loc}: the build did not finish (or this is not a build){tail}") from None
        except OSError as e:
            raise UserError(f"{loc}: unreadable manifest: {e}") from e
    else:
        path = Path(loc)
        if not path.is_file():
            if missing_ok:
                return {}
            if not path.parent.is_dir():
                raise UserError(f"build directory {path.parent} does not exist{tail}")
            raise UserError(f"{path.parent} has no {MANIFEST_NAME}, so it is not a finished build "
                            f"(or not a build directory){tail}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: unreadable manifest: {e}") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{loc}: unreadable manifest: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise UserError(f"{loc}: not a pmd manifest (a JSON {type(data).__name__}, not an object)")
    if kind is not None:
        wanted = (kind,) if isinstance(kind, str) else tuple(kind)
        if data.get("kind") not in wanted:
            what = "unknown build kind" if data.get("kind") not in KINDS else "build kind"
            raise UserError(f"{loc}: {what} {data.get('kind')!r}; expected {' or '.join(map(repr, wanted))}")
    if not isinstance(data.get("shards"), list):
        raise UserError(f"{loc}: not a pmd manifest (no shards list)")
    return data


def _with_root(source: str | os.PathLike[str] | dict[str, Any],
               base: str | os.PathLike[str] | None) -> tuple[dict[str, Any], str, Any]:
    """(manifest, its directory, the join for that directory: posix for URLs, Path for local)."""
    if isinstance(source, dict):
        if base is None:
            raise ValueError("a manifest given as a dict needs base= (its build directory)")
        m, root = source, os.fspath(base)
    else:
        loc = manifest_location(source)
        m = read_manifest(loc)
        root = posixpath.dirname(loc) if _is_url(loc) else str(Path(loc).parent)
    join = posixpath.join if _is_url(root) else (lambda a, b: str(Path(a) / b))
    return m, root, join


def manifest_shards(source: str | os.PathLike[str] | dict[str, Any], field: str = "path", *,
                    base: str | os.PathLike[str] | None = None) -> list[str]:
    """The ``field`` (``"path"`` for tars, ``"parquet"`` for sidecars) of every shard, joined onto the
    build directory: local paths for a local build, URLs for an fsspec one. ``source`` is anything
    ``read_manifest`` takes, or a manifest dict with its ``base`` directory."""
    m, root, join = _with_root(source, base)
    return [join(root, s[field]) for s in m["shards"] if s.get(field)]


def shard_entries(source: str | os.PathLike[str] | dict[str, Any], *,
                  base: str | os.PathLike[str] | None = None) -> dict[str, dict[str, Any]]:
    """Each shard's manifest row keyed by its full path/URL (as ``manifest_shards`` gives it), so a
    reader can compare what it read with what the build wrote (samples, bytes, sha256)."""
    m, root, join = _with_root(source, base)
    return {join(root, s["path"]): s for s in m["shards"] if s.get("path")}


def verify_manifest(build_dir: str | os.PathLike[str], check_sha256: bool = True) -> list[str]:
    """Problems with a build's shards: missing files, size or sha256 mismatches, wrong totals.

    An empty list means every shard (and sidecar) listed is present and intact.
    """
    path = _manifest_path(build_dir)
    root = path.parent
    try:
        m = read_manifest(path)
    except UserError as e:
        return [str(e)]
    problems: list[str] = []
    if m.get("format_version") != FORMAT_VERSION:
        problems.append(f"format_version {m.get('format_version')!r}, expected {FORMAT_VERSION}")
    total = 0
    for s in m["shards"]:
        rel = s.get("path")
        total += int(s.get("samples", 0))
        if not rel or Path(rel).is_absolute():
            problems.append(f"shard path {rel!r} is not relative to the build directory")
            continue
        p = root / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
            continue
        size = p.stat().st_size
        if size != s.get("bytes"):
            problems.append(f"{rel}: size {size} != manifest {s.get('bytes')}")
        elif check_sha256:
            digest = sha256_file(p)
            if digest != s.get("sha256"):
                problems.append(f"{rel}: sha256 {digest} != manifest {s.get('sha256')}")
        side = s.get("parquet")
        if side and not (root / side).is_file():
            problems.append(f"{side}: sidecar missing")
    if m.get("total_samples") != total:
        problems.append(f"total_samples {m.get('total_samples')} != sum of shard samples {total}")
    return problems


def _strip_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip_volatile(v) for v in value]
    if isinstance(value, str) and (value.startswith("/") or (len(value) > 2 and value[1:3] in (":\\", ":/"))):
        return "<abs-path>"
    return value


def manifest_fingerprint(manifest: dict[str, Any] | str | os.PathLike[str]) -> str:
    """sha256 of the manifest without volatile fields: equal for two builds of the same inputs and config.

    Accepts a manifest dict, a build directory or a manifest path. Drops ``VOLATILE_KEYS`` at any
    depth and replaces absolute paths by a placeholder; shard sha256s, counters and config remain.
    """
    m = manifest if isinstance(manifest, dict) else read_manifest(manifest)
    canon = json.dumps(_strip_volatile(m), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()
