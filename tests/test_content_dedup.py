"""Content dedup: dHash and canonical image choice."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pmd.download.content_dedup import canonical_images, dhash64, hamming


def _jpg(arr: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _gradient(w=120, h=90, flip=False):
    x = np.linspace(0, 255, w)
    if flip:
        x = x[::-1]
    g = np.tile(x, (h, 1))
    return np.stack([g, g * 0.5, 255 - g], axis=-1)


def test_dhash_is_stable_and_perceptual():
    rng = np.random.default_rng(0)
    base = _gradient() + rng.normal(0, 20, (90, 120, 1))
    a = dhash64(_jpg(base.clip(0, 255)))
    assert a == dhash64(_jpg(base.clip(0, 255)))
    assert -(1 << 63) <= a < (1 << 63)
    recompressed = dhash64(_jpg(base.clip(0, 255), quality=40))
    resized = dhash64(_jpg(np.asarray(Image.fromarray(base.clip(0, 255).astype(np.uint8)).resize((60, 45)))))
    flipped = dhash64(_jpg(base[:, ::-1].clip(0, 255)))
    assert hamming(a, recompressed) <= 6
    assert hamming(a, resized) <= 8
    assert hamming(a, flipped) >= 24


def test_hamming_signed_unsigned():
    assert hamming(-1, 0) == 64
    assert hamming((1 << 64) - 1, -1) == 0
    assert hamming(0b1011, 0b0001) == 2


def test_groups_by_sha256_lowest_priority_then_key_wins():
    rows = [("b1", "s1", None, 1), ("a1", "s1", None, 2), ("c1", "s1", None, 1),
            ("d2", "s2", None, 0), ("e3", None, None, 0)]
    assert canonical_images(rows) == {"b1": "b1", "a1": "b1", "c1": "b1", "d2": "d2", "e3": "e3"}
    # order of input does not matter
    assert canonical_images(list(reversed(rows))) == canonical_images(rows)


def test_phash_exact_and_near_grouping():
    rows = [("k1", "s1", 0b1111, 0), ("k2", "s2", 0b1111, 0), ("k3", "s3", 0b1110, 0),
            ("k4", "s4", 0b1000, 0), ("k5", "s5", -1, 0)]
    assert canonical_images(rows) == {k: k for k in ("k1", "k2", "k3", "k4", "k5")}  # sha only
    exact = canonical_images(rows, use_phash=True)
    assert exact["k2"] == "k1" and exact["k3"] == "k3"
    near = canonical_images(rows, max_distance=1)
    assert near["k2"] == near["k3"] == "k1" and near["k4"] == "k4" and near["k5"] == "k5"
    chained = canonical_images(rows, max_distance=2)  # k4 is 2 from k3 → joins through the chain
    assert chained["k4"] == "k1"


def test_near_grouping_finds_all_close_pairs_in_a_bucket():
    # A~C and B~C but A !~ B: all three must end up together
    a, b, c = 0b000, 0b011, 0b001
    got = canonical_images([("a", "1", a, 0), ("b", "2", b, 0), ("c", "3", c, 0)], max_distance=1)
    assert set(got.values()) == {"a"}


def test_near_grouping_matches_brute_force():
    rng = np.random.default_rng(1)
    base = [int(x) for x in rng.integers(0, 2**63, 40)]
    hashes = []
    for h in base:
        hashes.append(h)
        hashes.append(h ^ (1 << int(rng.integers(0, 64))) ^ (1 << int(rng.integers(0, 64))))
    rows = [(f"k{i:03d}", f"s{i}", h, 0) for i, h in enumerate(hashes)]
    got = canonical_images(rows, max_distance=2)
    # brute force connected components
    parent = list(range(len(rows)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i
    for i in range(len(rows)):
        for j in range(i):
            if hamming(hashes[i], hashes[j]) <= 2:
                parent[find(i)] = find(j)
    for i in range(len(rows)):
        for j in range(len(rows)):
            assert (got[rows[i][0]] == got[rows[j][0]]) == (find(i) == find(j))


def test_bad_distance():
    with pytest.raises(ValueError):
        canonical_images([], max_distance=40)


def test_dhash_batch():
    import pyarrow as pa

    from pmd.download.content_dedup import DHASH_SCHEMA, dhash_batch

    jpg = _jpg(_gradient())
    out = dhash_batch(pa.RecordBatch.from_pydict({"image_key": ["a", "b", "c"], "jpg": [jpg, None, b"junk"]}))
    assert out.schema.equals(DHASH_SCHEMA)
    assert out.to_pydict() == {"image_key": ["a", "b", "c"], "phash": [dhash64(jpg), None, None]}
