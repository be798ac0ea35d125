"""A small MinHash + LSH for near-duplicate documents (numpy, fixed seeds, deterministic across processes).

Shingles are word n-grams hashed to 64 bits (CRC32 per word, combined with a polynomial roll);
each of ``num_perm`` hash functions is ``(x XOR seed_i) * odd_i`` (64-bit, wrapping), and the
signature keeps the minimum per function. LSH splits the signature into ``bands`` bands of
``num_perm / bands`` rows; documents sharing any band are candidates, a candidate pair is a
duplicate when the share of equal signature slots (the Jaccard estimate) reaches the threshold,
and duplicates group by connected components (one kept per group).
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Hashable, Iterable, Sequence

import numpy as np

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_ROLL = np.uint64(1000003)


def _params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(seed))
    xs = rng.integers(0, 2**63 - 1, size=num_perm, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    ms = rng.integers(0, 2**63 - 1, size=num_perm, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    return xs, ms


def shingle_hashes(words: Sequence[str], n: int = 5) -> np.ndarray:
    """64-bit hashes of the word ``n``-grams (one shingle of all words when there are fewer than n)."""
    if not words:
        return np.zeros(0, dtype=np.uint64)
    w = np.fromiter((zlib.crc32(x.encode("utf-8")) for x in words), dtype=np.uint64, count=len(words))
    n = min(n, len(w))
    m = len(w) - n + 1
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(n):
            h = h * _ROLL + w[i:i + m]
    return np.unique(h)


def signature(shingles: np.ndarray, num_perm: int = 64, seed: int = 1) -> np.ndarray:
    """MinHash signature (``num_perm`` uint64); an empty shingle set gives all-max (matches nothing real)."""
    xs, ms = _params(num_perm, seed)
    if shingles.size == 0:
        return np.full(num_perm, _MASK, dtype=np.uint64)
    with np.errstate(over="ignore"):
        hv = (shingles[None, :] ^ xs[:, None]) * ms[:, None]
    return hv.min(axis=1)


def band_keys(sig: np.ndarray, bands: int) -> list[str]:
    """One hex key per band (band index included so equal values in different bands never collide)."""
    rows = len(sig) // bands
    return [f"{b:02d}" + hashlib.blake2b(sig[b * rows:(b + 1) * rows].tobytes(), digest_size=8).hexdigest()
            for b in range(bands)]


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def near_duplicates(items: Iterable[tuple[Hashable, np.ndarray]], bands: int = 16,
                    threshold: float = 0.8) -> dict[Hashable, Hashable]:
    """``{duplicate_id: kept_id}`` over ``(id, signature)`` pairs given best first.

    The in-memory twin of the Spark job (``pmd.spark.interleaved_dedup``), with the same answer:
    each band bucket links its members to the bucket's first member (a star, so a bucket of k
    documents costs k edges, not k²), an edge counts when the two signatures agree on at least
    ``threshold`` of their slots, and each connected component of counted edges keeps its first
    document; the others are its duplicates.
    """
    rank: dict[Hashable, int] = {}
    sigs: dict[Hashable, np.ndarray] = {}
    first_in: dict[str, Hashable] = {}
    edges: set[tuple[Hashable, Hashable]] = set()
    for key, sig in items:
        rank[key] = len(rank)
        sigs[key] = sig
        for bk in band_keys(sig, bands):
            head = first_in.setdefault(bk, key)
            if head != key:
                edges.add((key, head))
    parent = {k: k for k in rank}

    def root(k: Hashable) -> Hashable:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in sorted(edges, key=lambda e: (rank[e[0]], rank[e[1]])):
        if similarity(sigs[a], sigs[b]) >= threshold:
            ra, rb = root(a), root(b)
            if ra != rb:  # the better-ranked root stays the component's representative
                lo, hi = (ra, rb) if rank[ra] < rank[rb] else (rb, ra)
                parent[hi] = lo
    out: dict[Hashable, Hashable] = {}
    for k in rank:
        r = root(k)
        if r != k:
            out[k] = r
    return out
