"""Every source of the embedded sample parses; failures are exactly the planted malformed lines and
bad URLs, and kept pairs / YFCC branches / WIT rules match what the generator planted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pmd.records import PairRecord
from pmd.sources.registry import PMD_SOURCES, get_source
from pmd.text.normalize import collapse_whitespace, unescape_html
from pmd.verdict import Dropped, Failure

FILE_OPTIONS = ("image_root", "karpathy")


def _clean(text: str) -> str:
    return collapse_whitespace(unescape_html(text))


def _resolve(sample_dir: Path, options: dict) -> dict:
    """Options naming files are relative to the sample directory."""
    return {k: (str(sample_dir / v) if k in FILE_OPTIONS and isinstance(v, str) and not v.startswith("/") else v)
            for k, v in options.items()}


@pytest.fixture(scope="module")
def parsed(sample_dir):
    sample = json.loads((sample_dir / "sample.json").read_text(encoding="utf-8"))
    out = {}
    for name, spec in sample["sources"].items():
        paths = [str(sample_dir / p) for p in spec["paths"]]
        out[name] = list(get_source(name).parse_all(paths, _resolve(sample_dir, spec["options"])))
    return sample, out


def test_every_pmd_source_is_in_the_sample(parsed):
    sample, _ = parsed
    assert set(sample["sources"]) == set(PMD_SOURCES)


@pytest.mark.parametrize("name", PMD_SOURCES)
def test_sample_source_failures_equal_planted_ones(parsed, sample_dir, name):
    sample, outs = parsed
    exp = sample["expected"]
    planted = sorted([(str(sample_dir / m["file"]), m["line"]) for m in exp["malformed"].get(name, [])] +
                     [(str(sample_dir / b["file"]), b["line"]) for b in exp["bad_urls"].get(name, [])])
    failures = sorted((f.input_file, f.input_line) for f in outs[name] if isinstance(f, Failure))
    assert failures == planted
    assert sum(isinstance(o, PairRecord) for o in outs[name]) == exp["kept_pairs"][name]


def test_sample_yfcc_branches(parsed, sample_dir):
    sample, outs = parsed
    by_line = {o.input_line: o for o in outs["yfcc100m"]}
    for e in sample["expected"]["yfcc"]:
        o = by_line[e["line"]]
        if e["reason"] is None:
            assert isinstance(o, PairRecord), e
            # the rule also unescapes entities and collapses spaces: compare on that form
            assert (o.meta["caption_field"], o.text, o.image.url) == (e["field"], _clean(e["text"]), e["url"]), e
        elif e["reason"] in ("wrong_column_count", "bad_url"):
            assert isinstance(o, Failure) and o.error == e["reason"], e
        else:  # the issue names the rule's language drop no_english_caption
            reason = {"not_english": "no_english_caption"}.get(e["reason"], e["reason"])
            assert isinstance(o, Dropped) and o.reason == reason, e


def test_sample_wit_rules_and_leakage(parsed):
    sample, outs = parsed
    wit = [o for o in outs["wit"]]
    exp = sample["expected"]["wit"]
    assert len(wit) == len(exp)
    for o, e in zip(wit, exp):
        if e["text"] is None:
            assert not isinstance(o, PairRecord), e
        else:
            assert isinstance(o, PairRecord) and o.text == _clean(e["text"]), e
    leak = sample["expected"]["leakage"]
    reasons = Counter(o.reason for o in outs["localized_narratives__coco"] if isinstance(o, Dropped))
    assert reasons["karpathy_eval_leak"] == leak["localized_narratives__coco"]["sentences"]
    reasons = Counter(o.reason for o in outs["visual_genome"] if isinstance(o, Dropped))
    assert reasons["karpathy_eval_leak"] == leak["visual_genome"]["regions"]
