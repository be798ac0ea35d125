"""Pair pipeline: FLAVA image transform, fixed-length text, and the corrupt-sample policy."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from pmd.loaders import (
    CorruptSampleError,
    CorruptSampleWarning,
    ImageTransform,
    TextEncoder,
    collate,
    pair_pipeline,
    train_wordpiece,
)
from pmd.loaders.pairs import CLIP_MEAN, CLIP_STD
from pmd.loaders.synthetic import WORDS, jpeg_bytes, pair_members, write_pair_build, write_tar


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece([" ".join(WORDS)], vocab_size=200)


def png(width, height, color):
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def test_transform_normalises_with_clip_statistics():
    t = ImageTransform(224)(png(300, 260, (255, 0, 128)))
    assert t.shape == (3, 224, 224) and t.dtype == torch.float32
    expected = [(v / 255 - m) / s for v, m, s in zip((255, 0, 128), CLIP_MEAN, CLIP_STD)]
    assert torch.allclose(t.mean(dim=(1, 2)), torch.tensor(expected), atol=1e-4)


def test_transform_resizes_short_side_and_centre_crops():
    arr = np.zeros((100, 300, 3), dtype=np.uint8)
    arr[:, :80] = 255  # white at the left, black from x = 80: the centre crop (x 100..200) sees only black
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    im = ImageTransform(50).pil(buf.getvalue())
    assert im.size == (50, 50)
    assert np.asarray(im).max() == 0
    jpg = ImageTransform(64).pil(jpeg_bytes(512, 300, 0))  # draft decodes at 1/4 scale: 128x75 >= 64
    assert jpg.size == (64, 64) and jpg.mode == "RGB"


def test_random_crop_and_flip_are_seeded():
    import random

    data = jpeg_bytes(200, 100, 4)
    t = ImageTransform(64, random_crop=True, hflip=True)
    a = t(data, random.Random(1))
    assert torch.equal(a, t(data, random.Random(1)))
    assert any(not torch.equal(a, t(data, random.Random(s))) for s in range(2, 6))


def test_text_encoder_pads_and_truncates_keeping_sep(tokenizer):
    enc = TextEncoder(tokenizer, 8)
    ids, mask = enc("a cat")
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    assert ids.tolist() == [cls, tokenizer.token_to_id("a"), tokenizer.token_to_id("cat"), sep, 0, 0, 0, 0]
    assert mask.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    long_ids, long_mask = enc(" ".join(WORDS))
    assert long_ids[0] == cls and long_ids[-1] == sep and long_mask.tolist() == [1] * 8
    assert tokenizer.truncation is None  # the caller's tokenizer is untouched


def test_pair_samples_have_the_documented_fields(tmp_path, tokenizer):
    build = write_pair_build(tmp_path, shards=2, per_shard=3, image_px=40)
    samples = list(pair_pipeline(build, tokenizer=tokenizer, image_size=32, max_text_len=12, shuffle=False))
    assert len(samples) == 6
    s = samples[0]
    assert set(s) == {"image", "input_ids", "attention_mask", "key", "text"}
    assert s["image"].shape == (3, 32, 32) and s["input_ids"].shape == (12,) and s["input_ids"].dtype == torch.long
    meta = json.loads(next(m for n, m in pair_members(s["key"], s["text"], b"") if n.endswith(".json")))
    assert meta["text"] == s["text"]
    batch = collate(samples)
    assert batch["image"].shape == (6, 3, 32, 32) and batch["attention_mask"].shape == (6, 12)
    assert batch["key"] == [x["key"] for x in samples]


def corrupt_shard(path):
    good = jpeg_bytes(40, 40, 1)
    members = pair_members("k0good", "a cat", good)
    members += [(n, b"not a jpeg at all" if n.endswith(".jpg") else d) for n, d in pair_members("k1badimg", "a dog", good)]
    members += [(n, d) for n, d in pair_members("k2noimg", "birds", good) if not n.endswith(".jpg")]
    members += [(n, b"{not json" if n.endswith(".json") else d) for n, d in pair_members("k3badjson", "park", good)]
    members += [(n, d) for n, d in pair_members("k4notext", "x", good) if n.endswith(".jpg")]
    members += pair_members("k5good", "the river", good)
    return write_tar(path, members)


def test_corrupt_samples_are_skipped_counted_and_warned(tmp_path, tokenizer):
    shard = corrupt_shard(tmp_path / "pairs-000000.tar")
    ds = pair_pipeline(str(shard), tokenizer=tokenizer, image_size=32, shuffle=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keys = [s["key"] for s in ds]
    assert keys == ["k0good", "k5good"]
    assert ds.errors.as_dict() == {"shard": 0, "missing_member": 2, "bad_image": 1, "bad_json": 1, "bad_text": 0,
                                   "other": 0, "filtered": 0}
    messages = [str(w.message) for w in caught if issubclass(w.category, CorruptSampleWarning)]
    assert len(messages) == 4
    assert any("bad_image key=k1badimg in shard " + str(shard) in m for m in messages)
    assert any("missing_member key=k2noimg" in m for m in messages)
    assert any("bad_json key=k3badjson" in m for m in messages)


def test_raise_policy_names_shard_and_key(tmp_path, tokenizer):
    shard = corrupt_shard(tmp_path / "pairs-000000.tar")
    ds = pair_pipeline(str(shard), tokenizer=tokenizer, image_size=32, shuffle=False, on_error="raise")
    with pytest.raises(CorruptSampleError, match="bad_image key=k1badimg in shard .*pairs-000000.tar") as info:
        list(ds)
    assert info.value.kind == "bad_image" and info.value.key == "k1badimg"
    with pytest.raises(ValueError, match="on_error"):
        pair_pipeline(str(shard), tokenizer=tokenizer, on_error="ignore")


def test_truncated_and_missing_shards_are_shard_errors(tmp_path, tokenizer):
    good = write_tar(tmp_path / "a.tar", pair_members("k0", "a cat", jpeg_bytes(40, 40, 1)) +
                     pair_members("k1", "a dog", jpeg_bytes(40, 40, 2)))
    data = good.read_bytes()
    (tmp_path / "b.tar").write_bytes(data[: len(data) // 2 + 100])
    ds = pair_pipeline([str(good), str(tmp_path / "b.tar"), str(tmp_path / "missing.tar")], tokenizer=tokenizer,
                       image_size=32, shuffle=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keys = [s["key"] for s in ds]
    assert keys[:2] == ["k0", "k1"] and len(keys) in (2, 3)
    assert ds.errors.as_dict()["shard"] == 2
    assert any("missing.tar" in str(w.message) for w in caught)


def test_counts_from_dataloader_workers_reach_the_caller(tmp_path, tokenizer):
    for i in range(2):
        corrupt_shard(tmp_path / f"pairs-00000{i}.tar")
    ds = pair_pipeline(str(tmp_path / "pairs-{000000..000001}.tar"), tokenizer=tokenizer, image_size=32)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptSampleWarning)
        keys = [k for b in loader for k in b["key"]]
    assert sorted(keys) == ["k0good", "k0good", "k5good", "k5good"]
    assert ds.errors.total == 8 and ds.errors.as_dict()["bad_image"] == 2


def test_uint8_images_normalised_later_match_the_float_path():
    from pmd.loaders import normalize_images

    data = jpeg_bytes(90, 70, 5)
    u8 = ImageTransform(48, normalize=False)(data)
    assert u8.dtype == torch.uint8 and u8.shape == (3, 48, 48)
    assert torch.allclose(normalize_images(u8.unsqueeze(0))[0], ImageTransform(48)(data), atol=1e-5)
