"""Deterministic record keys.

Keys are lowercase hex: WebDataset splits a member name at its first dot, so a key
must never contain one, and hex keeps keys filesystem- and URL-safe everywhere.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any

_SEP = "\x1f"  # unit separator: cannot appear in the parts we hash by accident
_HEX = re.compile(r"^[0-9a-f]+$")


def stable_id(*parts: object, length: int = 16) -> str:
    """Hash ``parts`` to a hex id of ``length`` chars (default 64 bits) that is stable across runs."""
    if not 4 <= length <= 64:
        raise ValueError(f"id length must be in [4, 64], got {length}")
    text = _SEP.join("" if p is None else str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=32).hexdigest()[:length]


def stable_ids(prefix: str, *columns: Sequence[Any]) -> list[str]:
    """``stable_id(prefix, *row)`` for every row of ``columns``: the same hash without its per-call
    checks when every part is a string (a row with another part goes through ``stable_id``)."""
    join, blake2b = _SEP.join, hashlib.blake2b
    try:
        return [blake2b(join(parts).encode("utf-8"), digest_size=32).hexdigest()[:16]
                for parts in zip(repeat(prefix), *columns)]
    except TypeError:
        return [stable_id(prefix, *parts) for parts in zip(*columns)]


def is_valid_key(key: str) -> bool:
    """True when ``key`` is usable as a WebDataset key (non-empty hex, hence no dots)."""
    return bool(key) and _HEX.match(key) is not None


def shard_name(prefix: str, index: int, width: int = 6) -> str:
    """``prefix-000012``: zero-padded so lexical order equals numeric order (brace patterns work)."""
    if index < 0:
        raise ValueError("shard index must be >= 0")
    return f"{prefix}-{index:0{width}d}"
