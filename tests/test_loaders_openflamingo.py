"""OpenFlamingo-compatible mmc4 mode: assignment, threshold, token layout, rejection rules, shards."""

from __future__ import annotations

import base64
import json
import random

import numpy as np
import pytest

from pmd.loaders import mmc4_pipeline, train_wordpiece
from pmd.loaders.errors import SkipSample
from pmd.loaders.m3w import SpecialIds
from pmd.loaders.openflamingo import MMC4Config, assign_images, preprocess_mmc4
from pmd.loaders.synthetic import jpeg_bytes, write_tar

SP = SpecialIds(bos=2, eos=3, eoc=6, image=5, pad=0)
KEEP_SINGLES = dict(drop_single_image_p=0.0)


def test_one_to_one_assignment_with_threshold():
    sim = np.array([[0.30, 0.90, 0.10], [0.20, 0.80, 0.35], [0.10, 0.20, 0.15]])
    # best one-to-one: image0 -> s1 (0.90), image1 -> s2 (0.35), image2 -> s0 (0.10, below 0.24: dropped)
    assert assign_images(sim, [0, 1, 2], 0.24) == [(0, 1), (1, 2)]
    assert assign_images(sim, [1, 2], 0.24) == [(1, 1)]  # image 0 missing: image1 takes s1 (0.80)
    assert assign_images(sim, [], 0.24) == []


def test_layout_removes_first_chunk_end_and_orders_images_by_text_position():
    s = preprocess_mmc4([[100], [101], [102]], [(0, 2), (1, 0)], MMC4Config(seq_len=12, **KEEP_SINGLES), SP, random.Random(0))
    assert s.input_ids == [2, 5, 100, 101, 6, 5, 102, 6, 3, 0, 0, 0]
    assert s.image_index == [0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0]
    assert s.attention_mask == [1] * 9 + [0] * 3
    assert s.images == [1, 0]  # image 1 is matched to sentence 0, so it comes first


def test_max_images_and_truncation():
    assignment = [(i, i) for i in range(8)]
    s = preprocess_mmc4([[100 + i] for i in range(8)], assignment, MMC4Config(seq_len=64, max_images=6), SP, random.Random(0))
    assert s.input_ids.count(5) == 6 and s.images == [0, 1, 2, 3, 4, 5]
    short = preprocess_mmc4([[100, 101, 102], [103], [104]], [(0, 0), (1, 1), (2, 2)], MMC4Config(seq_len=7), SP,
                            random.Random(0))
    assert short.input_ids == [2, 5, 100, 101, 102, 6, 5]
    assert short.images == [0, 1]  # image 2's token was truncated away: dropped


def test_rejection_rules():
    cfg = MMC4Config(seq_len=16, min_images=1, drop_single_image_p=1.0)
    with pytest.raises(SkipSample, match="single-image"):
        preprocess_mmc4([[100], [101]], [(0, 1)], cfg, SP, random.Random(0))
    with pytest.raises(SkipSample, match="fewer than 1"):
        preprocess_mmc4([[100], [101]], [], cfg, SP, random.Random(0))
    with pytest.raises(SkipSample, match="last token"):
        preprocess_mmc4([[100, 101], [102]], [(0, 1)], MMC4Config(seq_len=4, **KEEP_SINGLES), SP, random.Random(0))
    rng = random.Random(3)
    kept = 0
    for _ in range(200):
        try:
            preprocess_mmc4([[100], [101]], [(0, 1)], MMC4Config(seq_len=16), SP, rng)
            kept += 1
        except SkipSample:
            pass
    assert 70 < kept < 130


def test_mmc4_pipeline_from_shards(tmp_path):
    tok = train_wordpiece(["a cat sits on the mat", "the dog runs", "birds fly high"], vocab_size=100)
    big = jpeg_bytes(160, 160, 1, quality=100)
    assert len(big) > 11_000
    doc = {
        "text_list": ["a cat sits on the mat", "the dog runs", "birds fly high"],
        "image_info": [
            {"image_name": "a.jpg", "member": "000.jpg"},
            {"image_name": "b.jpg", "image_base64": base64.b64encode(big).decode()},
            {"image_name": "small.jpg", "image_base64": base64.b64encode(jpeg_bytes(8, 8, 2)).decode()},
            {"image_name": "gone.jpg"},
        ],
        "similarity_matrix": [[0.9, 0.1, 0.3], [0.2, 0.3, 0.8], [0.9, 0.9, 0.9], [0.9, 0.9, 0.9]],
    }
    write_tar(tmp_path / "mmc4-000000.tar", [("d0.json", json.dumps(doc).encode()), ("d0.000.jpg", big)])
    ds = mmc4_pipeline(str(tmp_path / "mmc4-000000.tar"), tokenizer=tok, config=MMC4Config(seq_len=32),
                       image_size=16, shuffle=False)
    (s,) = list(ds)
    ids = s["input_ids"].tolist()
    image, eoc = tok.token_to_id("<image>"), tok.token_to_id("<EOC>")
    assert ids[:2] == [tok.token_to_id("[CLS]"), image]
    assert ids.count(image) == 2 and ids.count(eoc) == 2
    assert s["image_mask"].tolist() == [True, True, False, False, False, False]
    assert s["images"].shape == (6, 3, 16, 16)
    assert ds.errors.total == 0
