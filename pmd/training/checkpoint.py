"""Checkpoints: model, codebook, optimizer, scheduler, step, data position and RNG states.

Written to a temp file and renamed, so a crash never leaves a half checkpoint; resuming
restores everything the next step depends on, so the next loss equals the uninterrupted run's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from pmd.errors import UserError

log = logging.getLogger(__name__)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {**state, "torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    torch.save(state, tmp)
    tmp.replace(path)
    log.info("checkpoint step %s → %s", state.get("step"), path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    state = torch.load(path, map_location="cpu", weights_only=False)
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state


def latest_checkpoint(directory: str | Path) -> Path | None:
    """``last.pt`` in ``directory`` if present (the trainer overwrites it at each save)."""
    p = Path(directory) / "last.pt"
    return p if p.is_file() else None
