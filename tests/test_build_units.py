"""Pure parts of the PMD build (no Spark): config, filters, dedup winners, reconciliation, shard rows."""

from __future__ import annotations

import json
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pmd.pairs.config import BuildConfig, SourceConfig, load_build_config, resolve_path, stage_fingerprint
from pmd.pairs.counting import book_from_outcomes
from pmd.pairs.dedup import coco_id_of, dedup_key, mark_leaks, normalise_caption, pick_winners
from pmd.pairs.download import fetch_key, url_requests
from pmd.pairs.filtering import filter_rows, source_filters
from pmd.pairs.ingest import parse_unit, resolve_options
from pmd.pairs.outcomes import PAIR_OUTCOME_SCHEMA, kept_row, to_batch
from pmd.pairs.shards import SIDE_SCHEMA, sample_json, sample_members, sidecar_row
from pmd.pairs.stats import merge_parts, ordered_counters
from pmd.config import ConfigError
from pmd.counters import CounterBook, ReconciliationError
from pmd.records import Crop, ImageRef, PairRecord
from pmd.spark.stages import check_books


def _row(source="conceptual_captions", text="a red square on a grey background", url="http://x.test/a.jpg", **kw):
    rec = PairRecord(source, text, ImageRef(url=url), {"k": 1}, input_file="f.tsv", input_line=3)
    return {**kept_row(rec), **kw}


class FakeIdentifier:
    def __init__(self, labels):
        self.labels = labels

    def predict(self, texts):
        return [self.labels.get(t, ("en", 0.9)) for t in texts]


def test_sample_config_loads_and_rejects_unknown_keys():
    cfg = load_build_config("pmd_sample")
    assert cfg.spark.master == "local[2]"
    assert cfg.download["allow_loopback"] is True
    assert cfg.sources["conceptual_captions"].languages == ["en"]
    with pytest.raises(ConfigError, match="shard.samples_per_shardd"):
        load_build_config({"shard": {"samples_per_shardd": 3}})


def test_stage_fingerprint_changes_only_downstream():
    a = BuildConfig(sources={"coco": SourceConfig(paths=["x"])})
    b = load_build_config({"sources": {"coco": {"paths": ["x"]}}, "shard": {"samples_per_shard": 7}})
    assert stage_fingerprint(a, "download") == stage_fingerprint(b, "download")
    assert stage_fingerprint(a, "shard") != stage_fingerprint(b, "shard")
    c = load_build_config({"sources": {"coco": {"paths": ["y"]}}})
    assert stage_fingerprint(a, "ingest") != stage_fingerprint(c, "ingest")


def test_priority_lists_configured_sources_first():
    cfg = load_build_config({"sources": {"a": {"paths": []}, "b": {"paths": []}, "c": {"paths": []}},
                             "dedup": {"source_priority": ["c"]}})
    assert cfg.priority() == {"c": 0, "a": 1, "b": 2}


def test_resolve_path_and_options(tmp_path):
    (tmp_path / "karp.json").write_text("{}")
    assert resolve_path("a/b.tsv", "/data") == "/data/a/b.tsv"
    assert resolve_path("s3://bucket/x", "/data") == "s3://bucket/x"
    assert resolve_path("x.tsv", "s3://bucket/in") == "s3://bucket/in/x.tsv"
    opts = resolve_options({"karpathy": "karp.json", "image_root": "imgs.zip", "split": "train"}, str(tmp_path))
    assert opts == {"karpathy": str(tmp_path / "karp.json"), "image_root": "imgs.zip", "split": "train"}


def test_filter_rows_reasons_per_source():
    chains = {"conceptual_captions": source_filters(SourceConfig(paths=[], languages=["en"], min_lang_score=0.5,
                                                                 min_words=3, max_words=6)),
              "coco": source_filters(SourceConfig(paths=[]))}
    ident = FakeIdentifier({"une image rouge sur fond gris": ("fr", 0.9), "a red square maybe": ("en", 0.3)})
    rows = [_row(text="a red square on grey"), _row(text="une image rouge sur fond gris"),
            _row(text="a red square maybe"), _row(text="red square"),
            _row(text="one two three four five six seven"), _row(source="coco", text="une image rouge sur fond gris"),
            _row(source="yfcc100m")]
    out = filter_rows(rows, chains, ident)
    assert [(r["outcome"], r["reason"]) for r in out] == [
        ("kept", None), ("dropped", "not_english"), ("dropped", "low_language_score"),
        ("dropped", "too_few_words"), ("dropped", "too_many_words"), ("kept", None),
        ("dropped", "source_not_configured")]
    assert out[1]["lang"] == "fr" and out[5]["lang"] == "fr"  # annotated even when not checked


