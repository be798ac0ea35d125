"""The contract every PMD source implements, plus the file plumbing they share.

A ``Source`` turns raw upstream files into unified ``PairRecord``s. ``units`` cuts the input
into independent work units (byte ranges of big line-oriented files that start on a line
boundary and know their first line number; whole files otherwise) so that a Spark job can
parse them in parallel; ``parse`` turns one unit into records.

Counting convention (the ingest stage's unit): one outcome per *candidate pair*, i.e. per
caption. A line or JSON object carrying several captions (a COCO image, a Localized Narrative
split into sentences, a Visual Genome image with its regions) yields one ``PairRecord`` or
``Dropped`` per caption; a line or object that cannot be read at all yields exactly one
``Failure`` carrying file and line. Nothing is silently skipped: a blank line in a
line-oriented file is a ``Failure`` (``empty_line``).

Damage is per file and per row, never per run. Every subclass's ``parse`` is guarded (see
``Source.__init_subclass__``): an exception while reading one input (a truncated or fake
``.gz``/``.bz2``, an I/O error) ends that unit with one counted ``Failure`` (``input_read_error``,
with the exception's class and message) after the records it already gave, and the other units
go on. Text is decoded as UTF-8 with invalid bytes kept as lone surrogates
(``surrogateescape``), never silently replaced by U+FFFD: a record whose caption, URL or metadata
holds such bytes (e.g. an EUC-JP caption) fails with ``invalid_utf8`` instead of reaching
language ID or the output.
"""

from __future__ import annotations

import codecs
import fnmatch
import functools
import glob as _glob
import io
import lzma
import zlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import urlsplit
from typing import IO, Any, Iterator, Mapping, Sequence, Union

from pmd.errors import UserError
from pmd.records import ImageRef, PairRecord
from pmd.text.normalize import clean_caption
from pmd.verdict import Dropped, Failure

ParseResult = Union[PairRecord, Dropped, Failure]

#: Default size of one work unit of a splittable file.
DEFAULT_TARGET_BYTES = 64 << 20
_BLOCK = 8 << 20
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4")


@dataclass(frozen=True)
class InputUnit:
    """One independent piece of work: a byte range ``[start, end)`` of ``paths[0]`` (line-aligned,
    ``first_line`` = 1-based number of its first line), or a whole file / file group (``end`` None)."""

    source: str
    paths: tuple[str, ...]
    start: int = 0
    end: int | None = None
    first_line: int = 1

    @property
    def path(self) -> str:
        return self.paths[0]

    def describe(self) -> str:
        if self.end is None and self.start == 0:
            return f"{self.source}:{','.join(self.paths)}"
        return f"{self.source}:{self.path}[{self.start}:{self.end}]@line{self.first_line}"


# ----------------------------------------------------------------------------------- files

def is_local(path: str) -> bool:
    return "://" not in path and "::" not in path


def is_compressed(path: str) -> bool:
    return path.lower().endswith(_COMPRESSED)


def open_binary(path: str, decompress: bool = True) -> IO[bytes]:
    """Open a local path or fsspec URL for reading bytes; ``.gz``/``.bz2``/... are decompressed."""
    if is_local(path) and not (decompress and is_compressed(path)):
        return open(path, "rb")
    import fsspec

    return fsspec.open(path, "rb", compression="infer" if decompress else None).open()


#: Decoding errors seen by this process (``_ESCAPE`` handler). The parse guard checks records for
#: escaped bytes only once this moves during a unit, so clean input pays nothing per record.
_DECODE_ERRORS = [0]
_ESCAPE = "pmd.surrogateescape"


def _count_and_escape(exc: UnicodeError) -> tuple[str, int]:
    _DECODE_ERRORS[0] += 1
    return _SURROGATEESCAPE(exc)


_SURROGATEESCAPE = codecs.lookup_error("surrogateescape")
codecs.register_error(_ESCAPE, _count_and_escape)


