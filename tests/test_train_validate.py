"""End-to-end: `pmd train --config tiny --validate` on the embedded sample build (fixed seed).

The aligned run must PASS (beat chance and the shuffled-caption control on held-out recall, on every judged
source); a copy of the build with one source's captions shuffled among its own pairs must FAIL naming that
source; the real Flickr8k + COCO photos, far too few for a from-scratch model, must be INCONCLUSIVE (not FAIL)
with the reason. These are the CI's evidence that the verdict means what it says.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from pmd.errors import UserError
from pmd.training.config import load_train_config
from pmd.training.data import open_build
from pmd.training.validate import auroc, chance_median_rank, chance_recall, validate_build, verdict

# One thread: the verdicts below were measured so (torch's float reductions run in another order with 2).
# The tiny config trains 300 steps: at 150 the t2i margin over the PASS line was only ~0.02-0.1, and the float
# rounding of another CPU (or an equivalent rewrite of the model's arithmetic) flipped the verdicts. At 300 steps,
# measured on two arithmetic variants of the model, the aligned run clears the PASS line by >= 0.10 in both
# directions and the coco-shuffled build FAILs naming coco in both.
THREADS = int(os.environ.get("PMD_VALIDATE_THREADS", "1"))


def tiny():
    return load_train_config("tiny", {"threads": THREADS})


@pytest.fixture(scope="module")
def aligned_report(sample_build, tmp_path_factory):
    out = tmp_path_factory.mktemp("validate_aligned")
    return validate_build(sample_build, tiny(), out), out


@pytest.mark.slow
def test_aligned_run_beats_shuffled_control_on_held_out_recall(aligned_report):
    """CI's check (issue #7): with a fixed seed the aligned run beats the shuffled-caption control by a wide
    margin on held-out R@5, summed over both directions (a misaligned build sits at the control's level)."""
    report, _ = aligned_report
    a, c = report["aligned"], report["control"]
    aligned = a["i2t_r@5"] + a["t2i_r@5"]
    control = c["i2t_r@5"] + c["t2i_r@5"]
    chance = a["i2t_chance@5"] + a["t2i_chance@5"]
    assert aligned >= 2 * control and aligned >= control + 0.1, (a, c)
    assert aligned >= 3 * chance, (a, chance)
    assert a["gc_loss"] < a["gc_chance"] - 0.3 < c["gc_loss"]


@pytest.mark.slow
def test_aligned_sample_build_passes_and_beats_shuffled_control(aligned_report):
    """The strict verdict (issue #7): PASS in both directions with the tiny config's fixed seed."""
    report, out = aligned_report
    a, c = report["aligned"], report["control"]
    assert report["verdict"] == "PASS" and report["pass"] is True, (report["why"], report["reasons"])
    assert report["misaligned"] == [] and "coco" in report["per_source"] and report["per_shard"]
    k, margin = report["criterion"]["recall_k"], report["criterion"]["margin"]
    for d in ("i2t", "t2i"):
        assert a[f"{d}_r@{k}"] >= max(2 * a[f"{d}_chance@{k}"], c[f"{d}_r@{k}"] + margin), (d, a, c)
        assert a[f"{d}_r@5"] > c[f"{d}_r@5"] and a[f"{d}_median_rank"] < c[f"{d}_median_rank"]
    assert a["gc_loss"] < a["gc_chance"] - 0.3      # the aligned run learnt held-out alignment ...
    assert c["gc_loss"] > c["gc_chance"] - 0.25     # ... the control stays at ln(batch)
    saved = json.loads((out / "report.json").read_text())
    assert saved["pass"] is True and saved["holdout_pairs"] == report["holdout_pairs"] >= 64
    md = (out / "report.md").read_text()
    assert md.startswith("# Build validation: PASS") and "shuffled control" in md and "ITM balanced accuracy" in md
    assert "ITM AUROC" in md


@pytest.mark.slow
def test_one_source_shuffled_among_its_own_pairs_fails_naming_that_source(sample_build, tmp_path):
    from train_helpers import rewrite_captions, shuffle_source

    bad = tmp_path / "bad_build"
    moved = rewrite_captions(sample_build, bad, shuffle_source("coco"))
    assert len(moved) > 100
    open_build(bad, verify="sha256")  # rewritten shards match their manifest
    report = validate_build(bad, tiny(), tmp_path / "report")
    assert report["verdict"] == "FAIL" and report["pass"] is False
    assert "source:coco" in report["misaligned"], report["per_source"]
    assert len(report["misaligned"]) <= 2, report["misaligned"]  # per-source judgements of ~40 queries are noisy
    assert report["per_source"]["coco"]["status"] == "misaligned"
    md = (tmp_path / "report" / "report.md").read_text()
    assert md.startswith("# Build validation: FAIL") and "`source:coco`" in md


@pytest.mark.slow
def test_real_photos_far_too_few_for_tiny_are_inconclusive_not_fail(shared_data, tmp_path):
    from train_helpers import folder_build

    root = shared_data / "image-text"
    build = folder_build(tmp_path / "photos", [root / "flickr8k", root / "coco2017"])
    report = validate_build(build, tiny(), tmp_path / "report")
    assert report["verdict"] == "INCONCLUSIVE" and report["pass"] is False and report["misaligned"] == []
    assert "too few or too hard" in report["why"] or "misaligned throughout" in report["why"]
    assert "--config small" in report["decide"] and "GPU" in report["decide"]
    assert set(report["per_source"]) == {"flickr8k", "coco"} and len(report["per_shard"]) > 1


def test_tampered_shard_is_rejected_by_checksum(sample_build, tmp_path):
    bad = tmp_path / "tampered"
    shutil.copytree(sample_build, bad)
    shard = open_build(bad).shards[0]
    data = bytearray(shard.read_bytes())
    data[1000] ^= 0xFF
    shard.write_bytes(bytes(data))
    open_build(bad)  # same size: the default start-up check (sizes) passes without reading every byte ...
    with pytest.raises(UserError, match="sha256"):
        open_build(bad, verify="sha256")  # ... the check on request (and validation's) reads and rejects it


def _metrics(i2t: float, t2i: float, parts: dict[str, tuple[int, int, float]], gc: float = 2.0) -> dict:
    """Evaluate()-shaped metrics: overall recall@10 and per-source (queries, pairs, recall)."""
    m = {"images": 100, "texts": 100, "pairs": 100, "i2t_r@10": i2t, "t2i_r@10": t2i, "i2t_chance@10": 0.07,
         "t2i_chance@10": 0.07, "train_gc_final": gc,
         "parts": {"source": {n: {"queries": q, "pairs": p, "r@10": r, "chance@10": 0.07} for n, (q, p, r) in parts.items()},
                   "shard": {"s0": {"queries": 200, "pairs": 100, "r@10": (i2t + t2i) / 2, "chance@10": 0.07}}}}
    return m


def test_decide_pass_fail_inconclusive():
    from pmd.training.validate import decide

    cfg = tiny()
    control = _metrics(0.08, 0.08, {"a": (60, 30, 0.08), "b": (60, 30, 0.08), "c": (80, 40, 0.08)}, gc=3.4)
    good = _metrics(0.5, 0.45, {"a": (60, 30, 0.5), "b": (60, 30, 0.45), "c": (80, 40, 0.5)}, gc=1.0)
    assert decide(good, control, cfg, 800)[0] == "PASS"
    one_bad = _metrics(0.36, 0.33, {"a": (60, 30, 0.5), "b": (60, 30, 0.06), "c": (80, 40, 0.5)}, gc=1.2)
    name, ok, _, parts, why, _ = decide(one_bad, control, cfg, 800)
    assert name == "FAIL" and not ok and parts["source:b"]["status"] == "misaligned" and "source:b" in why
    weak_small = _metrics(0.5, 0.45, {"a": (60, 30, 0.5), "b": (22, 30, 0.22), "c": (80, 40, 0.5)}, gc=1.0)
    name, _, _, parts, _, _ = decide(weak_small, control, cfg, 800)  # 22 queries at 0.22: weaker, not broken
    assert name == "PASS" and parts["source:b"]["status"] == "uncertain"
    nothing = _metrics(0.09, 0.08, {"a": (60, 30, 0.1), "b": (60, 30, 0.07), "c": (80, 40, 0.08)}, gc=1.5)
    name, ok, _, _, why, what = decide(nothing, control, cfg, 640)
    assert name == "INCONCLUSIVE" and not ok and "did not transfer" in why and "640" in why and "small" in what
    unfitted = _metrics(0.09, 0.08, {"a": (60, 30, 0.1), "b": (60, 30, 0.07), "c": (80, 40, 0.08)}, gc=3.3)
    assert "misaligned throughout" in decide(unfitted, control, cfg, 640)[4]
    memorised = decide(nothing, _metrics(0.08, 0.08, {"a": (60, 30, 0.08), "b": (60, 30, 0.08), "c": (80, 40, 0.08)},
                                         gc=1.9), cfg, 640)[4]
    assert "memorised" in memorised and "too few or too hard" in memorised


def test_chance_recall_matches_k_over_n_for_single_relevant_item():
    assert chance_recall(100, np.array([1, 1]), 5) == pytest.approx(0.05)
    assert chance_recall(10, np.array([2]), 1) == pytest.approx(0.2)
    assert chance_recall(10, np.array([2]), 9) == pytest.approx(1.0)


def test_chance_median_rank_counts_every_relevant_item():
    assert chance_median_rank(100, np.array([1, 1])) == 50  # one relevant: half the gallery
    assert chance_median_rank(165, np.array([5])) == 22  # an image with 5 of 165 captions: ~n/7, not n/2
    rng = np.random.default_rng(0)  # the empirical median of the first hit's rank agrees
    first = [np.flatnonzero(rng.permutation(165) < 5)[0] + 1 for _ in range(20000)]
    assert abs(np.median(first) - chance_median_rank(165, np.array([5]))) <= 1


def test_auroc_counts_ties_half():
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == pytest.approx(0.0)
    assert auroc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    assert auroc(np.array([1.0, 3.0]), np.array([2.0])) == pytest.approx(0.5)


def test_verdict_needs_both_directions_over_chance_and_control():
    cfg = load_train_config("tiny")
    k, m = cfg.validate.recall_k, cfg.validate.margin
    chance = {f"{d}_chance@{k}": 0.05 for d in ("i2t", "t2i")}
    control = {f"{d}_r@{k}": 0.06 for d in ("i2t", "t2i")}
    good = {**chance, f"i2t_r@{k}": 0.06 + m + 0.01, f"t2i_r@{k}": 0.06 + m + 0.01}
    assert verdict(good, control, cfg)[0] is True
    one_bad = {**good, f"t2i_r@{k}": 0.06 + m - 0.01}
    ok, reasons = verdict(one_bad, control, cfg)
    assert ok is False and reasons[1].endswith("FAIL") and reasons[0].endswith("ok")
    low_chance = {**good, f"i2t_chance@{k}": 0.2}  # beats the control but not 2x chance
    assert verdict(low_chance, control, cfg)[0] is False


def test_squash_fit_keeps_the_whole_image_and_crop_cuts_the_sides():
    import io as _io

    from PIL import Image

    from pmd.training.data import decode_image

    img = np.zeros((20, 60, 3), np.uint8)
    img[:, :10] = (255, 0, 0)
    img[:, 10:50] = (0, 255, 0)
    img[:, 50:] = (0, 0, 255)
    buf = _io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    squash = decode_image(buf.getvalue(), 12, fit="squash")
    crop = decode_image(buf.getvalue(), 12)
    assert squash.shape == crop.shape == (3, 12, 12)
    assert squash[0, 6, 0] > 200 and squash[2, 6, -1] > 200  # red left edge, blue right edge kept
    assert crop[1, :, :].min() > 200                          # the centre crop is all green
    with pytest.raises(ValueError):
        decode_image(buf.getvalue(), 12, fit="stretch")
