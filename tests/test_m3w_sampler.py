"""Flamingo M3W sampler: exact token / φ layouts on hand-checked documents, and the shard pipeline."""

from __future__ import annotations

import random
import warnings

import pytest
import torch

from pmd.loaders import CorruptSampleWarning, collate, m3w_pipeline, train_wordpiece
from pmd.loaders.m3w import M3WConfig, SpecialIds, document_layout, sample_m3w
from pmd.loaders.synthetic import doc_members, jpeg_bytes, write_tar

SP = SpecialIds(bos=2, eos=3, eoc=6, image=5, pad=0)
I = None  # an image element


def window(chunks, *, L, N=5, p_next=0.0, start=None, seed=0):
    layout = document_layout(chunks, SP)
    return sample_m3w(layout, M3WConfig(L, N, p_next), random.Random(seed), pad_id=0, start=start)


def test_layout_puts_eoc_before_every_image_but_a_leading_one_and_before_eos():
    assert document_layout([[100, 101], I, [102], I, [103, 104]], SP).ids == [2, 100, 101, 6, 5, 102, 6, 5, 103, 104, 6, 3]
    lead = document_layout([I, [100], I], SP)
    assert lead.ids == [2, 5, 100, 6, 5, 6, 3]
    assert lead.image_positions == [1, 4]
    assert document_layout([[100], I, I], SP).ids == [2, 100, 6, 5, 6, 5, 6, 3]
    assert document_layout([[100, 101]], SP).ids == [2, 100, 101, 6, 3]


def test_previous_image_index_short_document_is_padded():
    s = window([[100, 101], I, [102], I, [103, 104]], L=16, p_next=0.0)
    assert s.input_ids == [2, 100, 101, 6, 5, 102, 6, 5, 103, 104, 6, 3] + [0] * 4
    assert s.attention_mask == [1] * 12 + [0] * 4
    assert s.image_index == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2] + [0] * 4
    assert s.images == [0, 1]
    assert s.use_next is False and s.start == 0


def test_next_image_index_with_p_next_one():
    s = window([[100, 101], I, [102], I, [103, 104]], L=16, p_next=1.0)
    assert s.use_next is True
    assert s.image_index == [1, 1, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0] + [0] * 4


def test_window_without_images_has_zero_phi_and_no_images():
    s = window([list(range(100, 120)), I, [120]], L=8, start=1)
    assert s.input_ids == list(range(100, 108))
    assert s.image_index == [0] * 8
    assert s.attention_mask == [1] * 8
    assert s.images == []


def test_more_than_n_images_discards_the_rest_and_removes_their_tokens():
    chunks = [I, [100], I, [101], I, [102], I]  # tokens: 2 5 100 6 5 101 6 5 102 6 5 6 3
    prev = window(chunks, L=13, N=2, p_next=0.0)
    assert prev.input_ids == [2, 5, 100, 6, 5, 101, 6, 102, 6, 6, 3, 0, 0]
    assert prev.image_index == [0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 0, 0]
    assert prev.images == [0, 1]
    nxt = window(chunks, L=13, N=2, p_next=1.0)
    assert nxt.input_ids == prev.input_ids
    assert nxt.image_index == [1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0]


def test_images_at_start_and_end():
    prev = window([I, [100], I], L=7, p_next=0.0)
    assert prev.input_ids == [2, 5, 100, 6, 5, 6, 3]
    assert prev.image_index == [0, 1, 1, 1, 2, 2, 2]
    nxt = window([I, [100], I], L=7, p_next=1.0)
    assert nxt.image_index == [1, 1, 2, 2, 2, 0, 0]


def test_window_in_the_middle_only_sees_images_inside_it():
    chunks = [[100, 101], I, [102], I, [103, 104]]  # 2 100 101 6 5 102 6 5 103 104 6 3
    prev = window(chunks, L=4, start=3, p_next=0.0)
    assert prev.input_ids == [6, 5, 102, 6]
    assert prev.image_index == [0, 1, 1, 1]
    assert prev.images == [0]
    nxt = window(chunks, L=4, start=3, p_next=1.0)
    assert nxt.image_index == [1, 1, 0, 0]
    later = window(chunks, L=4, start=7, p_next=0.0)  # 5 103 104 6: the second document image is image 1
    assert later.input_ids == [5, 103, 104, 6]
    assert later.images == [1]
    assert later.image_index == [1, 1, 1, 1]