def test_mark_leaks_and_dedup_keys():
    rows = [_row(source="visual_genome", meta=json.dumps({"coco_id": 42})),
            _row(source="localized_narratives__coco", meta=json.dumps({"image_id": "7"})),
            _row(source="visual_genome", meta=json.dumps({"coco_id": None}))]
    out = list(mark_leaks(rows, frozenset({42, 7}), frozenset({"visual_genome", "localized_narratives__coco"}),
                          {"visual_genome": 0}))
    assert [r["reason"] for r in out] == ["karpathy_eval_leak", "karpathy_eval_leak", None]
    assert [r["priority"] for r in out] == [0, 1, 0]
    assert coco_id_of("visual_genome", {"coco_id": "12"}) == 12
    assert normalise_caption("  A  Red\tSquare ") == "a red square"
    assert dedup_key(_row(text="A red  square")) == dedup_key(_row(text="a red square"))


def test_pick_winners_is_priority_then_id():
    rows = [{"dedup_key": "k", "priority": 1, "id": "aa"}, {"dedup_key": "k", "priority": 0, "id": "ff"},
            {"dedup_key": "k", "priority": 0, "id": "bb"}, {"dedup_key": "j", "priority": 5, "id": "cc"}]
    assert pick_winners(rows) == {"k": "bb", "j": "cc"}


def test_url_requests_fetch_crops_uncropped_once():
    crop = Crop(1, 2, 30, 40)
    a = ImageRef(url="http://x.test/1.jpg")
    b = ImageRef(url="http://x.test/2.jpg", crop=crop)
    c = ImageRef(url="http://x.test/2.jpg", crop=Crop(5, 5, 10, 10))
    rows = []
    for ref in (a, b, c):
        cr = ref.crop
        rows.append({"image_key": ref.key(), "image_url": ref.url, "image_path": None,
                     "crop_x": cr.x if cr else None, "crop_y": cr.y if cr else None,
                     "crop_width": cr.width if cr else None, "crop_height": cr.height if cr else None})
    req, crops = url_requests(pa.Table.from_pylist(rows))
    assert sorted(req.column("image_key").to_pylist()) == sorted([a.key(), fetch_key("http://x.test/2.jpg")])
    assert crops.column("image_key").to_pylist() == [b.key(), c.key()]
    assert set(crops.column("fetch_key").to_pylist()) == {ImageRef(url="http://x.test/2.jpg").key()}


def test_reconciliation_names_stage_and_source():
    ok = book_from_outcomes("filter", [("coco", "kept", None, 3), ("coco", "dropped", "too_few_words", 1)], {"coco": 4})
    ok.check_reconciled()
    bad = book_from_outcomes("download", [("sbu_captions", "kept", None, 3)], {"sbu_captions": 5})
    with pytest.raises(ReconciliationError, match="'download' source 'sbu_captions'"):
        bad.check_reconciled()
    book = CounterBook()
    book = book.merge(book_from_outcomes("ingest", [("coco", "kept", None, 4)], None))
    book = book.merge(book_from_outcomes("filter", [("coco", "kept", None, 3)], {"coco": 3}))
    with pytest.raises(ReconciliationError, match="ingest kept 4 but filter took in 3"):
        check_books(book, ["ingest", "filter"])


def test_ordered_counters_follow_pipeline_order():
    book = CounterBook()
    for stage in ("shard", "ingest", "dedup_images", "filter"):
        book = book.merge(book_from_outcomes(stage, [("coco", "kept", None, 1)], None))
    assert [c["stage"] for c in ordered_counters(book)] == ["ingest", "filter", "dedup_images", "shard"]


