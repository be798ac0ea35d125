"""Stages whose Python tasks write their own Parquet parts (the PMD ingest and filter).

A retried or duplicated (speculative) task leaves exactly one part with the same bytes; the
``Runner`` books the tasks' counts only when ``data/`` holds exactly the parts they reported; and
on Spark the parts read back as the same schema and rows the JVM writer produced, with the same
books as counting the stage's rows with a Spark job.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pmd.counters import ReconciliationError
from pmd.pairs.config import load_build_config
from pmd.pairs.counting import book_from_outcomes
from pmd.pairs.ingest import plan_units, planned_unit_batches
from pmd.pairs.outcomes import PAIR_OUTCOME_SCHEMA
from pmd.records import ImageRef, PairRecord
from pmd.spark.batches import part_task
from pmd.spark.stages import Runner, StageDir, TaskCounts, check_parts, part_files, part_names


def _yfcc_cfg(tmp_path: Path, rows: int = 1200, target_bytes: int = 64 << 10):
    from bench.yfcc_rows import write_rows

    path = write_rows(tmp_path / "yfcc100m_dataset", rows, seed=0)
    return load_build_config({
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
        "ingest": {"target_bytes": target_bytes, "batch_size": 256},
        "sources": {"yfcc100m": {"paths": [str(path)], "min_words": 3, "max_words": 8, "languages": ["en"]}},
    })


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _counts(rows) -> TaskCounts:
    return TaskCounts.from_rows(rows)


def test_retried_and_duplicated_task_leaves_one_identical_part(tmp_path):
    cfg = _yfcc_cfg(tmp_path, target_bytes=1 << 30)
    (unit,) = plan_units(cfg)
    parse = planned_unit_batches({"yfcc100m": {}}, cfg.ingest.batch_size)
    items = [("part-00000.parquet", (unit["source"], unit["unit"]))]
    data = tmp_path / "stage" / "data"
    ids = [0]  # the task's partition: one item index

    def dies_mid_way(payload):
        it = parse(payload)
        yield next(it)
        yield next(it)
        raise MemoryError("executor lost")

    with pytest.raises(MemoryError):  # the first attempt dies after writing two batches
        list(part_task(str(data), items, dies_mid_way, PAIR_OUTCOME_SCHEMA)(iter(ids)))
    assert part_names(str(data)) == [] and os.listdir(data) == []  # nothing visible, no temp left

    retry = list(part_task(str(data), items, parse, PAIR_OUTCOME_SCHEMA)(iter(ids)))
    first = _sha(data / "part-00000.parquet")
    speculative = list(part_task(str(data), items, parse, PAIR_OUTCOME_SCHEMA)(iter(ids)))
    assert os.listdir(data) == ["part-00000.parquet"] and _sha(data / "part-00000.parquet") == first
    assert retry == speculative and all(r[0] == "part-00000.parquet" for r in retry)

    # Spark keeps one attempt's result: those counts are the part's rows, by outcome and reason
    done = _counts(retry)
    table = pq.read_table(data / "part-00000.parquet")
    assert table.schema == PAIR_OUTCOME_SCHEMA and done.files == {"part-00000.parquet": table.num_rows}
    by_group: dict = {}
    for r in table.select(["source", "outcome", "reason"]).to_pylist():
        key = (r["source"], r["outcome"], r["reason"])
        by_group[key] = by_group.get(key, 0) + 1
    assert {(s, o, r): n for s, o, r, n in done.counts} == by_group
    assert {o for _, o, _, _ in done.counts} >= {"kept", "dropped"}

    runner = Runner(None, str(tmp_path), fingerprint=lambda s: s, book=book_from_outcomes)
    book = runner.task_book("ingest", str(data), done, None)
    assert book.total("ingest").input == table.num_rows
    # booked as a later stage, its input is what the stage before kept: one row more cannot balance
    runner.task_book("filter", str(data), done, {"yfcc100m": table.num_rows})
    with pytest.raises(ReconciliationError, match="in=%d" % (table.num_rows + 1)):
        runner.task_book("filter", str(data), done, {"yfcc100m": table.num_rows + 1})
    # a part that lost a row no longer matches its task's count
    pq.write_table(table.slice(1), data / "part-00000.parquet")
    with pytest.raises(ReconciliationError, match="rows differ"):
        runner.task_book("ingest", str(data), done, None)


def test_parts_must_be_exactly_what_the_tasks_reported(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    t = pa.table({"x": [1, 2, 3]})
    pq.write_table(t, data / "part-00000.parquet")
    (data / ".part-00001.parquet.tmp-dead").write_bytes(b"half")  # a killed attempt's temp: not read
    (data / "_SUCCESS").write_text("")
    assert part_files(str(data)) == {"part-00000.parquet": 3}
    check_parts("ingest", str(data), {"part-00000.parquet": 3})
    with pytest.raises(ReconciliationError, match="missing"):
        check_parts("ingest", str(data), {"part-00000.parquet": 3, "part-00001.parquet": 0})
    with pytest.raises(ReconciliationError, match="rows differ"):
        check_parts("ingest", str(data), {"part-00000.parquet": 2})
    pq.write_table(t, data / "part-00002.parquet")
    with pytest.raises(ReconciliationError, match="stray"):
        check_parts("ingest", str(data), {"part-00000.parquet": 3})


def test_a_unit_whose_parser_crashes_is_counted_failed(tmp_path, monkeypatch):
    from pmd.sources import registry

    class Boom:
        def parse(self, unit, options):
            yield PairRecord("coco", "a cat on a mat", ImageRef(path="a.jpg"), input_file="f", input_line=1)
            raise RuntimeError("bad parser")

    monkeypatch.setitem(registry.SOURCES, "coco", Boom())
    import pickle

    from pmd.sources.base import InputUnit

    items = [("part-00003.parquet", ("coco", pickle.dumps(InputUnit("coco", ("f",)))))]
    ids = [0]
    done = _counts(part_task(str(tmp_path), items, planned_unit_batches({}, 10), PAIR_OUTCOME_SCHEMA)(iter(ids)))
    assert done.counts == (("coco", "failed", "parser_crash", 1), ("coco", "kept", None, 1))
    assert done.files == {"part-00003.parquet": 2}
    check_parts("ingest", str(tmp_path), done.files)


@pytest.fixture(scope="module")
def spark():
    from pmd.spark.session import spark_session

    return spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "2"})


def _spark_rows(spark, path):
    df = spark.read.parquet(path)
    return df.schema, sorted((tuple(r) for r in df.collect()), key=repr)


@pytest.mark.spark
def test_python_written_stages_equal_the_jvm_written_ones(spark, tmp_path):
    """Ingest and filter through ``write_parts`` give Spark's readers the same schema (types,
    nullability, column order) and rows, and the Runner the same books, as ``mapInArrow`` + Spark's
    writer + counting the written rows: the path these stages took before."""
    from pmd.pairs.filtering import filter_fn, source_filters
    from pmd.pairs.ingest import UNIT_DDL, parse_units_fn, resolve_options
    from pmd.spark.batches import map_batches
    from pmd.spark.pairs.filtering import run_filter
    from pmd.spark.pairs.ingest import run_ingest

    cfg = _yfcc_cfg(tmp_path)
    n_units = len(plan_units(cfg))
    assert n_units >= 3
    new = Runner(spark, str(tmp_path / "new"), fingerprint=lambda s: s, book=book_from_outcomes)
    new.stage("ingest", lambda sd: run_ingest(spark, cfg, sd.data), None)
    new.stage("filter", lambda sd: run_filter(spark, cfg, new.sd("ingest").data, sd.data), "ingest")
    assert part_names(new.sd("ingest").data) == [f"part-{i:05d}.parquet" for i in range(n_units)]
    assert part_names(new.sd("filter").data) == part_names(new.sd("ingest").data)

    # the old path: rows through the JVM, Spark's Parquet writer, the books counted by Spark
    old = Runner(spark, str(tmp_path / "old"), fingerprint=lambda s: s, book=book_from_outcomes)
    options = {n: resolve_options(s.options, cfg.base_dir) for n, s in cfg.enabled_sources().items()}

    def old_ingest(sd: StageDir) -> None:
        units = [(u["source"], u["unit_index"], bytearray(u["unit"])) for u in plan_units(cfg)]
        df = spark.createDataFrame(spark.sparkContext.parallelize(units, len(units)), UNIT_DDL)
        map_batches(df, parse_units_fn(options, cfg.ingest.batch_size), PAIR_OUTCOME_SCHEMA) \
            .write.mode("overwrite").parquet(sd.data)

    def old_filter(sd: StageDir) -> None:
        chains = {n: source_filters(s) for n, s in cfg.enabled_sources().items()}
        kept = old.kept("ingest").select(*PAIR_OUTCOME_SCHEMA.names)
        map_batches(kept, filter_fn(chains, cfg.ingest.batch_size), PAIR_OUTCOME_SCHEMA) \
            .write.mode("overwrite").parquet(sd.data)

    old.stage("ingest", old_ingest, None)
    old.stage("filter", old_filter, "ingest")
    # the DataFrame form of run_filter is the old path too
    also = Runner(spark, str(tmp_path / "also"), fingerprint=lambda s: s, book=book_from_outcomes)
    also.book = old.book
    also.stage("filter", lambda sd: run_filter(spark, cfg, old.kept("ingest"), sd.data), "ingest")

    for stage in ("ingest", "filter"):
        got, want = _spark_rows(spark, new.sd(stage).data), _spark_rows(spark, old.sd(stage).data)
        assert got[0] == want[0]  # StructType equality: names, order, types, nullability
        assert got[1] == want[1] and len(got[1]) > 0
        assert new.sd(stage).counters().to_list() == old.sd(stage).counters().to_list()
    assert _spark_rows(spark, also.sd("filter").data) == _spark_rows(spark, old.sd("filter").data)
    tot = new.book.total("filter")
    assert tot.input == new.book.total("ingest").kept and tot.kept > 0 and tot.n_dropped > 0


@pytest.mark.spark
def test_a_stage_without_units_leaves_an_empty_readable_part(spark, tmp_path):
    from pmd.spark.pairs.filtering import run_filter
    from pmd.spark.pairs.ingest import run_ingest

    cfg = load_build_config({"sources": {"yfcc100m": {"paths": [], "min_words": 3}}})
    r = Runner(spark, str(tmp_path), fingerprint=lambda s: s, book=book_from_outcomes)
    r.stage("ingest", lambda sd: run_ingest(spark, cfg, sd.data), None)
    r.stage("filter", lambda sd: run_filter(spark, cfg, r.sd("ingest").data, sd.data), "ingest")
    for stage in ("ingest", "filter"):
        df = r.read(stage)
        assert df.columns == PAIR_OUTCOME_SCHEMA.names and df.count() == 0
    assert r.book.total("filter").input == 0


def _run_pair(spark, cfg, root: Path) -> Runner:
    from pmd.spark.pairs.filtering import run_filter
    from pmd.spark.pairs.ingest import run_ingest_filter

    r = Runner(spark, str(root), fingerprint=lambda s: s, book=book_from_outcomes)
    r.stage_pair("ingest", "filter", lambda si, sf: run_ingest_filter(spark, cfg, si.data, sf.data),
                 lambda sf: run_filter(spark, cfg, r.sd("ingest").data, sf.data))
    return r


def _part_shas(data: str) -> dict[str, str]:
    return {n: _sha(Path(data) / n) for n in part_names(data)}


@pytest.mark.spark
def test_fused_ingest_filter_equals_the_two_stages_byte_for_byte(spark, tmp_path):
    """One job writing both stages' parts (what the build runs) leaves the same part files, bytes and
    books as ingest then filter; with ingest done and the filter's work lost, a rerun makes the
    filter alone from the ingest parts, the same bytes again; with both done nothing runs."""
    from pmd.spark.pairs.filtering import run_filter
    from pmd.spark.pairs.ingest import run_ingest

    cfg = _yfcc_cfg(tmp_path)
    assert len(plan_units(cfg)) >= 3
    two = Runner(spark, str(tmp_path / "two"), fingerprint=lambda s: s, book=book_from_outcomes)
    two.stage("ingest", lambda sd: run_ingest(spark, cfg, sd.data), None)
    two.stage("filter", lambda sd: run_filter(spark, cfg, two.sd("ingest").data, sd.data), "ingest")
    one = _run_pair(spark, cfg, tmp_path / "one")
    for stage in ("ingest", "filter"):
        assert _part_shas(one.sd(stage).data) == _part_shas(two.sd(stage).data) != {}
        assert one.sd(stage).counters().to_list() == two.sd(stage).counters().to_list()
    assert one.sd("ingest").info()["made_with"] == "filter" and one.sd("filter").info()["made_with"] == "ingest"
    tot = one.book.total("filter")
    assert tot.input == one.book.total("ingest").kept and tot.kept > 0 and tot.n_dropped > 0
    want = _part_shas(two.sd("filter").data)

    # the filter's marker and a part lost: the rerun keeps ingest and redoes the filter alone
    os.remove(one.sd("filter").marker)
    os.remove(Path(one.sd("filter").data) / part_names(one.sd("filter").data)[0])
    ingest_marker = Path(one.sd("ingest").marker).read_bytes()
    again = _run_pair(spark, cfg, tmp_path / "one")
    assert again.skipped == ["ingest"] and Path(one.sd("ingest").marker).read_bytes() == ingest_marker
    assert _part_shas(one.sd("filter").data) == want and "made_with" not in one.sd("filter").info()
    assert again.book.to_list() == one.book.to_list()
    done = _run_pair(spark, cfg, tmp_path / "one")
    assert done.skipped == ["ingest", "filter"] and done.book.to_list() == one.book.to_list()


def test_a_task_dying_mid_pair_leaves_neither_part(tmp_path):
    """``write_part_pair``: a task that dies half way leaves no file of either stage (temp files gone),
    and a rerun writes both whole."""
    from pmd.pairs.filtering import source_filters
    from pmd.pairs.ingest import planned_ingest_filter_pairs
    from pmd.spark.batches import write_part_pair

    cfg = _yfcc_cfg(tmp_path, target_bytes=1 << 30)
    (unit,) = plan_units(cfg)
    chains = {n: source_filters(s) for n, s in cfg.enabled_sources().items()}
    pairs = planned_ingest_filter_pairs({"yfcc100m": {}}, cfg.ingest.batch_size, chains)
    payload = (unit["source"], unit["unit"])
    urls = (str(tmp_path / "ingest"), str(tmp_path / "filter"))

    def dies(p):
        it = pairs(p)
        for _ in range(3):
            yield next(it)
        raise MemoryError("executor lost")

    with pytest.raises(MemoryError):
        write_part_pair(urls, "part-00000.parquet", dies(payload), PAIR_OUTCOME_SCHEMA)
    assert all(os.listdir(u) == [] for u in urls)
    rows = write_part_pair(urls, "part-00000.parquet", pairs(payload), PAIR_OUTCOME_SCHEMA)
    files = {i: TaskCounts.from_rows(r for j, r in rows if j == i).files for i in (0, 1)}
    assert [part_files(u) for u in urls] == [files[0], files[1]]
    assert 0 < files[1]["part-00000.parquet"] < files[0]["part-00000.parquet"] == 1200
