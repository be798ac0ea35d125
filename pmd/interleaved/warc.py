"""Reading HTML responses from WARC files (FastWARC): whole files or (file, offset, length) ranges.

Every record read leaves as a ``WarcPage`` (an HTML response, with its WARC pointer as
provenance), a ``Dropped`` (other record types such as warcinfo/request/metadata/WAT/WET
conversion records, non-HTML payloads, non-200 statuses) or a ``Failure`` (a truncated record, a
corrupt gzip member, an unreadable file). Damage ends the reading of that file at the damage,
counted, never raised: everything before it is kept.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from fastwarc.warc import ArchiveIterator

from pmd.verdict import Dropped, Failure

log = logging.getLogger(__name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xhtml", "text/xhtml")


@dataclass(slots=True)
class WarcPage:
    """One HTML response with the provenance OBELICS keeps (filename, offset, length) plus id and date."""

    url: str
    html: bytes
    charset: str | None
    record_id: str | None
    date: str | None
    warc_filename: str
    offset: int
    length: int
    status: int

    def general_metadata(self) -> dict[str, object]:
        return {
            "url": self.url, "warc_filename": self.warc_filename, "warc_record_offset": self.offset,
            "warc_record_length": self.length, "warc_record_id": self.record_id, "date": self.date,
        }


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.strip().lower() == "charset" and v.strip():
            return v.strip().strip("\"'")
    return None


def _looks_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")) or b"<html" in head


def _clean_uri(uri: str | None) -> str:
    uri = (uri or "").strip()
    if uri.startswith("<") and uri.endswith(">"):  # wget writes WARC-Target-URI as <...>
        uri = uri[1:-1]
    return uri


def _tail_state(data: bytes, last_pos: int, content_length: int) -> str:
    """Where the data ends relative to the last record the reader yielded: ``ok``; ``cut`` (that record
    is incomplete); ``trailing`` (it is complete but damaged bytes follow, e.g. a cut-off next member).
    Gzip: the member must end at EOF; plain WARC: header block + Content-Length + CRLFCRLF."""
    if data[last_pos:last_pos + 2] == b"\x1f\x8b":
        d = zlib.decompressobj(31)
        try:
            d.decompress(data[last_pos:])
        except zlib.error:
            return "cut"
        if not d.eof:
            return "cut"
        return "trailing" if d.unused_data.strip(b"\x00\r\n") else "ok"
    hdr_end = data.find(b"\r\n\r\n", last_pos)
    if hdr_end < 0:
        return "cut"
    need = hdr_end + 4 + content_length
    if need > len(data):
        return "cut"
    return "trailing" if data[need:].strip() else "ok"


def _record_outcome(rec, name: str, offset: int, length: int) -> WarcPage | Dropped | Failure:
    rtype = str(rec.record_type).rsplit(".", 1)[-1] if rec.record_type is not None else "unknown"
    if rtype != "response":
        return Dropped(f"record_{rtype}", name, offset)
    rec.parse_http()
    h = rec.http_headers
    if h is None:
        return Dropped("not_http", name, offset)
    body = rec.reader.read()
    status = h.status_code or 0
    if status != 200:
        return Dropped(f"http_status_{status // 100}xx", name, offset, str(status))
    ctype = h.get("Content-Type") or ""
    payload_type = rec.headers.get("WARC-Identified-Payload-Type") or ""
    is_html = any(t in ctype.lower() for t in _HTML_TYPES) or any(t in payload_type.lower() for t in _HTML_TYPES)
    if not is_html and not (not ctype and _looks_html(body)):
        return Dropped("not_html", name, offset, ctype[:80] or None)
    if (h.get("Content-Encoding") or "").lower() in ("gzip", "x-gzip") and body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as e:
            return Failure("bad_content_encoding", str(e)[:200], name, offset)
    if not body.strip():
        return Dropped("empty_payload", name, offset)
    charset = _charset(ctype) or rec.headers.get("WARC-Identified-Content-Charset")
    date = rec.headers.get("WARC-Date")
    return WarcPage(
        url=_clean_uri(rec.headers.get("WARC-Target-URI")), html=body, charset=charset,
        record_id=(rec.record_id or "").strip("<>") or None, date=date, warc_filename=name,
        offset=offset, length=length, status=status,
    )


def iter_warc_bytes(data: bytes, name: str, base_offset: int = 0) -> Iterator[WarcPage | Dropped | Failure]:
    """Records of a WARC held in memory (a whole file or a byte range starting at ``base_offset``)."""
    stream: BinaryIO = io.BytesIO(data)
    recs = []
    try:
        for rec in ArchiveIterator(stream, parse_http=False):
            # body must be read before the iterator moves on; keep the record and its start
            rec.freeze()
            recs.append(rec)
    except Exception as e:  # noqa: BLE001 - corrupt gzip member or garbage: keep what came before
        pos = recs[-1].stream_pos if recs else 0
        yield from _emit(recs, data, name, base_offset, tail_end=None)
        yield Failure("warc_read_error", f"{type(e).__name__}: {e} after offset {base_offset + pos}"[:300],
                      name, base_offset + pos)
        return
    yield from _emit(recs, data, name, base_offset, tail_end=len(data))


def _emit(recs, data: bytes, name: str, base: int, tail_end: int | None) -> Iterator[WarcPage | Dropped | Failure]:
    for i, rec in enumerate(recs):
        start = rec.stream_pos
        end = recs[i + 1].stream_pos if i + 1 < len(recs) else (tail_end if tail_end is not None else len(data))
        try:
            tail = "ok"
            if i + 1 == len(recs) and tail_end is not None:
                declared = rec.headers.get("Content-Length")
                tail = _tail_state(data, start, int(declared) if declared and declared.isdigit() else rec.content_length)
            if tail == "cut":
                yield Failure("warc_truncated", f"record at offset {base + start} is cut off", name, base + start)
                continue
            yield _record_outcome(rec, name, base + start, end - start)
            if tail == "trailing":
                yield Failure("warc_truncated", f"damaged bytes after the record at offset {base + start}",
                              name, base + start)
        except Exception as e:  # noqa: BLE001 - one bad record never stops the file
            yield Failure("warc_record_error", f"{type(e).__name__}: {e}"[:300], name, base + start)


def read_warc(path: str | os.PathLike[str], offset: int | None = None, length: int | None = None,
              name: str | None = None) -> Iterator[WarcPage | Dropped | Failure]:
    """Records of a WARC file, or of the byte range ``[offset, offset + length)`` (a CC index pointer).

    ``name`` is the provenance filename stored in each page (default: the path as given).
    An unreadable file yields one ``Failure``.
    """
    p = Path(path)
    name = name or str(path)
    try:
        with open(p, "rb") as f:
            if offset:
                f.seek(offset)
            data = f.read(length) if length is not None else f.read()
    except OSError as e:
        yield Failure("warc_unreadable", f"{type(e).__name__}: {e}"[:300], name, offset)
        return
    if not data:
        yield Failure("warc_empty", "no bytes to read", name, offset)
        return
    yield from iter_warc_bytes(data, name, offset or 0)