def test_parser_crash_becomes_one_failed_row(monkeypatch):
    from pmd.sources import registry

    class Boom:
        def parse(self, unit, options):
            yield PairRecord("coco", "a cat on a mat", ImageRef(path="a.jpg"), input_file="f", input_line=1)
            raise RuntimeError("bad parser")

    monkeypatch.setitem(registry.SOURCES, "coco", Boom())
    rows = list(parse_unit("coco", type("U", (), {"path": "f"})(), {}))
    assert [r["outcome"] for r in rows] == ["kept", "failed"]
    assert rows[1]["reason"] == "parser_crash" and rows[1]["input_line"] == 1 and "bad parser" in rows[1]["message"]


def test_sample_members_and_sidecar_row():
    rec = PairRecord("visual_genome", "a red square", ImageRef(path="vg.zip::VG_100K/1.jpg", crop=Crop(1, 2, 3, 4)),
                     {"region_id": 9})
    row = {**kept_row(rec), "width": 3, "height": 4, "original_width": 10, "original_height": 10,
           "sha256": "ab", "jpg": b"\xff\xd8jpeg"}
    j = sample_json(row)
    assert j["crop"] == {"x": 1, "y": 2, "width": 3, "height": 4} and "image_url" not in j
    assert j["meta"] == {"region_id": 9} and j["image_path"] == "vg.zip::VG_100K/1.jpg"
    m = sample_members(row)
    assert m["jpg"] == b"\xff\xd8jpeg" and m["txt"] == b"a red square"
    assert json.loads(m["json"])["id"] == rec.id
    side = pa.Table.from_pylist([sidecar_row(row, "shards/pairs-000000.tar")], schema=SIDE_SCHEMA)
    assert side.column("key").to_pylist() == [rec.id] and side.column("crop").to_pylist()[0]["height"] == 4