def open_text(path: str) -> IO[str]:
    """UTF-8 text, universal newlines off; undecodable bytes become lone surrogates, which the parse
    guard turns into an ``invalid_utf8`` failure of the record holding them (never fatal, never U+FFFD)."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", errors=_ESCAPE, newline="")


def file_size(path: str) -> int:
    if is_local(path):
        return os.path.getsize(path)
    import fsspec

    fs, p = fsspec.core.url_to_fs(path)
    return int(fs.size(p))


def expand_paths(paths: Sequence[str], pattern: str | Sequence[str] = "*") -> list[str]:
    """Expand globs and directories (``pattern``, one or several globs, picks the files inside a
    directory, recursively); sorted, deduplicated.

    A path that matches nothing is a ``UserError``: a typo must not look like an empty source.
    """
    out: list[str] = []
    for p in paths:
        p = str(p)
        if is_local(p):
            if any(c in p for c in "*?["):
                hits = sorted(_glob.glob(p))
            elif os.path.isdir(p):
                pats = (pattern,) if isinstance(pattern, str) else tuple(pattern)
                hits = sorted(os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs
                              if any(fnmatch.fnmatch(f, pt) for pt in pats))
            elif os.path.exists(p):
                hits = [p]
            else:
                raise UserError(f"input not found: {p}")
            if not hits:
                raise UserError(f"no input files match {p!r} (pattern {pattern!r})")
            out.extend(hits)
        else:
            import fsspec

            if any(c in p.split("::")[0] for c in "*?["):
                of = fsspec.open_files(p)
                if not of:
                    raise UserError(f"no input files match {p!r}")
                out.extend(sorted(o.full_name for o in of))
            else:
                out.append(p)
    seen: set[str] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def line_aligned_ranges(path: str, target_bytes: int) -> list[tuple[int, int | None, int]]:
    """Cut a line-oriented file into ``(start, end, first_line)`` ranges of about ``target_bytes``.

    Each range starts right after a newline; line numbers are exact (newlines counted with
    ``bytes.count`` over large blocks, which reads at disk speed).
    """
    size = file_size(path)
    if target_bytes <= 0 or size <= target_bytes:
        return [(0, None, 1)]
    bounds = [0]
    with open_binary(path, decompress=False) as f:
        pos = target_bytes
        while pos < size:
            f.seek(pos - 1)
            skipped = 0
            while True:  # find the first newline at or after pos - 1
                chunk = f.read(1 << 16)
                if not chunk:
                    nl = -1
                    break
                nl = chunk.find(b"\n")
                if nl >= 0:
                    break
                skipped += len(chunk)
            if nl < 0:
                break
            b = pos - 1 + skipped + nl + 1
            if b >= size:
                break
            bounds.append(b)
            pos = b + target_bytes
        # line number of each boundary
        first_lines = [1]
        f.seek(0)
        newlines, read_pos = 0, 0
        for b in bounds[1:]:
            while read_pos < b:
                chunk = f.read(min(_BLOCK, b - read_pos))
                if not chunk:
                    break
                newlines += chunk.count(b"\n")
                read_pos += len(chunk)
            first_lines.append(newlines + 1)
    ends: list[int | None] = [*bounds[1:], None]
    return [(s, e, fl) for s, e, fl in zip(bounds, ends, first_lines)]


def iter_line_blocks(unit: InputUnit, block_bytes: int = _BLOCK) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number_of_first, lines)`` over the unit's byte range, in blocks.

    Lines are decoded as UTF-8 (bad bytes kept as lone surrogates, see ``open_text``), without
    their ``\\n`` (``\\r\\n`` is accepted). Working in blocks keeps per-line Python work minimal for fast parsers.
    """
    path = unit.path
    compressed = is_compressed(path)
    with open_binary(path) as f:
        if unit.start and not compressed:
            f.seek(unit.start)
        remaining = None if (unit.end is None or compressed) else unit.end - unit.start
        line_no = unit.first_line
        carry = b""
        while True:
            n = block_bytes if remaining is None else min(block_bytes, remaining)
            data = f.read(n) if n > 0 else b""
            if remaining is not None:
                remaining -= len(data)
            if not data:
                if carry:
                    yield line_no, [_decode(carry)]
                return
            data = carry + data
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1:]
            text = _decode(data[:cut])
            lines = text.split("\n")
            yield line_no, lines
            line_no += len(lines)


def _decode(b: bytes) -> str:
    text = b.decode("utf-8", errors=_ESCAPE)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text.endswith("\r"):
            text = text[:-1]
    return text


