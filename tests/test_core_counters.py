from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmd.counters import CounterBook, ReconciliationError, StageCounters
from pmd.verdict import KEEP, Dropped, Failure, Rejected, Verdict, apply_filters


def test_verdict_requires_reason_for_drops():
    assert Verdict.ok() is KEEP and bool(KEEP)
    assert not Verdict.drop("too_short")
    with pytest.raises(ValueError):
        Verdict(False)
    with pytest.raises(ValueError):
        Failure("")
    with pytest.raises(ValueError):
        Dropped("")


def test_failure_describe_names_file_and_line():
    f = Failure("bad_json", "Expecting value", "a.jsonl", 7)
    assert f.describe() == "a.jsonl:7: bad_json: Expecting value"
    assert f.to_row()["input_line"] == 7


def test_apply_filters_counts_every_record_once():
    def short(r):
        return Verdict.drop("too_short") if len(r) < 3 else KEEP

    def boom(r):
        if r == "crash":
            raise ValueError("bad")
        return KEEP

    c = StageCounters("filter", "x")
    rejected: list[Rejected] = []
    kept = list(apply_filters(["ok!", "no", "crash", "fine"], [short, boom], c, rejected.append))
    assert kept == ["ok!", "fine"]
    assert c.input == 4 and c.kept == 2 and c.dropped == Counter(too_short=1) and c.failed == Counter(ValueError=1)
    assert c.reconciles()
    assert [r.verdict.reason if r.verdict is not None else r.failure.error for r in rejected] == ["too_short", "ValueError"]


def test_check_raises_with_stage_and_source():
    c = StageCounters("download", "cc3m", input=3, kept=1)
    c.add_failed("http_404")
    with pytest.raises(ReconciliationError, match="download.*cc3m.*in=3"):
        c.check()


counter_st = st.builds(
    lambda kept, d, f: StageCounters("s", "src", kept + sum(d.values()) + sum(f.values()), kept, Counter(d), Counter(f)),
    st.integers(0, 100),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 50)),
    st.dictionaries(st.sampled_from(["x", "y"]), st.integers(1, 50)),
)


@given(counter_st, counter_st, counter_st)
def test_merge_is_associative_commutative_and_keeps_balance(a, b, c):
    assert a.merge(b).to_dict() == b.merge(a).to_dict()
    assert a.merge(b).merge(c).to_dict() == a.merge(b.merge(c)).to_dict()
    assert a.merge(b).reconciles()


def test_merge_refuses_other_stage():
    with pytest.raises(ValueError):
        StageCounters("a").merge(StageCounters("b"))


def test_counter_book_round_trip_totals_and_chain():
    book = CounterBook()
    ing = book.get("ingest", "cc3m")
    ing.add_input(5); ing.add_kept(4); ing.add_failed("wrong_column_count")
    flt = book.get("filter", "cc3m")
    flt.add_input(4); flt.add_kept(3); flt.add_dropped("not_english")
    other = CounterBook([StageCounters("ingest", "sbu_captions", 2, 2)])
    merged = book.merge(other)
    assert merged.total("ingest").input == 7
    merged.check_reconciled()
    again = CounterBook.from_list(merged.to_list())
    assert again.to_list() == merged.to_list()
    book.check_chain("ingest", "filter")
    flt.add_input(1)
    with pytest.raises(ReconciliationError):
        book.check_chain("ingest", "filter")
    with pytest.raises(ReconciliationError, match="filter"):
        book.check_reconciled()
