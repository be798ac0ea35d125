"""Reading HTML responses from WARC files (FastWARC): whole files or (file, offset, length) ranges.

Every record read leaves as a ``WarcPage`` (an HTML response, with its WARC pointer as
provenance), a ``Dropped`` (other record types such as warcinfo/request/metadata/WAT/WET
conversion records, non-HTML payloads, non-200 statuses) or a ``Failure`` (a record whose
``WARC-Block-Digest``/``WARC-Payload-Digest`` does not match, a bad content encoding, an
unreadable file).

Damage never costs more than the damaged bytes. FastWARC reads the clean stretches at full
speed; where it stops (a corrupt gzip member, a broken record header, a record cut off), the
reader resyncs at the next gzip member that inflates to a ``WARC/`` record (``.warc.gz``) or the
next ``WARC/x.y`` header line (plain ``.warc``) and goes on. Each lost stretch is a
``WarcDamage`` failure with its byte range (``corrupt_record`` when reading resumed after it,
``warc_truncated`` when the file ends inside it), one per record start found in it, so records
are counted even when they cannot be read. A file without a single readable record yields at
least one such failure. The resync work happens only where there is damage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from fastwarc.warc import ArchiveIterator

from pmd.verdict import Dropped, Failure

log = logging.getLogger(__name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xhtml", "text/xhtml")
_GZ_MAGIC = b"\x1f\x8b\x08"  # gzip id bytes + deflate, the only method gzip defines
_WARC_LINE = re.compile(rb"WARC/\d+\.\d+\r?\n")
_PADDING = b"\x00\r\n\t "  # what may follow the last record (zero-padded tape blocks, stray newlines)
_CHUNK = 1 << 16
_MAX_HEADER = 1 << 20  # a WARC header block longer than this is damage, not a header
_DIGESTS = {"sha1": 20, "sha256": 32, "sha512": 64, "sha224": 28, "sha384": 48, "md5": 16}


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


@dataclass(frozen=True, slots=True)
class WarcDamage(Failure):
    """A stretch of a WARC file that could not be read as records: ``[start, end)`` in file bytes.

    A ``Failure`` like any other (``error`` is ``corrupt_record`` or ``warc_truncated``); the range
    lets a caller add up the bytes lost (``skipped_bytes``) without parsing messages."""

    start: int = 0
    end: int = 0


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


# ---------------------------------------------------------------------------------------------
# digests


def _decode_digest(value: str, size: int) -> bytes | None:
    """The raw digest from its written form: base32 (WARC's usual), hex or base64; None if none fits."""
    v = value.strip()
    if len(v) == 2 * size:
        try:
            return bytes.fromhex(v)
        except ValueError:
            pass
    try:
        raw = base64.b32decode(v.upper() + "=" * (-len(v) % 8))
        if len(raw) == size:
            return raw
    except (binascii.Error, ValueError):
        pass
    try:
        raw = base64.b64decode(v + "=" * (-len(v) % 4), validate=True)
        if len(raw) == size:
            return raw
    except (binascii.Error, ValueError):
        pass
    return None


def _digest_problem(header: str | None, data: bytes, what: str) -> str | None:
    """Why ``data`` does not match a ``WARC-*-Digest`` value, or None (it matches, or the algorithm is
    one we cannot compute: absent, not counted as damage)."""
    if not header:
        return None
    algo, sep, value = header.strip().partition(":")
    algo = algo.strip().lower().replace("-", "")
    size = _DIGESTS.get(algo)
    if not sep or size is None:
        return None
    want = _decode_digest(value, size)
    if want is None:
        return f"{what} {header.strip()[:80]!r} is not a readable {algo} digest"
    if hashlib.new(algo, data).digest() != want:
        return f"{what} {header.strip()[:80]} does not match the record's {len(data)} bytes"
    return None


# ---------------------------------------------------------------------------------------------
# one record


def _record_outcome(rec, name: str, offset: int, length: int, verify: bool) -> WarcPage | Dropped | Failure:
    rtype = str(rec.record_type).rsplit(".", 1)[-1] if rec.record_type is not None else "unknown"
    headers = rec.headers
    block_digest = headers.get("WARC-Block-Digest") if verify else None
    # FastWARC checks the usual sha1 base32 form in place (reader kept at the start); anything it
    # does not accept is checked here, which also tells another form (hex, sha256, md5) from a mismatch
    if block_digest and not rec.verify_block_digest():
        problem = _digest_problem(block_digest, rec.reader.read(), "WARC-Block-Digest")
        if problem:
            return Failure("digest_mismatch", f"record at offset {offset}: {problem}", name, offset)
        rec.reader.seek(0)
    if rtype != "response":
        return Dropped(f"record_{rtype}", name, offset)
    # quirks mode: HTTP headers that end in bare LF (ClueWeb09, some crawlers) parse too
    rec.parse_http(quirks_mode=True)
    h = rec.http_headers
    if h is None:
        return Dropped("not_http", name, offset)
    body = rec.reader.read()
    if verify and not block_digest:
        payload_digest = headers.get("WARC-Payload-Digest")
        if payload_digest and not h.get("Transfer-Encoding"):  # a chunked payload's digest is of the decoded body
            problem = _digest_problem(payload_digest, body, "WARC-Payload-Digest")
            if problem:
                return Failure("digest_mismatch", f"record at offset {offset}: {problem}", name, offset)
    status = h.status_code or 0
    if status != 200:
        return Dropped(f"http_status_{status // 100}xx", name, offset, str(status))
    ctype = h.get("Content-Type") or ""
    payload_type = headers.get("WARC-Identified-Payload-Type") or ""
    is_html = any(t in ctype.lower() for t in _HTML_TYPES) or any(t in payload_type.lower() for t in _HTML_TYPES)
    if not is_html and not (not ctype and _looks_html(body)):
        return Dropped("not_html", name, offset, ctype[:80] or None)
    if (h.get("Content-Encoding") or "").lower() in ("gzip", "x-gzip") and body[:2] == b"\x1f\x8b":
        try:
            body = zlib.decompress(body, 31)
        except zlib.error as e:
            return Failure("bad_content_encoding", str(e)[:200], name, offset)
    if not body.strip():
        return Dropped("empty_payload", name, offset)
    charset = _charset(ctype) or headers.get("WARC-Identified-Content-Charset")
    return WarcPage(
        url=_clean_uri(headers.get("WARC-Target-URI")), html=body, charset=charset,
        record_id=(rec.record_id or "").strip("<>") or None, date=headers.get("WARC-Date"), warc_filename=name,
        offset=offset, length=length, status=status,
    )


def _outcome(rec, name: str, offset: int, length: int, verify: bool) -> WarcPage | Dropped | Failure:
    try:
        return _record_outcome(rec, name, offset, length, verify)
    except Exception as e:  # noqa: BLE001 - one bad record never stops the file
        return Failure("warc_record_error", f"{type(e).__name__}: {e}"[:300], name, offset)


# ---------------------------------------------------------------------------------------------
# where records end, where damage ends


def _member_end(data: bytes, start: int) -> tuple[int | None, bool]:
    """(end of the gzip member at ``start`` or None, whether inflating hit corrupt data rather than EOF).
    Output is capped per call and thrown away: only where the member ends matters."""
    d = zlib.decompressobj(31)
    view = memoryview(data)
    buf = view[start:start + _CHUNK]
    fed = start + len(buf)
    try:
        while True:
            d.decompress(buf, _CHUNK)
            if d.eof:
                return fed - len(d.unused_data), False  # at EOF the leftover shows in both attributes
            if d.unconsumed_tail:
                buf = d.unconsumed_tail
                continue
            if fed >= len(data):
                return None, False
            buf = view[fed:fed + _CHUNK]
            fed += len(buf)
    except zlib.error:
        return None, True


def _declared_length(rec) -> int:
    """The record's Content-Length as written (FastWARC's ``content_length`` shrinks to what a cut
    record really holds once it is frozen)."""
    v = (rec.headers.get("Content-Length") or "").strip()
    return int(v) if v.isdigit() else rec.content_length


def _plain_end(data: bytes, start: int, content_length: int) -> int | None:
    """End of the plain WARC record at ``start`` (header block + Content-Length), None if past EOF."""
    hdr = data.find(b"\r\n\r\n", start, start + _MAX_HEADER)
    if hdr < 0:
        return None
    end = hdr + 4 + content_length
    return end if end <= len(data) else None


def _plain_last_end(data: bytes, start: int, content_length: int) -> int | None:
    """End (trailer included) of a plain record that nothing readable follows, or None when it is damaged:
    its block must be followed by the CRLF CRLF trailer or EOF (a Content-Length changed by damage
    lands inside other bytes)."""
    end = _plain_end(data, start, content_length)
    if end is None:
        return None
    after = _skip_trailer(data, end, len(data))
    if data[end:end + 4] == b"\r\n\r\n" or after == len(data) or _plain_candidate(data, after):
        return after
    return None


def _skip_trailer(data: bytes, end: int, limit: int) -> int:
    """Past the CRLF CRLF (and any stray newlines) that follow a plain record, up to ``limit``."""
    while end < limit and data[end] in b"\r\n":
        end += 1
    return end


def _gz_candidate(data: bytes, p: int) -> bool:
    if p + 10 > len(data) or data[p + 3] & 0xE0:  # reserved flag bits must be zero
        return False
    d = zlib.decompressobj(31)
    try:
        head = d.decompress(data[p:p + 4096], 16)
    except zlib.error:
        return False
    return head.startswith(b"WARC/")


def _plain_candidate(data: bytes, p: int) -> bool:
    return (p == 0 or data[p - 1] == 0x0A) and _WARC_LINE.match(data, p) is not None


def _record_starts(data: bytes, start: int, end: int, gz: bool) -> Iterator[int]:
    """Positions in ``[start, end)`` where a record seems to begin (gzip header or ``WARC/`` line)."""
    needle = _GZ_MAGIC if gz else b"WARC/"
    p = data.find(needle, start, end)
    while p >= 0:
        if gz:
            if p + 3 < len(data) and not data[p + 3] & 0xE0:
                yield p
        elif p == 0 or data[p - 1] == 0x0A:
            yield p
        p = data.find(needle, p + 1, end)


def _resync(data: bytes, start: int, gz: bool) -> int | None:
    """The first position >= ``start`` where reading can resume, or None."""
    needle = _GZ_MAGIC if gz else b"WARC/"
    ok = _gz_candidate if gz else _plain_candidate
    p = data.find(needle, start)
    while p >= 0:
        if ok(data, p):
            return p
        p = data.find(needle, p + 1)
    return None


def _damage(data: bytes, name: str, base: int, start: int, end: int, gz: bool, cause: str
            ) -> Iterator[WarcDamage]:
    """One failure per record start in the lost stretch ``[start, end)`` (at least one)."""
    starts = [p for p in _record_starts(data, start, end, gz) if p > start]
    bounds = [start, *starts, end]
    to_eof = end >= len(data)
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        last = i == len(bounds) - 2
        error = "warc_truncated" if last and to_eof and not cause.startswith("corrupt") else "corrupt_record"
        how = "to the end of the file" if last and to_eof else f"resumed at byte {base + end}"
        yield WarcDamage(error, f"bytes {base + a}-{base + b} ({b - a} bytes) unreadable: {cause}; {how}",
                         name, base + a, start=base + a, end=base + b)


def _tail_cause(data: bytes, start: int, gz: bool, content_length: int | None, err: str | None) -> str:
    """Why the records stop at ``start``: ``corrupt ...`` (bad bytes) or ``cut ...`` (the file ends early)."""
    if gz:
        if data[start:start + 3] != _GZ_MAGIC:
            return f"corrupt: no gzip member at byte {start}" + (f" ({err})" if err else "")
        _, corrupt = _member_end(data, start)
        if corrupt:
            return f"corrupt gzip member ({err or 'data error'})"
        return "cut: the gzip member ends early"
    if _plain_candidate(data, start) and content_length is not None and _plain_end(data, start, content_length) is None:
        return "cut: the record ends early"
    return f"corrupt record ({err})" if err else "corrupt record"


# ---------------------------------------------------------------------------------------------
# whole files


def iter_warc_bytes(data: bytes, name: str, base_offset: int = 0, *, verify_digests: bool = True
                    ) -> Iterator[WarcPage | Dropped | Failure]:
    """Records of a WARC held in memory (a whole file or a byte range starting at ``base_offset``).

    Records come out in file order, each as soon as the next one has been read (a one-record
    look-ahead proves where it ends), so memory holds the data and two records."""
    n = len(data)
    gz = data[:2] == b"\x1f\x8b"
    stream = io.BytesIO(data)
    pos = 0
    while pos < n:
        stream.seek(pos)
        it = iter(ArchiveIterator(stream, parse_http=False))
        prev, prev_start = None, pos
        good_end = pos  # everything before this has left as records
        err = None
        while True:
            try:
                rec = next(it)
                rec.freeze()  # the body must be read before the iterator moves on
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001 - corrupt member or garbage: resync below
                err = f"{type(e).__name__}: {e}"[:200]
                break
            start = rec.stream_pos
            if prev is not None:
                if not gz:
                    end = _plain_end(data, prev_start, _declared_length(prev))
                    if end is None or data[end:start].strip(b"\r\n"):
                        # FastWARC read on, but the previous record does not end where this one starts
                        yield from _damage(data, name, base_offset, prev_start, start, gz, "record length mismatch")
                        prev, prev_start, good_end = rec, start, start
                        continue
                yield _outcome(prev, name, base_offset + prev_start, start - prev_start, verify_digests)
                good_end = start
            prev, prev_start = rec, start
        tail_len = None
        if prev is not None and gz and data[prev_start:prev_start + 3] != _GZ_MAGIC:
            # several records in one gzip member (a whole file gzipped at once): FastWARC's positions are
            # where it was in the compressed stream, so the record's own length is all there is to check
            if prev.content_length == _declared_length(prev):
                yield _outcome(prev, name, base_offset + prev_start, max(0, min(n, good_end) - prev_start),
                               verify_digests)
                good_end = n if err is None else max(good_end, prev_start)
            else:
                nxt = _resync(data, prev_start + 1, gz)
                stop = nxt if nxt is not None else n
                error = "warc_truncated" if err is None and nxt is None else "corrupt_record"
                yield WarcDamage(error, f"bytes {base_offset + prev_start}-{base_offset + stop} unreadable: a record "
                                 f"inside a multi-record gzip member is cut off ({err or 'the data ends'})",
                                 name, base_offset + prev_start, start=base_offset + prev_start, end=base_offset + stop)
                if nxt is None:
                    return
                pos = nxt
                continue
            prev = None
        if prev is not None:
            tail_len = _declared_length(prev)
            if gz:
                end, _ = _member_end(data, prev_start)
            else:
                end = _plain_last_end(data, prev_start, _declared_length(prev))
            if end is not None:
                yield _outcome(prev, name, base_offset + prev_start, end - prev_start, verify_digests)
                good_end = end
        if not data[good_end:].strip(_PADDING):
            return
        # damage at good_end: resume at the first place reading can go on; if nothing was read in
        # this pass, that place cannot be good_end itself
        nxt = _resync(data, good_end if good_end > pos else good_end + 1, gz)
        if nxt is None and good_end == 0 and not (gz or _plain_candidate(data, 0)):
            yield WarcDamage("not_a_warc", f"no WARC record in {n} bytes (starts {data[:16]!r})", name,
                             base_offset, start=base_offset, end=base_offset + n)
            return
        if nxt is None or nxt > good_end:
            cause = _tail_cause(data, good_end, gz, tail_len if good_end == prev_start else None, err)
            yield from _damage(data, name, base_offset, good_end, nxt if nxt is not None else n, gz, cause)
            if nxt is None:
                return
        pos = nxt


def read_warc(path: str | os.PathLike[str], offset: int | None = None, length: int | None = None,
              name: str | None = None, *, verify_digests: bool = True) -> Iterator[WarcPage | Dropped | Failure]:
    """Records of a WARC file, or of the byte range ``[offset, offset + length)`` (a CC index pointer).

    ``name`` is the provenance filename stored in each page (default: the path as given).
    An unreadable or empty file yields one ``Failure``; damage inside is resynced past and counted.
    ``verify_digests`` checks ``WARC-Block-Digest`` (else ``WARC-Payload-Digest``) where present.
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
    yield from iter_warc_bytes(data, name, offset or 0, verify_digests=verify_digests)


def read_summary(path: str | os.PathLike[str], name: str | None = None) -> dict[str, object]:
    """What reading one WARC file gives, without extracting anything: record, page and failure counts.

    ``records`` counts every outcome (pages + dropped + failed, damaged stretches included);
    ``skipped_bytes`` is the total size of the stretches that could not be read as records."""
    records = pages = skipped = 0
    dropped: dict[str, int] = {}
    failed: dict[str, int] = {}
    for r in read_warc(path, name=name):
        records += 1
        if isinstance(r, WarcPage):
            pages += 1
        elif isinstance(r, Dropped):
            dropped[r.reason] = dropped.get(r.reason, 0) + 1
        else:
            failed[r.error] = failed.get(r.error, 0) + 1
            if isinstance(r, WarcDamage):
                skipped += r.end - r.start
    return {"path": name or str(path), "records": records, "html_pages": pages,
            "dropped": dict(sorted(dropped.items())), "failed": dict(sorted(failed.items())),
            "skipped_bytes": skipped}
