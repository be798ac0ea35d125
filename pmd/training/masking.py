"""Masking for MIM/MMM (BEiT block-wise patch masks) and MLM (15 %, 80/10/10).

Both return fixed-size index tensors (padded, with ignore labels −1) so that the training step
gathers masked positions without data-dependent shapes: no host syncs, no recompiles.
"""

from __future__ import annotations

import math

import numpy as np


class BlockMasker:
    """BEiT block-wise masking: add random rectangles (area ≥ ``min_block`` patches, aspect ratio
    log-uniform in ``aspect``) until ``num_masked`` patches are masked; never overshoots."""

    def __init__(self, grid: int, num_masked: int, min_block: int = 16, max_block: int | None = None,
                 aspect: tuple[float, float] = (0.3, 1 / 0.3)) -> None:
        if not 0 < num_masked <= grid * grid:
            raise ValueError(f"num_masked {num_masked} must be in 1..{grid * grid}")
        self.grid, self.num_masked, self.min_block = grid, num_masked, min_block
        self.max_block = max_block or num_masked
        self.log_aspect = (math.log(aspect[0]), math.log(aspect[1]))

    def _add_block(self, mask: np.ndarray, budget: int, rng: np.random.Generator) -> int:
        g = self.grid
        for _ in range(10):
            area = rng.uniform(self.min_block, budget) if budget > self.min_block else rng.uniform(budget, self.min_block)
            ratio = math.exp(rng.uniform(*self.log_aspect))
            h = int(round(math.sqrt(area * ratio)))
            w = int(round(math.sqrt(area / ratio)))
            if 0 < h < g and 0 < w < g:
                top, left = int(rng.integers(0, g - h + 1)), int(rng.integers(0, g - w + 1))
                window = mask[top:top + h, left:left + w]
                new = h * w - int(window.sum())
                if 0 < new <= budget:
                    window[...] = True
                    return new
        return 0

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        """A (grid, grid) boolean mask, True = masked."""
        mask = np.zeros((self.grid, self.grid), dtype=bool)
        count = 0
        while count < self.num_masked:
            added = self._add_block(mask, min(self.num_masked - count, self.max_block), rng)
            if added == 0:
                break
            count += added
        return mask

    def indices(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat masked positions padded to ``num_masked``: (idx int64, valid bool)."""
        flat = np.flatnonzero(mask.reshape(-1))[: self.num_masked]
        idx = np.zeros(self.num_masked, dtype=np.int64)
        valid = np.zeros(self.num_masked, dtype=bool)
        idx[: len(flat)], valid[: len(flat)] = flat, True
        return idx, valid


def mlm_slots(max_len: int, probability: float) -> int:
    """How many masked positions a caption of ``max_len`` tokens can have (fixed for the run)."""
    return max(1, math.ceil(probability * max(max_len - 2, 1)))


def mask_tokens(ids: np.ndarray, attn: np.ndarray, special: np.ndarray, mask_id: int, vocab_size: int,
                rng: np.random.Generator, probability: float = 0.15, mask_prob: float = 0.8,
                random_prob: float = 0.1, slots: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BERT MLM on one caption: ``probability x eligible`` tokens (stochastically rounded) are selected; of those
    80 % become [MASK], 10 % a random non-special token, 10 % stay. Returns
    (masked ids, positions (slots,), labels (slots,) with −1 for unused slots)."""
    slots = slots or mlm_slots(len(ids), probability)
    eligible = np.flatnonzero(attn & ~special[ids])
    out = ids.copy()
    pos = np.zeros(slots, dtype=np.int64)
    labels = np.full(slots, -1, dtype=np.int64)
    if len(eligible) == 0:
        return out, pos, labels
    expected = probability * len(eligible)
    k = min(slots, int(expected) + int(rng.random() < expected - int(expected)))  # stochastic rounding: mean p·n
    if k == 0:
        return out, pos, labels
    chosen = np.sort(rng.choice(eligible, size=k, replace=False))
    pos[:k], labels[:k] = chosen, ids[chosen]
    u = rng.random(k)
    out[chosen[u < mask_prob]] = mask_id
    rand_sel = chosen[(u >= mask_prob) & (u < mask_prob + random_prob)]
    if len(rand_sel):
        normal = np.flatnonzero(~special[:vocab_size])
        out[rand_sel] = rng.choice(normal, size=len(rand_sel))
    return out, pos, labels
