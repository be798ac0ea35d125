"""pmd.stats.card: the dataset card written with every build (both kinds)."""

from __future__ import annotations

import json

import pytest

from pmd.errors import UserError
from pmd.stats import card
from stats_fixtures import CONFIG, make_interleaved_build, make_pmd_build


@pytest.fixture(scope="module")
def pmd_card(tmp_path_factory):
    root = make_pmd_build(tmp_path_factory.mktemp("pmd"))
    path = card.write_dataset_card(root)
    return root, path, path.read_text(encoding="utf-8")


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_card_is_written_atomically_at_the_documented_path(pmd_card):
    root, path, _ = pmd_card
    assert path == root / "DATASET_CARD.md"
    assert not [p for p in root.iterdir() if p.name.startswith(".card-")]


def test_card_sources_and_terms(pmd_card):
    _, _, text = pmd_card
    sec = _section(text, "Sources and terms")
    assert "| `coco` | 3 | COCO | COCO annotations: CC BY 4.0." in sec
    assert "| `localized_narratives__coco` | 1 | Localized Narratives | Localized Narratives annotations: CC BY 4.0" in sec
    assert "SBU Captions (Ordonez et al., 2011): for research use" in sec


def test_card_filters_come_from_manifest_config(pmd_card):
    _, _, text = pmd_card
    sec = _section(text, "Filters and thresholds")
    assert "| `filter.min_lang_score` | `0.5` |" in sec
    assert "| `dedup.images` | `\"sha256\"` |" in sec
    assert "`ingest` → `filter` → `dedup` → `download` → `dedup_images` → `shard`" in sec
    cfg = _section(text, "Config").split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(cfg) == CONFIG


def test_card_counts_match_counters(pmd_card):
    root, _, text = pmd_card
    sec = _section(text, "Counts")
    assert "| download | 14 | 8 | 1 | 5 | noai 1 | http_404 3, not_an_image 1, timeout 1 |" in sec
    assert ("| `sbu_captions` | 7 | 6 | 4 | 4 | 1 | 1 | 1 | filter: lang_not_en 2 | "
            "download: http_404 2, download: timeout 1, ingest: bad_json 1 |") in sec
    raw = json.loads((root / "stats" / "counters.json").read_text())
    assert sum(line.startswith("| `") for line in sec.splitlines()) == len({r["source"] for r in raw})
    assert "| YFCC100M (filtered) | 30.3M | 12.7 | 0 |" in sec


def test_card_known_gaps_are_download_failures_by_reason(pmd_card):
    _, _, text = pmd_card
    sec = _section(text, "Known gaps")
    assert sec.startswith("\n6 of 14 pairs that reached the download stage have no image")
    assert "| `sbu_captions` | download | failed | http_404 | 2 | <http://127.0.0.1:8765/sbu_captions/0.jpg>, " in sec
    assert "| `conceptual_captions` | download | refused/dropped | noai | 1 |" in sec
    assert "| `sbu_captions` | ingest | bad_json | 1 |" in sec


def test_card_versions(pmd_card):
    _, _, text = pmd_card
    from importlib.metadata import version

    assert f"| pyspark | {version('pyspark')} |" in _section(text, "Versions")


def test_interleaved_card(tmp_path):
    root = make_interleaved_build(tmp_path)
    text = card.write_dataset_card(root).read_text()
    assert text.startswith("# Dataset card: Interleaved image-text web documents")
    assert "- Documents: 3" in text
    sec = _section(text, "Sources and terms")
    assert "3 documents from 1 WARC input(s): `warc/sample.warc.gz`." in sec and "Common Crawl terms of use" in sec
    assert "| download_nodes | 5 | 3 | 2 | 0 | download_http_404 2 | - |" in _section(text, "Counts")
    assert "| dedup | 7 | 4 | 3 | 0 | duplicate_url 2, near_duplicate 1 | - |" in text
    assert "| `filter.max_images` | `30` |" in text
    assert ("1 of 4 documents that reached the download stage were dropped there; 2 of 5 images in kept "
            "documents could not be used.") in _section(text, "Known gaps")


def test_card_before_manifest_is_written(tmp_path):
    root = make_pmd_build(tmp_path)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").unlink()
    text = card.write_dataset_card(root, manifest=manifest).read_text()
    assert "- Pairs: 8" in text and "| `filter.min_words` | `2` |" in text
    bare = card.render_dataset_card(root)
    assert "manifest.json was not written" in bare and "| ingest | 23 | 19 |" in bare


def test_card_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        card.write_dataset_card(tmp_path / "missing")
    with pytest.raises(UserError, match="unknown build kind"):
        card.render_dataset_card(tmp_path, manifest={"kind": "nope"})


def test_interleaved_card_resolves_the_filter_profile(tmp_path):
    root = make_interleaved_build(tmp_path)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["config"] = {"profile": "obelics", "filter_overrides": {"doc_min_words": 7}}
    text = card.render_dataset_card(root, manifest=manifest)
    sec = _section(text, "Filters and thresholds")
    assert "| `filter_overrides.doc_min_words` | `7` |" in sec
    assert "Filter thresholds of profile `obelics`" in sec and "| `doc_min_words` | `7` |" in sec
