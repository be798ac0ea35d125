"""Corrupt-sample policy for the streaming loaders: skip, count, warn — or raise, if the user asks.

A training job must neither die on one bad JPEG deep inside a DataLoader worker nor lose samples
silently. Every problem a loader meets (a shard that cannot be opened or read, a missing member,
an undecodable image, bad JSON, undecodable text) is classified into one of ``KINDS``, counted, and
then, under ``on_error="warn"`` (the default), announced with a :class:`CorruptSampleWarning` that
names the shard and the sample key; under ``on_error="raise"`` a :class:`CorruptSampleError` is raised
instead (DataLoader re-raises it in the main process with the worker's traceback).

Counts live in a small shared-memory tensor with one row per DataLoader worker (each worker writes
only its own row, so no lock is needed); the object travels to forked or spawned workers with the
dataset, so ``dataset.errors.as_dict()`` in the main process sees what every worker skipped.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch

KINDS: tuple[str, ...] = ("shard", "missing_member", "bad_image", "bad_json", "bad_text", "other", "filtered")
"""``filtered`` counts samples a sampler rejects by design (e.g. OpenFlamingo's too-few-images rule): counted, never warned."""
OnError = Literal["warn", "raise"]
ON_ERROR_CHOICES: tuple[str, ...] = ("warn", "raise")
_MAX_SLOTS = 256


class CorruptSampleWarning(UserWarning):
    """A sample or shard was skipped; the message names the kind, shard and key."""


class CorruptSampleError(Exception):
    """A sample or shard is corrupt and the policy is ``raise``.

    Decoders also raise it (with ``shard``/``key`` unset) to classify a problem; the stream fills them in.
    """

    def __init__(self, kind: str, message: str, *, shard: str | None = None, key: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown corrupt-sample kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        self.message = message
        self.shard = shard
        self.key = key
        super().__init__(self._text())

    def _text(self) -> str:
        where = f" in shard {self.shard}" if self.shard else ""
        key = f" key={self.key}" if self.key else ""
        return f"{self.kind}{key}{where}: {self.message}"

    def located(self, shard: str | None, key: str | None) -> "CorruptSampleError":
        """The same error, naming where it happened."""
        err = CorruptSampleError(self.kind, self.message, shard=shard, key=key)
        err.__cause__ = self.__cause__
        return err


class SkipSample(Exception):
    """Raised by a decoder to drop a sample on purpose (a sampling rule, not corruption): counted as
    ``filtered`` without a warning."""


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    return on_error


class ErrorCounts:
    """Per-kind counts of skipped items, shared between the main process and DataLoader workers."""

    def __init__(self) -> None:
        self._table = torch.zeros((_MAX_SLOTS, len(KINDS)), dtype=torch.int64)
        try:
            self._table.share_memory_()
        except (RuntimeError, OSError):  # no /dev/shm: counts stay per process
            pass

    def add(self, kind: str, slot: int = 0, n: int = 1) -> None:
        self._table[slot % _MAX_SLOTS, KINDS.index(kind)] += n

    def as_dict(self) -> dict[str, int]:
        """``{kind: count}`` summed over every worker (kinds with zero included)."""
        totals = self._table.sum(dim=0).tolist()
        return dict(zip(KINDS, (int(v) for v in totals)))

    @property
    def total(self) -> int:
        return int(self._table.sum())

    def reset(self) -> None:
        self._table.zero_()

    def __repr__(self) -> str:
        return f"ErrorCounts({self.as_dict()})"


def report(err: CorruptSampleError, *, on_error: str, counts: ErrorCounts, slot: int = 0) -> None:
    """Count ``err``; then warn (policy ``warn``) or raise it (policy ``raise``)."""
    counts.add(err.kind, slot)
    if on_error == "raise":
        raise err
    warnings.warn(f"pmd.loaders skipped {err}", CorruptSampleWarning, stacklevel=3)
