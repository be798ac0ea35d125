"""WARC reading: real Common Crawl / wget / webrecorder files, WAT/WET skipped, ranges, damage counted."""

from __future__ import annotations

import gzip
import json
from collections import Counter

from pmd.counters import CounterBook
from pmd.interleaved.stages import extract_pages
from pmd.interleaved.warc import WarcPage, read_warc
from pmd.verdict import Dropped, Failure


def _outcomes(records) -> Counter:
    c: Counter = Counter()
    for r in records:
        if isinstance(r, WarcPage):
            c["page"] += 1
        elif isinstance(r, Dropped):
            c[r.reason] += 1
        else:
            c["failed:" + r.error] += 1
    return c


def test_real_warcs_read_and_extract_without_error(shared_data):
    expected_pages = {"whirlwind.warc.gz": 1, "resiliparse-warcfile.warc.gz": 16, "dolma-sample-0000.warc.gz": 22,
                      "jwarc-cc.warc.gz": 1, "warcio-example.warc.gz": 1, "whirlwind.warc.wat.gz": 0,
                      "whirlwind.warc.wet.gz": 0}
    for name, n in expected_pages.items():
        book, rejects = CounterBook(), []
        docs = list(extract_pages(read_warc(shared_data / "warc" / name), book, rejects))
        read = book.get("read")
        assert read.kept == n, name
        assert read.n_failed == 0 and book.get("extract").n_failed == 0, (name, rejects)
        assert len(docs) + book.get("extract").n_dropped == n
        book.check_reconciled()
        book.check_chain("read", "extract")


def test_wat_and_wet_records_are_skipped_by_type(shared_data):
    assert _outcomes(read_warc(shared_data / "warc" / "whirlwind.warc.wat.gz")) == {
        "record_warcinfo": 1, "record_metadata": 1}
    assert _outcomes(read_warc(shared_data / "warc" / "whirlwind.warc.wet.gz")) == {
        "record_warcinfo": 1, "record_conversion": 1}


def test_provenance_and_range_read(shared_data):
    path = shared_data / "warc" / "dolma-sample-0000.warc.gz"
    pages = [r for r in read_warc(path, name="dolma.warc.gz") if isinstance(r, WarcPage)]
    p = pages[3]
    assert p.url.startswith("https://") and not p.url.startswith("<")  # wget's <...> unwrapped
    assert p.warc_filename == "dolma.warc.gz" and p.record_id.startswith("urn:uuid:") and p.date.startswith("2024-04-25")
    again = list(read_warc(path, p.offset, p.length, name="dolma.warc.gz"))
    assert len(again) == 1 and again[0].html == p.html and again[0].offset == p.offset
    gm = p.general_metadata()
    assert gm["warc_record_offset"] == p.offset and gm["warc_record_length"] == p.length


def test_truncated_and_corrupt_gzip_lose_only_the_damage(shared_data, tmp_path):
    """A cut file keeps everything before the cut; garbage inside one member costs that member only
    (reading resyncs at the next gzip member; tests/test_warc_damage.py has the detailed cases)."""
    data = (shared_data / "warc" / "resiliparse-warcfile.warc.gz").read_bytes()
    full = _outcomes(read_warc(shared_data / "warc" / "resiliparse-warcfile.warc.gz"))
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[:120000])
    got = _outcomes(read_warc(cut))
    assert got["failed:warc_truncated"] == 1 and 0 < got["page"] < full["page"]
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(data[:50000] + b"\x00garbage" * 300 + data[52400:])
    got = _outcomes(read_warc(bad))
    assert got["failed:corrupt_record"] == 1 and got["page"] == full["page"] - 1
    assert sum(got.values()) == sum(full.values())  # the damaged record is counted, none vanished


def test_truncated_plain_warc(shared_data, tmp_path):
    raw = gzip.decompress((shared_data / "warc" / "resiliparse-warcfile.warc.gz").read_bytes())
    f = tmp_path / "cut.warc"
    f.write_bytes(raw[:30000])
    got = _outcomes(read_warc(f))
    assert got["failed:warc_truncated"] == 1 and got["record_warcinfo"] == 1


def test_missing_file_is_one_failure(tmp_path):
    got = list(read_warc(tmp_path / "nope.warc.gz"))
    assert len(got) == 1 and isinstance(got[0], Failure) and got[0].error == "warc_unreadable"


def test_sample_warcs_records_and_damaged_file(sample_dir):
    exp = json.loads((sample_dir / "sample.json").read_text())["expected"]["warc"]
    got = _outcomes(read_warc(sample_dir / exp["path"]))
    assert got["page"] == exp["html_responses"]
    assert got["record_revisit"] == exp["records"]["revisit"] and got["not_html"] == len(exp["non_html"])
    dmg = exp["damaged"]
    recs = list(read_warc(sample_dir / dmg["path"]))
    pages = [r.url for r in recs if isinstance(r, WarcPage)]
    assert pages == dmg["complete_page_urls"]
    fails = [r for r in recs if isinstance(r, Failure)]
    assert len(fails) == 1 and fails[0].error == "warc_truncated"


def test_partition_function_round_trip_without_spark(sample_dir):
    """The mapInArrow body over the sample's two WARCs: documents, reject rows and counters come back."""
    import pyarrow as pa

    from pmd.interleaved.run import sample_config
    from pmd.interleaved.stages import UNIT_SCHEMA, expand_inputs, process_batches, split_rows

    cfg = sample_config(sample_dir / "sample.json")
    units = expand_inputs(cfg.inputs, sample_dir)
    assert [u.name for u in units] == ["warc/sample.warc.gz", "warc/damaged.warc.gz"]
    table = pa.table({"path": [u.path for u in units], "offset": [None] * 2, "length": [None] * 2,
                      "name": [u.name for u in units]}, schema=UNIT_SCHEMA)
    out = pa.Table.from_batches(list(process_batches(iter(table.to_batches()), cfg)))
    docs, rejects, book = split_rows(out)
    book.check_reconciled()
    book.check_chain("read", "extract")
    book.check_chain("extract", "filter")
    assert book.get("filter").kept == len(docs) > 20
    assert book.get("read").failed == {"warc_truncated": 1}
    kinds = Counter((r["stage"], r["reason"]) for r in rejects)
    assert kinds[("filter", "doc_language")] == book.get("filter").dropped["doc_language"]
    assert kinds[("filter_nodes", "image_url_banned")] == book.get("filter_nodes").dropped["image_url_banned"]
    assert all(d.general_metadata["warc_filename"].startswith("warc/") for d in docs)
