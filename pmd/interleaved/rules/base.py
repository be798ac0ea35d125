"""What a filter rule is: a small named unit with its config key, its drop reason and the metric it reads.

The interleaved filters are lists of these (datatrove's filter steps, in our words): a rule looks at
one stored metric of one paragraph, document or image and returns its reason to drop it, or None to
keep it. Its ``name`` is the ``FilterConfig`` key that sets its threshold, so a user disables a rule
with ``filter_overrides: {name: null}``; ``pmd interleaved --list-filters`` prints every rule of a
profile with these fields. Thresholds come from the typed config (:mod:`pmd.interleaved.config`);
the metrics from :mod:`pmd.interleaved.metrics`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from typing import Any, Callable, ClassVar, Literal

Level = Literal["paragraph", "document", "image"]


@dataclass(frozen=True)
class Rule:
    """A rule: ``name`` (its config key), ``level``, ``metric`` it reads, ``reason`` it counts.

    Subclasses add their threshold fields, ``__call__`` (the check) and two templates over their
    fields for listings: ``SETTING`` (the configured value) and ``KEEPS`` (what passes, in words).
    """

    name: str
    level: Level
    metric: str
    reason: str

    SETTING: ClassVar[str] = "on"
    KEEPS: ClassVar[str] = "{metric} ok"

    def __call__(self, m: Any) -> str | None:
        """The reason to drop the unit described by ``m``, or None to keep it."""
        raise NotImplementedError

    def test(self) -> tuple[str, Callable[[Any, Any], bool], Any] | None:
        """``(metric, op, value)`` when the rule is "drop if ``op(m[metric], value)``", for the rule
        set's tight loop (a paragraph meets every paragraph rule); None: call the rule."""
        return None

    def _fields(self) -> dict[str, Any]:
        return {f.name: ",".join(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    @property
    def setting(self) -> str:
        """The configured value, as ``--list-filters`` shows it."""
        return self.SETTING.format(**self._fields())

    @property
    def keeps(self) -> str:
        """What passes, in words."""
        return self.KEEPS.format(**self._fields())

    def describe(self) -> dict[str, Any]:
        """The rule as a plain dict (level, name, setting, reason, metric, keeps)."""
        return {"level": self.level, "name": self.name, "setting": self.setting, "reason": self.reason,
                "metric": self.metric, "keeps": self.keeps}


@dataclass(frozen=True)
class AtLeast(Rule):
    """Keep when ``m[metric] >= minimum``."""

    minimum: float
    SETTING: ClassVar[str] = "{minimum}"
    KEEPS: ClassVar[str] = "{metric} >= {minimum}"

    def __call__(self, m: dict[str, Any]) -> str | None:
        return self.reason if m[self.metric] < self.minimum else None

    def test(self) -> tuple[str, Callable[[Any, Any], bool], Any]:
        return self.metric, operator.lt, self.minimum


@dataclass(frozen=True)
class AtMost(Rule):
    """Keep when ``m[metric] <= maximum``."""

    maximum: float
    SETTING: ClassVar[str] = "{maximum}"
    KEEPS: ClassVar[str] = "{metric} <= {maximum}"

    def __call__(self, m: dict[str, Any]) -> str | None:
        return self.reason if m[self.metric] > self.maximum else None

    def test(self) -> tuple[str, Callable[[Any, Any], bool], Any]:
        return self.metric, operator.gt, self.maximum


def enabled(*rules: Rule | None) -> tuple[Rule, ...]:
    """The rules whose threshold is configured (``None`` in the config disables a rule)."""
    return tuple(r for r in rules if r is not None)


def at_least(name: str, level: Level, metric: str, reason: str, minimum: float | None) -> AtLeast | None:
    return None if minimum is None else AtLeast(name, level, metric, reason, minimum)


def at_most(name: str, level: Level, metric: str, reason: str, maximum: float | None) -> AtMost | None:
    return None if maximum is None else AtMost(name, level, metric, reason, maximum)