def test_merge_parts_keeps_order(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(3):
        pq.write_table(pa.table({"x": [i * 10, i * 10 + 1]}), parts / f"part-0000{i}-abc.snappy.parquet")
    (parts / "_SUCCESS").write_text("")
    merge_parts(str(parts), str(tmp_path / "one.parquet"))
    assert pq.read_table(tmp_path / "one.parquet").column("x").to_pylist() == [0, 1, 10, 11, 20, 21]


def test_outcome_batch_has_every_column():
    b = to_batch([_row()], PAIR_OUTCOME_SCHEMA)
    assert b.schema == PAIR_OUTCOME_SCHEMA and b.num_rows == 1
    assert pickle.loads(pickle.dumps(b.to_pylist()))[0]["outcome"] == "kept"


def test_cluster_example_config_is_valid():
    from pmd.pairs.download import download_config
    from pmd.sources.registry import get_source

    cfg = load_build_config("pmd_cluster_example")
    assert cfg.spark.master is None and cfg.base_dir.startswith("s3://")
    assert download_config(cfg).allow_loopback is False
    for name, s in cfg.sources.items():
        get_source(name).resolve_options(s.options)


def test_no_row_runs_language_id_twice(tmp_path, monkeypatch):
    """YFCC rows are identified in the parse; the filter stage carries that label and predicts none."""
    import pmd.text.langid as langid
    from bench.yfcc_rows import write_rows
    from pmd.pairs.filtering import filter_rows, source_filters
    from pmd.sources.base import InputUnit

    real = langid.get_identifier()
    seen = {"parse": 0, "filter": 0}
    phase = {"now": "parse"}

    class Counting:
        def predict(self, texts):
            seen[phase["now"]] += len(texts)
            return real.predict(texts)

        def predict_arrays(self, texts):
            seen[phase["now"]] += len(texts)
            return real.predict_arrays(texts)

    monkeypatch.setattr(langid, "get_identifier", lambda *a, **k: Counting())
    path = write_rows(tmp_path / "yfcc100m_dataset", 400, seed=0)
    rows = [r for r in parse_unit("yfcc100m", InputUnit("yfcc100m", (str(path),)), {}) if r["outcome"] == "kept"]
    assert rows and seen["parse"] >= len(rows) and all(r["lang"] for r in rows)
    phase["now"] = "filter"
    cfg = SourceConfig(paths=[], languages=["en"], min_lang_score=0.5)
    out = filter_rows(rows, {"yfcc100m": source_filters(cfg)})
    assert seen["filter"] == 0
    assert [(r["lang"], r["lang_score"]) for r in out] == [(r["lang"], r["lang_score"]) for r in rows]
    # a row without a label (any other source) is predicted exactly once, in the filter
    other = [dict(rows[0], source="coco", lang=None, lang_score=None)]
    filter_rows(other, {"coco": source_filters(cfg)})
    assert seen["filter"] == 1


def test_pmd_build_exits_non_zero_naming_the_stage_that_kept_nothing(sample_build, tmp_path, caplog):
    """Issue 15: a build whose download stage kept no pair still commits (so retry-failed can recover it)
    but `pmd build` exits 1 and names the stage, its count and its top reasons."""
    import json
    import logging

    from pmd.commands.build import _exit_status

    assert _exit_status(sample_build) == 0
    m = json.loads((sample_build / "manifest.json").read_text())
    for c in m["counters"]:
        if c["stage"] in ("download", "dedup_images", "shard"):
            c.update(kept=0, dropped={}, failed={"timeout": c["input"]} if c["stage"] == "download" else {})
    m.update(total_samples=0, shards=[])
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    with caplog.at_level(logging.ERROR, logger="pmd.build"):
        assert _exit_status(tmp_path) == 1
    assert "stage download kept 0 of" in caplog.text and "timeout" in caplog.text and "retry-failed" in caplog.text


def _mixed_outcomes():
    """Outcomes of every kind: records with URL / path / crop images and odd metas, drops, failures."""
    from pmd.verdict import Dropped, Failure

    return [
        PairRecord("coco", "a cat on a mat", ImageRef(path="a.jpg"), {"image_id": 7, "split": "train"}, "en", 0.5,
                   "f.json", None),
        Dropped("empty_caption", "f.tsv", 4),
        PairRecord("visual_genome", 'a "red" {square}', ImageRef(path="vg.zip::1.jpg", crop=Crop(1, 2, 3, 4)),
                   {"region_id": 9, "ok": True, "x": None, "w": 1.5, "%s": "100%", "{k}": "\\\n\t\u2028é😀"},
                   input_file="r.json", input_line=2),
        Failure("bad_json", "x" * 2000, "g.json", 1),
        Dropped("too_short", "f.tsv", 5, "only 2 words"),
        PairRecord("sbu_captions", "one two three", ImageRef(url="http://x.test/b.jpg"), {}, input_file="s.txt",
                   input_line=9),
        PairRecord("sbu_captions", "one two four", ImageRef(url="http://x.test/c.jpg"), {2: "int keys", 1: [1, {"c": 2}]}),
        Failure("parser_crash", "", None, None),
    ]


def test_outcome_batch_equals_the_rows(tmp_path):
    """The columnar ingest output is row for row what kept_row/reject_row give (YFCC and odd records)."""
    from bench.yfcc_rows import write_rows
    from pmd.pairs.outcomes import outcome_batch, reject_row
    from pmd.sources.base import InputUnit
    from pmd.sources.registry import get_source

    def rows_of(source, items):
        return [kept_row(i) if isinstance(i, PairRecord) else reject_row(source, i) for i in items]

    path = write_rows(tmp_path / "yfcc100m_dataset", 3000, seed=1)
    yfcc = list(get_source("yfcc100m").parse(InputUnit("yfcc100m", (str(path),)), {}))
    assert {type(i).__name__ for i in yfcc} == {"PairRecord", "Dropped", "Failure"}
    mixed = _mixed_outcomes()
    for source, items in (("yfcc100m", yfcc), ("coco", mixed), ("coco", mixed[:1]), ("coco", mixed[1:2])):
        got = outcome_batch(source, items)
        assert got.schema == PAIR_OUTCOME_SCHEMA
        assert got.to_pylist() == to_batch(rows_of(source, items), PAIR_OUTCOME_SCHEMA).to_pylist()
    # the Spark function (units in, batches out) gives the parse_unit rows, batch after batch
    from pmd.pairs.ingest import parse_units_fn

    unit = InputUnit("yfcc100m", (str(path),))
    units = pa.RecordBatch.from_pylist([{"source": "yfcc100m", "unit_index": 0, "unit": pickle.dumps(unit)}])
    got = pa.Table.from_batches(list(parse_units_fn({"yfcc100m": {}}, 1000)(iter([units]))))
    assert got.to_pylist() == to_batch(list(parse_unit("yfcc100m", unit, {})), PAIR_OUTCOME_SCHEMA).to_pylist()


def test_meta_json_column_is_json_dumps():
    from pmd.pairs.outcomes import meta_json_column

    metas = [r.meta for r in _mixed_outcomes() if isinstance(r, PairRecord)]
    metas += [{"a": "1", "b": "2"}, {"b": "3", "a": "4"}, {"a": "5", "c": "6"}, {"a": "7", "c": 8}, {"a": "%s"},
              {"a": None, "b": False}, {"a": "x", "b": "y", "c": "z"}, {"z": "\x00\x1f\x7f\"'"}, {}]
    assert meta_json_column(metas) == [json.dumps(m, ensure_ascii=False, sort_keys=True) for m in metas]


def test_filter_batch_equals_filter_rows():
    """The columnar filter gives the row filter's rows; record columns pass through untouched."""
    from pmd.pairs.filtering import filter_batch

    chains = {"conceptual_captions": source_filters(SourceConfig(paths=[], languages=["en"], min_lang_score=0.5,
                                                                 min_words=3, max_words=6)),
              "coco": source_filters(SourceConfig(paths=[]))}
    ident = FakeIdentifier({"une image rouge sur fond gris": ("fr", 0.9), "a red square maybe": ("en", 0.3)})
    rows = [_row(text="a red square on grey"), _row(text="une image rouge sur fond gris"),
            _row(text="a red square maybe", lang="en", lang_score=0.75), _row(text="red square"),
            _row(source="coco", text="une image rouge sur fond gris"), _row(source="yfcc100m")]
    want = to_batch(filter_rows(rows, chains, ident), PAIR_OUTCOME_SCHEMA)
    got = filter_batch(to_batch(rows, PAIR_OUTCOME_SCHEMA), chains, ident)
    assert got.to_pylist() == want.to_pylist()
    assert [r["reason"] for r in got.to_pylist()] == [None, "not_english", None, "too_few_words", None,
                                                       "source_not_configured"]
    labelled = to_batch([_row(text="a red square maybe", lang="en", lang_score=0.75)], PAIR_OUTCOME_SCHEMA)
    assert filter_batch(labelled, chains, ident).column("lang_score").to_pylist() == [0.75]  # not re-identified


def test_a_record_that_cannot_become_a_row_ends_its_unit_as_a_crash(monkeypatch):
    """A meta JSON cannot hold (a parser bug) fails the unit from that record on, in both ingest paths."""
    from pmd.pairs.ingest import parse_units_fn
    from pmd.sources import registry

    class BadMeta:
        def parse(self, unit, options):
            yield PairRecord("coco", "a cat on a mat", ImageRef(path="a.jpg"), input_file="f", input_line=1)
            yield PairRecord("coco", "a dog on a mat", ImageRef(path="b.jpg"), {"x": {1, 2}}, input_file="f", input_line=2)
            yield PairRecord("coco", "never reached", ImageRef(path="c.jpg"), input_file="f", input_line=3)

    from pmd.sources.base import InputUnit

    monkeypatch.setitem(registry.SOURCES, "coco", BadMeta())
    unit = InputUnit("coco", ("f",))
    rows = list(parse_unit("coco", unit, {}))
    assert [(r["outcome"], r["reason"], r["input_line"]) for r in rows] == [("kept", None, 1), ("failed", "parser_crash", 2)]
    units = pa.RecordBatch.from_pylist([{"source": "coco", "unit_index": 0, "unit": pickle.dumps(unit)}])
    got = pa.Table.from_batches(list(parse_units_fn({}, 10)(iter([units])))).to_pylist()
    assert got == to_batch(rows, PAIR_OUTCOME_SCHEMA).to_pylist()