def test_random_start_is_seeded_and_within_range():
    chunks = [list(range(100, 150)), I, list(range(150, 200))]  # 1 + 50 + 2 + 50 + 2 = 105 tokens
    starts = [window(chunks, L=32, seed=s).start for s in range(50)]
    assert all(0 <= st <= 105 - 32 for st in starts)
    assert len(set(starts)) > 10
    assert starts == [window(chunks, L=32, seed=s).start for s in range(50)]
    s = window(chunks, L=32, seed=3)
    layout = document_layout(chunks, SP)
    assert s.input_ids == layout.ids[s.start : s.start + 32]


def test_p_next_is_drawn_per_sample():
    rng = random.Random(7)
    layout = document_layout([[100], I, [101]], SP)
    flags = [sample_m3w(layout, M3WConfig(16, 5, 0.5), rng).use_next for _ in range(400)]
    assert 150 < sum(flags) < 250
    assert not any(sample_m3w(layout, M3WConfig(16, 5, 0.0), rng).use_next for _ in range(50))
    assert all(sample_m3w(layout, M3WConfig(16, 5, 1.0), rng).use_next for _ in range(50))


def test_config_validation():
    with pytest.raises(ValueError, match="p_next"):
        M3WConfig(256, 5, 1.5)


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(["a cat sits on the mat", "the dog runs in the park", "birds fly"], vocab_size=120)


def test_m3w_pipeline_decodes_only_kept_images(tmp_path, tokenizer):
    img = jpeg_bytes(64, 48, 1)
    members = doc_members("doc0", ["a cat sits", img, "on the mat", img, "the dog runs", img]) + doc_members(
        "doc1", [img, "birds fly"]
    )
    write_tar(tmp_path / "docs-000000.tar", members)
    ds = m3w_pipeline(str(tmp_path / "docs-000000.tar"), tokenizer=tokenizer, seq_len=64, max_images=2, p_next=0.0,
                      image_size=32, shuffle=False)
    out = {s["key"]: s for s in ds}
    assert sorted(out) == ["doc0", "doc1"]
    d0 = out["doc0"]
    ids = d0["input_ids"].tolist()
    image_id, eoc = tokenizer.token_to_id("<image>"), tokenizer.token_to_id("<EOC>")
    assert ids.count(image_id) == 2  # the third image is discarded
    assert d0["images"].shape == (2, 3, 32, 32) and d0["image_mask"].tolist() == [True, True]
    n = int(d0["attention_mask"].sum())
    assert ids[n - 2 : n] == [eoc, tokenizer.token_to_id("[SEP]")]
    assert d0["image_index"][ids.index(image_id)].item() == 1
    d1 = out["doc1"]
    assert d1["input_ids"][:2].tolist() == [tokenizer.token_to_id("[CLS]"), image_id]
    assert d1["image_mask"].tolist() == [True, False]
    assert float(d1["images"][1].abs().sum()) == 0.0
    batch = collate(list(out.values()))
    assert batch["image_index"].shape == (2, 64) and batch["use_next"].dtype == torch.bool


def test_m3w_pipeline_missing_image_member_is_counted(tmp_path, tokenizer):
    members = [m for m in doc_members("doc0", ["a cat", jpeg_bytes(32, 32, 2)]) if not m[0].endswith(".jpg")]
    members += doc_members("doc1", ["birds fly", jpeg_bytes(32, 32, 3)])
    write_tar(tmp_path / "docs-000000.tar", members)
    ds = m3w_pipeline(str(tmp_path / "docs-000000.tar"), tokenizer=tokenizer, seq_len=16, image_size=16, shuffle=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keys = [s["key"] for s in ds]
    assert keys == ["doc1"]
    assert ds.errors.as_dict()["missing_member"] == 1
    assert any("doc0" in str(w.message) and "docs-000000.tar" in str(w.message) for w in caught
               if issubclass(w.category, CorruptSampleWarning))
