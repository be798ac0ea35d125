"""Karpathy's COCO splits (``dataset_coco.json``): which COCO images are evaluation images.

PMD keeps Karpathy ``train`` + ``restval`` for COCO and removes every image whose COCO id is in
Karpathy ``val`` or ``test`` from Localized Narratives COCO and Visual Genome (leakage filter).
"""

from __future__ import annotations

from functools import lru_cache

from pmd.errors import UserError

EVAL_SPLITS = frozenset({"val", "test"})
TRAIN_SPLITS = ("train", "restval")


def load_karpathy_splits(path: str) -> dict[int, str]:
    """COCO id → Karpathy split (``train``, ``restval``, ``val``, ``test``)."""
    return dict(_load(str(path)))


def eval_coco_ids(path: str) -> frozenset[int]:
    """COCO ids of the Karpathy ``val`` and ``test`` images."""
    return _eval_ids(str(path))


@lru_cache(maxsize=4)
def _eval_ids(path: str) -> frozenset[int]:
    return frozenset(cid for cid, split in _load(path) if split in EVAL_SPLITS)


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[tuple[int, str], ...]:
    from pmd.sources.base import load_json

    try:
        data = load_json(path)
    except FileNotFoundError:
        raise UserError(f"Karpathy split file not found: {path}") from None
    except ValueError as e:
        raise UserError(f"Karpathy split file {path} is not valid JSON: {e}") from None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise UserError(f"{path}: not a Karpathy dataset_coco.json (no 'images' list)")
    out = []
    for i, im in enumerate(images):
        try:
            out.append((int(im["cocoid"]), str(im["split"])))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path}: image #{i} lacks cocoid/split") from None
    return tuple(out)
