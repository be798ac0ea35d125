"""Checkpoints are data, not code: model, codebook, optimizer, scheduler, step, data position, RNG states.

``torch.load(weights_only=False)`` unpickles arbitrary objects, i.e. runs code from the file: a file passed
to ``--resume`` or to ``pmd score`` could do anything. So a checkpoint holds only tensors and plain types
(dict, list, tuple, str, int, float, bool, None) — checked before saving — and is loaded with
``weights_only=True``; a file that needs anything more is refused with one clear error. Written to a temp
file and renamed, so a crash never leaves a half checkpoint; resuming restores everything the next step
depends on, so the next loss equals the uninterrupted run's.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import torch

from pmd.errors import UserError

log = logging.getLogger(__name__)

#: ``kind`` of every checkpoint ``pmd train`` writes (``pmd score`` checks it).
CHECKPOINT_KIND = "pmd-flava"
FORMAT_VERSION = 1
_PLAIN = (str, int, float, bool, type(None))


def plain_problems(value: Any, where: str = "state") -> list[str]:
    """Paths of values that are neither tensors nor plain types (empty: safe to load with weights_only)."""
    if isinstance(value, torch.Tensor) or isinstance(value, _PLAIN):
        return []
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                out.append(f"{where} key {k!r} ({type(k).__name__})")
            out += plain_problems(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in plain_problems(v, f"{where}[{i}]")]
    return [f"{where} ({type(value).__module__}.{type(value).__name__})"]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (+ kind, format and RNG states) atomically; ``ValueError`` if it holds non-data objects."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"kind": CHECKPOINT_KIND, "format_version": FORMAT_VERSION, **state, "torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    bad = plain_problems(state)
    if bad:
        raise ValueError(f"checkpoint state must hold only tensors and plain types; found {', '.join(bad[:5])}")
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    log.info("checkpoint step %s → %s", state.get("step"), path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint as data (``weights_only=True``); a clear ``UserError`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: refused: the file holds more than tensors and plain data, and loading it could "
                        f"run code ({first[:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {str(e)[:160]})") from None
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        what = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise UserError(f"{path}: not a `pmd train` checkpoint (kind {what!r}, expected {CHECKPOINT_KIND!r})")
    return state


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``read_checkpoint`` and restore the RNG states it carries (for resuming)."""
    state = read_checkpoint(path)
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state


def latest_checkpoint(directory: str | Path) -> Path | None:
    """``last.pt`` in ``directory`` if present (the trainer overwrites it at each save)."""
    p = Path(directory) / "last.pt"
    return p if p.is_file() else None
