"""Damaged copies of the real WARC files: only the damaged records are lost, and each one is counted.

Every test copies a real file from ../shared/data/warc into tmp_path and damages the copy (flipped
bytes, cuts, inserted garbage, a changed header). Records are compared with a clean read of the
same file: the outcomes that remain are the same records, and records = kept + dropped + failed.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import zlib
from collections import Counter
from pathlib import Path

import pytest

from pmd.interleaved.warc import WarcDamage, WarcPage, read_summary, read_warc
from pmd.verdict import Dropped, Failure

RESILIPARSE = "resiliparse-warcfile.warc.gz"  # 50 records, one gzip member each, 16 HTML pages
DOLMA = "dolma-sample-0000.warc.gz"  # wget: every record has a sha1 WARC-Block-Digest


def _kind(r) -> str:
    if isinstance(r, WarcPage):
        return "page"
    if isinstance(r, Dropped):
        return r.reason
    return "failed:" + r.error


def _offset(r) -> int:
    return r.offset if isinstance(r, WarcPage) else r.input_line


def _members(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every gzip member, found with zlib independently of the reader."""
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        end = len(data) - len(d.unused_data)
        out.append((pos, end))
        pos = end
    return out


@pytest.fixture(scope="module")
def resiliparse(shared_data) -> tuple[bytes, list]:
    data = (shared_data / "warc" / RESILIPARSE).read_bytes()
    return data, list(read_warc(shared_data / "warc" / RESILIPARSE))


def _flip(data: bytes, at: int, n: int = 2) -> bytes:
    b = bytearray(data)
    for i in range(at, at + n):
        b[i] ^= 0xFF
    return bytes(b)


