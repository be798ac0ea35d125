"""Content dedup of downloaded images: exact (sha256 of the stored JPEG) and perceptual (dHash).

PMD counts 70M pairs but 68M unique images: the same picture reaches us under different URLs
(CDN mirrors, CC3M/CC12M overlap) or as local files of several sources. ``dedup_images`` keeps every
caption and points duplicates at one canonical image, chosen deterministically as the lowest
``(priority, image_key)`` of its group, so reruns and cluster runs agree.

Grouping: images with equal sha256 are one group. With ``max_distance`` > 0, images whose dHashes
differ in at most ``max_distance`` bits are joined too. Candidates are found by splitting the 64-bit
hash into ``max_distance + 1`` bands: two hashes within the distance agree exactly on at least one
band (pigeonhole), so bucketing by (band, value) finds every close pair without comparing all
pairs; candidates are then checked with the real Hamming distance. Groups are connected components
(union-find), so near-duplicate chains can merge images that are further apart than the threshold.
"""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Iterable

import numpy as np
import pyarrow as pa
from PIL import Image

_MASK64 = (1 << 64) - 1


def dhash64(jpg_bytes: bytes) -> int:
    """64-bit difference hash: grayscale 9x8, one bit per horizontally adjacent pixel pair (left > right).

    Returned as a SIGNED 64-bit int (two's complement) so it fits Arrow/Parquet int64 columns;
    ``hamming`` accepts either form.
    """
    with Image.open(io.BytesIO(jpg_bytes)) as img:
        img.draft("L", (64, 64))
        small = img.convert("L").resize((9, 8), Image.Resampling.BOX)
    px = np.asarray(small, dtype=np.int16)
    bits = (px[:, :-1] > px[:, 1:]).flatten()
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value - (1 << 64) if value >= 1 << 63 else value


#: Output of ``dhash_batch``.
DHASH_SCHEMA = pa.schema([pa.field("image_key", pa.string(), nullable=False), pa.field("phash", pa.int64())])


def dhash_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``image_key, jpg`` → ``image_key, phash`` (null for a missing or undecodable image); for mapInArrow."""
    keys = batch.column("image_key").to_pylist()
    hashes: list[int | None] = []
    for jpg in batch.column("jpg").to_pylist():
        try:
            hashes.append(dhash64(jpg) if jpg else None)
        except (OSError, ValueError, SyntaxError):
            hashes.append(None)
    return pa.RecordBatch.from_pydict({"image_key": keys, "phash": hashes}, schema=DHASH_SCHEMA)


def hamming(a: int, b: int) -> int:
    """Number of differing bits of two 64-bit hashes (signed or unsigned)."""
    return ((a ^ b) & _MASK64).bit_count()


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while x != root:  # path compression
            self.parent[x], x = root, self.parent.get(x, x)
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _bands(max_distance: int) -> list[tuple[int, int]]:
    """(shift, mask) of ``max_distance + 1`` bit bands covering 64 bits."""
    n = max_distance + 1
    edges = [round(i * 64 / n) for i in range(n + 1)]
    return [(lo, (1 << (hi - lo)) - 1) for lo, hi in zip(edges, edges[1:])]


def canonical_images(rows: Iterable[tuple[str, str | None, int | None, int | float]],
                     max_distance: int = 0, use_phash: bool = False) -> dict[str, str]:
    """image_key → canonical image_key for rows ``(image_key, sha256, phash, priority)``.

    Rows without sha256 (failed images) map to themselves. Equal sha256 always groups; with
    ``use_phash`` (implied by ``max_distance`` > 0) equal dHashes group too, and with
    ``max_distance`` > 0 dHashes within that Hamming distance. The canonical key of a group is the
    member with the lowest ``(priority, image_key)``.
    """
    if not 0 <= max_distance < 32:
        raise ValueError(f"max_distance must be in [0, 31], got {max_distance}")
    use_phash = use_phash or max_distance > 0
    uf = _UnionFind()
    rank: dict[str, tuple[float, str]] = {}
    by_sha: dict[str, str] = {}
    phashes: dict[str, int] = {}
    out: dict[str, str] = {}
    for key, sha, phash, priority in rows:
        r = (float(priority), key)
        if key in rank:
            rank[key] = min(rank[key], r)
        else:
            rank[key] = r
        if sha is None:
            out[key] = key
            continue
        if sha in by_sha:
            uf.union(by_sha[sha], key)
        else:
            by_sha[sha] = key
            uf.find(key)
        if use_phash and phash is not None:
            phashes[key] = int(phash) & _MASK64
    if phashes:
        bands = _bands(max_distance)
        buckets: dict[tuple[int, int], list[str]] = defaultdict(list)
        for key in sorted(phashes):
            for bi, (shift, mask) in enumerate(bands):
                buckets[(bi, (phashes[key] >> shift) & mask)].append(key)
        for members in buckets.values():
            by_value: dict[int, list[str]] = {}
            for k in members:
                by_value.setdefault(phashes[k], []).append(k)
            reps = []
            for value, keys in by_value.items():
                for k in keys[1:]:
                    uf.union(keys[0], k)  # equal hashes
                reps.append((value, keys[0]))
            if max_distance:
                for i, (value, k) in enumerate(reps):
                    for value2, k2 in reps[:i]:
                        if hamming(value, value2) <= max_distance:
                            uf.union(k, k2)
    groups: dict[str, list[str]] = defaultdict(list)
    for key in rank:
        if key not in out:
            groups[uf.find(key)].append(key)
    for members in groups.values():
        best = min(members, key=lambda k: rank[k])
        for k in members:
            out[k] = best
    return out