def iter_lines(unit: InputUnit) -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` for every line of the unit."""
    for first, lines in iter_line_blocks(unit):
        for i, line in enumerate(lines):
            yield first + i, line


def load_json(path: str) -> Any:
    """A JSON file; invalid UTF-8 inside strings stays as lone surrogates (the record holding it fails
    ``invalid_utf8``) instead of failing the whole file."""
    with open_binary(path) as f:
        data = f.read()
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        return json.loads(data.decode("utf-8", errors=_ESCAPE))


# ----------------------------------------------------------------------------------- helpers

def is_valid_url(url: str) -> bool:
    """An absolute http(s) URL with a host and no whitespace (what a downloader can fetch)."""
    if not url.startswith(("http://", "https://")):
        return False
    host = url.split("://", 1)[1].split("/", 1)[0]
    if not host or host.startswith(("@", ":")):
        return False
    if "[" in url or "]" in url:  # only brackets (IPv6 hosts) make urlsplit raise
        try:
            urlsplit(url).hostname
        except ValueError:
            return False
    return not any(c.isspace() for c in url)


def image_from(location: str, crop: Any = None) -> ImageRef:
    """A URL (``scheme://``) becomes ``ImageRef.url``; anything else a local ``path``."""
    if "://" in location and "::" not in location:
        return ImageRef(url=location, crop=crop)
    return ImageRef(path=location, crop=crop)


def join_image_root(root: str | None, rel: str) -> str:
    """``root/rel``; a root ending in ``.zip``/``.tar``/``.tar.gz`` names an archive: ``root::rel``."""
    if not root:
        return rel
    if root.lower().endswith((".zip", ".tar", ".tar.gz", ".tgz")):
        return f"{root}::{rel}"
    if "::" in root:  # archive::prefix
        return f"{root.rstrip('/')}/{rel}"
    return os.path.join(root, rel)


def coerce_option(name: str, value: Any, default: Any) -> Any:
    """Options from the command line arrive as strings; convert them to the default's type."""
    if value is None or default is None or not isinstance(value, str):
        if isinstance(default, tuple) and isinstance(value, list):
            return tuple(value)
        return value
    try:
        if isinstance(default, bool):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(v.strip() for v in value.split(",") if v.strip())
    except ValueError:
        raise UserError(f"option {name}={value!r}: expected {type(default).__name__}") from None
    return value


# ----------------------------------------------------------------------------------- the parse guard

#: Exceptions that mean "this input file cannot be read (any further)": I/O, a truncated or fake
#: compressed file (gzip raises EOFError/BadGzipFile, bz2 OSError/EOFError, xz LZMAError).
_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, UnicodeDecodeError)


def _not_utf8(value: Any) -> str | None:
    """Where ``value`` (a string or nested list/dict of them) holds bytes that were not UTF-8."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value
        return None
    if isinstance(value, dict):
        for v in value.values():
            bad = _not_utf8(v)
            if bad is not None:
                return bad
    elif isinstance(value, (list, tuple)):
        for v in value:
            bad = _not_utf8(v)
            if bad is not None:
                return bad
    return None


def _printable(s: str | None) -> str | None:
    """A diagnostic string safe to write (invalid bytes shown as ``\\xNN``)."""
    if s is None or s.isascii():
        return s
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _checked(item: ParseResult) -> ParseResult:
    if isinstance(item, PairRecord):
        fields = (("caption", item.text), ("image location", item.image.url or item.image.path),
                  ("metadata", item.meta))
        for what, value in fields:
            bad = _not_utf8(value)
            if bad is not None:
                return Failure("invalid_utf8", f"{what} is not valid UTF-8: {_printable(bad)[:200]!r}",
                               item.input_file, item.input_line)
        return item
    if isinstance(item, Failure):
        if _not_utf8([item.message, item.raw]) is not None:
            return Failure(item.error, _printable(item.message) or "", item.input_file, item.input_line,
                           _printable(item.raw))
    elif isinstance(item, Dropped) and item.detail is not None and _not_utf8(item.detail) is not None:
        return Dropped(item.reason, item.input_file, item.input_line, _printable(item.detail))
    return item


def read_failure(e: Exception, path: str, n: int) -> Failure:
    """The one ``Failure`` that ends a unit whose parse raised ``e`` after ``n`` records."""
    error = "input_read_error" if isinstance(e, _READ_ERRORS) else "parse_error"
    msg = f"{type(e).__name__}: {_printable(str(e))}"[:300] + f" (after {n} record(s) of this input)"
    return Failure(error, msg, path, None)


def _guard(parse: Any) -> Any:
    @functools.wraps(parse)
    def guarded(self: "Source", unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        n = 0
        errors_before = _DECODE_ERRORS[0]
        try:
            for item in parse(self, unit, options):
                n += 1
                yield item if _DECODE_ERRORS[0] == errors_before else _checked(item)
        except UserError:
            raise  # a bad option or a missing companion file: the user's, one clear line
        except Exception as e:  # noqa: BLE001 - one unreadable input never stops the others
            yield read_failure(e, unit.path, n)

    guarded.__pmd_guarded__ = True  # type: ignore[attr-defined]
    return guarded


# ----------------------------------------------------------------------------------- Source

class Source(ABC):
    """One upstream dataset: how to cut its files into units and parse them into pairs.

    ``defaults`` lists every option the source accepts with its default; ``resolve_options``
    rejects unknown keys (a typo must not be silently ignored).
    """

    name: str = ""
    paper_pairs_m: float | None = None
    paper_avg_words: float | None = None
    #: FLAVA Table 1 row this source belongs to (the four LN subsets share one row).
    paper_row: str = ""
    splittable: bool = False
    #: Glob(s) of the files to take from a directory given as input.
    file_pattern: str | tuple[str, ...] = "*"
    description: str = ""
    defaults: Mapping[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Guard every implementation of ``parse`` (module docstring): callers — the CLI, the Spark
        ingest, wrappers such as ``image_folder`` — get per-file failures without each catching."""
        super().__init_subclass__(**kwargs)
        impl = cls.__dict__.get("parse")
        if impl is not None and not getattr(impl, "__isabstractmethod__", False) \
                and not getattr(impl, "__pmd_guarded__", False):
            cls.parse = _guard(impl)  # type: ignore[method-assign]

    def resolve_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        opts = dict(self.defaults)
        for key, value in (options or {}).items():
            if key not in self.defaults:
                known = ", ".join(sorted(self.defaults)) or "(none)"
                raise UserError(f"source {self.name!r} has no option {key!r}; known options: {known}")
            opts[key] = coerce_option(key, value, self.defaults[key])
        return opts

    def units(self, paths: Sequence[str], options: Mapping[str, Any] | None = None,
              target_bytes: int = DEFAULT_TARGET_BYTES) -> list[InputUnit]:
        """Line-aligned byte ranges for splittable uncompressed files, one unit per file otherwise."""
        self.resolve_options(options)
        units: list[InputUnit] = []
        for p in expand_paths(paths, self.file_pattern):
            if self.splittable and not is_compressed(p):
                for start, end, first in line_aligned_ranges(p, target_bytes):
                    units.append(InputUnit(self.name, (p,), start, end, first))
            else:
                units.append(InputUnit(self.name, (p,)))
        return units

    @abstractmethod
    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        """Every record of ``unit`` as a ``PairRecord``, ``Dropped`` or ``Failure``."""

    def parse_batches(self, unit: InputUnit, options: Mapping[str, Any] | None,
                      batch_size: int) -> Iterator[Any] | None:
        """A columnar path for ``unit`` or None (the default: use ``parse``).

        A source whose parse already holds its rows column-wise may give the unit's outcomes as
        ``pmd.pairs.outcomes.PAIR_OUTCOME_SCHEMA`` record batches of at most ``batch_size`` rows,
        exactly ``outcome_batch`` of ``parse``'s items in order, with lists of ``ParseResult`` for
        the stretches it leaves to objects (the ingest turns those into rows as it does ``parse``'s).
        It keeps ``parse``'s guard itself: it raises only ``UserError`` (the ingest's crash rule
        applies); any other exception ends the unit with ``read_failure``'s row. Lazy: nothing is
        read before the first batch is asked for. ``pmd.pairs.ingest.unit_batches`` prefers it.
        """
        return None

    def parse_all(self, paths: Sequence[str], options: Mapping[str, Any] | None = None,
                  target_bytes: int = DEFAULT_TARGET_BYTES) -> Iterator[ParseResult]:
        """Convenience for tests and the CLI: ``parse`` over every unit of ``paths``."""
        for unit in self.units(paths, options, target_bytes):
            yield from self.parse(unit, options)

    # helpers for subclasses ---------------------------------------------------------------
    def make_pair(self, raw_text: Any, image: ImageRef, meta: dict[str, Any], input_file: str,
                  input_line: int | None) -> PairRecord | Dropped:
        """The cleaned caption paired with its image, or ``Dropped('empty_caption')``."""
        text = clean_caption(raw_text) if isinstance(raw_text, str) else ""
        if not text:
            return Dropped("empty_caption", input_file, input_line)
        return PairRecord(self.name, text, image, meta, input_file=input_file, input_line=input_line)

    def fail(self, error: str, message: str, input_file: str, input_line: int | None,
             raw: str | None = None) -> Failure:
        return Failure(error, message, input_file, input_line, raw)


def json_failure(path: str, exc: Exception) -> Failure:
    """A file that is not valid JSON: one ``bad_json`` failure pointing at the parser's line."""
    line = getattr(exc, "lineno", None)
    return Failure("bad_json", str(exc)[:300], path, line if line is not None else 1)
