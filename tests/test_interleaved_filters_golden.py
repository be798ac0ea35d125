"""The filters as named rules decide exactly what the filters before the split decided.

Golden outcomes (tests/golden/filters_*.json, made by tests/golden/make_filters_golden.py on commit
ed999f8) for the real pages of ../shared/data/web and the embedded sample's WARC documents, under
both profiles, with and without the image minimum: every document's outcome (its drop reason, or
the kept document itself), every removed paragraph and image, and the counters.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
import make_filters_golden as mg  # noqa: E402

sys.path.remove(str(GOLDEN))


def _compare(golden: dict, docs: list, only: set[str] | None = None) -> None:
    for case, (profile, overrides) in mg.CASES.items():
        want = golden["cases"][case]
        got = mg.outcomes(docs, profile, overrides)
        ids = set(want["docs"]) if only is None else only
        diff = {i: (want["docs"][i], got["docs"].get(i)) for i in ids if want["docs"][i] != got["docs"].get(i)}
        assert not diff, f"{case}: {len(diff)} documents decided differently, e.g. {sorted(diff.items())[:3]}"
        urls = {d.url for d in docs if d.id in ids}
        rej_want = {u: v for u, v in want["node_rejects"].items() if u in urls}
        rej_got = {u: v for u, v in got["node_rejects"].items() if u in urls}
        assert rej_got == rej_want, f"{case}: removed paragraphs/images differ"
        if only is None:
            assert got["counters"] == want["counters"], case


def test_same_outcomes_on_the_sample_warc_documents():
    golden = json.loads((GOLDEN / "filters_sample_warc.json").read_text(encoding="utf-8"))
    docs = [mg.from_dict(d) for d in golden["inputs"]]
    assert len(docs) == 45 and {d.id: mg.digest(mg.doc_dict(d)) for d in docs} == golden["input_digests"]
    _compare(golden, docs)


def test_same_outcomes_on_the_real_pages(shared_data):
    golden = json.loads((GOLDEN / "filters_web.json").read_text(encoding="utf-8"))
    docs = mg.web_documents(shared_data / "web")
    same = {d.id for d in docs if golden["input_digests"].get(d.id) == mg.digest(mg.doc_dict(d))}
    # pages whose extraction changed since the golden was made are not comparable; most must be
    assert len(same) >= 0.8 * len(golden["input_digests"]) > 300, (
        f"only {len(same)} of {len(golden['input_digests'])} pages extract as when the golden was made: "
        "regenerate it (tests/golden/make_filters_golden.py) after checking the filters are unchanged")
    _compare(golden, docs, only=same if len(same) < len(golden["input_digests"]) else None)