def test_flipped_bytes_in_one_member_lose_only_that_record(resiliparse, tmp_path):
    data, clean = resiliparse
    members = _members(data)
    assert len(members) == len(clean) == 50
    html_member = next(i for i, r in enumerate(clean) if isinstance(r, WarcPage) and i > 5)
    a, b = members[html_member]
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(_flip(data, a + (b - a) // 2))
    got = list(read_warc(bad))
    assert len(got) == len(clean)  # nothing vanished
    fails = [r for r in got if isinstance(r, Failure)]
    assert len(fails) == 1 and isinstance(fails[0], WarcDamage) and fails[0].error == "corrupt_record"
    assert (fails[0].start, fails[0].end) == (a, b) and f"bytes {a}-{b}" in fails[0].message
    # every other record is exactly what the clean read gave, in order
    rest = [r for r in got if not isinstance(r, Failure)]
    expected = [r for i, r in enumerate(clean) if i != html_member]
    assert [(_kind(r), _offset(r)) for r in rest] == [(_kind(r), _offset(r)) for r in expected]
    assert sum(isinstance(r, WarcPage) for r in got) == 15
    assert read_summary(bad)["skipped_bytes"] == b - a


def test_every_member_damaged_in_turn_every_record_counted(resiliparse, tmp_path):
    """Damage each of the 50 members in turn: each time one failure and 49 intact records."""
    data, clean = resiliparse
    kinds = Counter(_kind(r) for r in clean)
    f = tmp_path / "bad.warc.gz"
    for i, (a, b) in enumerate(_members(data)):
        f.write_bytes(_flip(data, a + 10 + (b - a - 18) // 2, 1))  # inside the deflate data
        got = Counter(_kind(r) for r in read_warc(f))
        assert sum(got.values()) == 50, i
        assert sum(v for k, v in got.items() if k.startswith("failed:")) == 1, (i, got)
        lost = kinds - got
        assert sum(lost.values()) == 1 and list(lost) == [_kind(clean[i])], (i, got)


def test_garbage_between_members_and_two_damaged_members(resiliparse, tmp_path):
    data, clean = resiliparse
    m = _members(data)
    f = tmp_path / "bad.warc.gz"
    f.write_bytes(data[:m[10][0]] + b"\x00garbage" * 300 + data[m[10][0]:])
    got = list(read_warc(f))
    fails = [r for r in got if isinstance(r, Failure)]
    assert len(got) == 51 and [x.error for x in fails] == ["corrupt_record"]  # the junk span, all 50 records kept
    assert fails[0].end - fails[0].start == 2400
    # two neighbouring members damaged: two failures, one per member, 48 records intact
    f.write_bytes(_flip(_flip(data, m[20][0] + 300), m[21][0] + 200))
    got = list(read_warc(f))
    fails = [r for r in got if isinstance(r, Failure)]
    assert len(got) == 50 and len(fails) == 2
    assert [(x.start, x.end) for x in fails] == [m[20], m[21]]


def test_cut_files(resiliparse, tmp_path):
    data, clean = resiliparse
    m = _members(data)
    f = tmp_path / "cut.warc.gz"
    for cut in (10, 30, 60):  # inside the first member: no record at all, and the file says so
        f.write_bytes(data[:cut])
        got = list(read_warc(f))
        assert len(got) == 1 and got[0].error == "warc_truncated" and got[0].message.startswith(f"bytes 0-{cut} ")
        assert read_summary(f) == {"path": str(f), "records": 1, "html_pages": 0, "dropped": {},
                                   "failed": {"warc_truncated": 1}, "skipped_bytes": cut}
    cut = m[30][0] + 100
    f.write_bytes(data[:cut])
    got = list(read_warc(f))
    assert len(got) == 31 and [_kind(r) for r in got[:30]] == [_kind(r) for r in clean[:30]]
    assert got[30].error == "warc_truncated" and (got[30].start, got[30].end) == (m[30][0], cut)


def test_not_a_warc_and_empty(tmp_path, shared_data):
    f = tmp_path / "notes.warc"
    f.write_bytes((shared_data / "warc" / "README.md").read_bytes())
    got = list(read_warc(f))
    assert [r.error for r in got] == ["not_a_warc"]
    f.write_bytes(b"")
    assert [r.error for r in read_warc(f)] == ["warc_empty"]


# --------------------------------------------------------------------------------------------- plain .warc


@pytest.fixture(scope="module")
def plain(shared_data) -> tuple[bytes, list]:
    raw = gzip.decompress((shared_data / "warc" / RESILIPARSE).read_bytes())
    return raw, list(read_warc_bytes_clean(raw))


def read_warc_bytes_clean(raw: bytes) -> list:
    from pmd.interleaved.warc import iter_warc_bytes

    return list(iter_warc_bytes(raw, "x"))


def test_plain_flipped_payload_is_a_digest_mismatch(plain, tmp_path):
    raw, clean = plain
    page = next(r for r in clean if isinstance(r, WarcPage) and b"</html>" in r.html.lower())
    at = raw.index(b"<body", page.offset) + 50
    f = tmp_path / "bad.warc"
    f.write_bytes(raw[:at] + bytes([raw[at] ^ 0x20]) + raw[at + 1:])
    got = list(read_warc(f))
    assert len(got) == len(clean)
    fails = [r for r in got if isinstance(r, Failure)]
    assert [x.error for x in fails] == ["digest_mismatch"] and fails[0].input_line == page.offset
    assert "WARC-Block-Digest" in fails[0].message
    assert sum(isinstance(r, WarcPage) for r in got) == 15
    assert list(read_warc(f, verify_digests=False))[clean.index(page)].html != page.html  # the damage is real


def test_plain_broken_header_and_length_resync(plain, tmp_path):
    raw, clean = plain
    starts = [_offset(r) for r in clean]
    f = tmp_path / "bad.warc"
    for how in ("warc_line", "length_up", "length_down", "garbage"):
        s = starts[7]
        cl = re.compile(rb"Content-Length: (\d+)").search(raw, s)
        if how == "warc_line":
            bad = raw[:s] + b"WARX" + raw[s + 4:]
        elif how == "length_up":
            bad = raw[:cl.start(1)] + str(int(cl.group(1)) + 5000).encode() + raw[cl.end(1):]
        elif how == "length_down":
            bad = raw[:cl.start(1)] + str(int(cl.group(1)) - 100).encode() + raw[cl.end(1):]
        else:
            bad = raw[:s] + b"junk\r\n" * 50 + raw[s:]
        f.write_bytes(bad)
        got = list(read_warc(f))
        fails = [r for r in got if isinstance(r, Failure)]
        if how == "garbage":
            assert len(got) == len(clean) + 1 and fails[0].start == s, how
            continue
        assert len(got) == len(clean) and len(fails) == 1, (how, Counter(_kind(r) for r in got))
        assert fails[0].error == "corrupt_record" and fails[0].start == s, how
        shift = len(bad) - len(raw)
        assert fails[0].end == starts[8] + shift, how
        assert [_kind(r) for r in got[8:]] == [_kind(r) for r in clean[8:]], how


def test_cut_plain_warc_every_complete_record_kept(plain, tmp_path):
    raw, clean = plain
    starts = [_offset(r) for r in clean]
    f = tmp_path / "cut.warc"
    f.write_bytes(raw[:starts[20] + 700])
    got = list(read_warc(f))
    assert [_kind(r) for r in got[:20]] == [_kind(r) for r in clean[:20]]
    assert len(got) == 21 and got[20].error == "warc_truncated"


# --------------------------------------------------------------------------------------------- HTTP, digests


def _record(raw: bytes, start: int) -> tuple[bytes, bytes]:
    """(WARC header block without the final CRLF CRLF, block) of the plain record at ``start``."""
    h = raw.index(b"\r\n\r\n", start)
    cl = int(re.search(rb"Content-Length: (\d+)", raw[start:h]).group(1))
    return raw[start:h], raw[h + 4:h + 4 + cl]


def _rewrite(head: bytes, block: bytes, block_digest: str | None) -> bytes:
    head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(block), head)
    head = re.sub(rb"WARC-Block-Digest: [^\r]*\r\n", b"", head + b"\r\n")[:-2]
    head = re.sub(rb"WARC-Payload-Digest: [^\r]*\r\n", b"", head + b"\r\n")[:-2]
    if block_digest:
        head += b"\r\nWARC-Block-Digest: " + block_digest.encode()
    return head + b"\r\n\r\n" + block + b"\r\n\r\n"


def test_lf_only_http_headers_parse(shared_data, tmp_path):
    """A real response with its HTTP headers rewritten to end in bare LF (as in ClueWeb09) stays a page."""
    raw = gzip.decompress((shared_data / "warc" / DOLMA).read_bytes())
    clean = read_warc_bytes_clean(raw)
    page = next(r for r in clean if isinstance(r, WarcPage))
    head, block = _record(raw, page.offset)
    http_end = block.index(b"\r\n\r\n")
    lf_block = block[:http_end].replace(b"\r\n", b"\n") + b"\n\n" + block[http_end + 4:]
    sha1 = "sha1:" + base64.b32encode(hashlib.sha1(lf_block).digest()).decode()
    f = tmp_path / "lf.warc"
    f.write_bytes(_rewrite(head, lf_block, sha1).replace(b"WARC/1.0", b"WARC/0.18", 1))  # ClueWeb09's version
    got = list(read_warc(f))
    assert len(got) == 1 and isinstance(got[0], WarcPage), got
    assert got[0].html == page.html and got[0].charset == page.charset and got[0].url == page.url


def test_digest_forms_sha256_md5_hex(shared_data, tmp_path):
    raw = gzip.decompress((shared_data / "warc" / DOLMA).read_bytes())
    page = next(r for r in read_warc_bytes_clean(raw) if isinstance(r, WarcPage))
    head, block = _record(raw, page.offset)
    forms = {
        "sha1:" + hashlib.sha1(block).hexdigest(): True,
        "sha256:" + base64.b32encode(hashlib.sha256(block).digest()).decode().rstrip("="): True,
        "sha256:" + hashlib.sha256(block).hexdigest(): True,
        "md5:" + hashlib.md5(block).hexdigest(): True,
        "sha256:" + hashlib.sha256(block + b"x").hexdigest(): False,
        "md5:" + base64.b32encode(hashlib.md5(b"other").digest()).decode(): False,
        "sha1:NOT-A-DIGEST": False,
        "crc32:1234abcd": True,  # an algorithm we cannot check is not damage
    }
    f = tmp_path / "one.warc"
    for digest, ok in forms.items():
        f.write_bytes(_rewrite(head, block, digest))
        got = list(read_warc(f))
        assert len(got) == 1 and isinstance(got[0], WarcPage) == ok, (digest, got)
        if not ok:
            assert got[0].error == "digest_mismatch"


def test_payload_digest_checked_without_block_digest(shared_data, tmp_path):
    raw = gzip.decompress((shared_data / "warc" / DOLMA).read_bytes())
    page = next(r for r in read_warc_bytes_clean(raw) if isinstance(r, WarcPage))
    head, block = _record(raw, page.offset)
    body_at = block.index(b"\r\n\r\n") + 4
    f = tmp_path / "one.warc"
    digest = b"sha1:" + base64.b32encode(hashlib.sha1(block[body_at:]).digest())
    for blk, ok in ((block, True), (block[:body_at + 10] + b"X" + block[body_at + 11:], False)):
        rec = _rewrite(head, blk, None)
        rec = rec.replace(b"\r\n\r\n", b"\r\nWARC-Payload-Digest: " + digest + b"\r\n\r\n", 1)
        f.write_bytes(rec)
        got = list(read_warc(f))
        assert len(got) == 1 and isinstance(got[0], WarcPage) == ok and (ok or got[0].error == "digest_mismatch")


# --------------------------------------------------------------------------------------------- the command


def test_read_command_json_lines(resiliparse, shared_data, tmp_path, capsys):
    from pmd.cli import main

    data, _ = resiliparse
    m = _members(data)
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(_flip(data, m[3][0] + 200))
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[:50])
    assert main(["interleaved", "read", str(shared_data / "warc" / RESILIPARSE), str(bad), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["records"], x["html_pages"], x["failed"], x["skipped_bytes"]) for x in lines] == [
        (50, 16, {}, 0), (50, 16 if not isinstance(resiliparse[1][3], WarcPage) else 15, {"corrupt_record": 1},
                          m[3][1] - m[3][0])]
    assert lines[1]["path"] == str(bad)
    # a file with no readable record: reported, and the exit status says so
    assert main(["interleaved", "read", str(cut), "--json"]) == 1
    line = json.loads(capsys.readouterr().out)
    assert line["records"] == 1 and line["failed"] == {"warc_truncated": 1} and line["html_pages"] == 0


def test_range_read_of_a_record_after_damage(resiliparse, tmp_path):
    """Byte-range units (path@offset:length) of records behind a damaged member still read alone."""
    data, clean = resiliparse
    m = _members(data)
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(_flip(data, m[2][0] + 100))
    pages = [r for r in read_warc(bad) if isinstance(r, WarcPage)]
    p = pages[-1]
    again = list(read_warc(bad, p.offset, p.length, name="x"))
    assert len(again) == 1 and again[0].html == p.html and (p.offset, p.offset + p.length) in m
    assert Path(bad).stat().st_size == len(data)


def test_whole_file_gzipped_as_one_member(plain, tmp_path):
    """`gzip file.warc` (all records in one member): every record read; a cut copy ends in a failure."""
    raw, clean = plain
    one = gzip.compress(raw)
    f = tmp_path / "one.warc.gz"
    f.write_bytes(one)
    assert [_kind(r) for r in read_warc(f)] == [_kind(r) for r in clean]
    f.write_bytes(one[: len(one) // 2])
    got = list(read_warc(f))
    assert got[-1].error == "warc_truncated" and 0 < len(got) < len(clean)
    assert [_kind(r) for r in got[:-1]] == [_kind(r) for r in clean[: len(got) - 1]]
