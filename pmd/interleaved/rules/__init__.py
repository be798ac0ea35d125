"""The interleaved filters as named rules: a profile (``obelics``, ``m3w``) is a list of them.

* :mod:`~pmd.interleaved.rules.base`: what a rule is (name = config key, level, metric, reason).
* :mod:`~pmd.interleaved.rules.paragraph`, :mod:`~pmd.interleaved.rules.document`,
  :mod:`~pmd.interleaved.rules.image`: the rules of each level, in the order they are tried.
* :class:`RuleSet`: the enabled rules of one ``FilterConfig`` and the first reason of each level;
  ``rules_for(cfg)`` builds (and caches) it; ``profile_rules(profile, overrides)`` for a profile.

The counting driver (which units reach which rules, the counters and reject rows) is
:mod:`pmd.interleaved.filters`; the metrics the rules read are :mod:`pmd.interleaved.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pmd.interleaved.config import FilterConfig, resolve_filters
from pmd.interleaved.rules.base import AtLeast, AtMost, Rule
from pmd.interleaved.rules.document import Language, RequireText, document_rules, image_count_rules, language_rule
from pmd.interleaved.rules.image import (Formats, ImageFacts, SingleColour, SizeRule, UrlBans, image_facts, pixel_rules,
                                         size_rules, url_rules)
from pmd.interleaved.rules.paragraph import MinPunctuation, paragraph_rules


Plan = tuple[tuple[Any, Any, Any, Any], ...]


def _plan(rules: tuple[Rule, ...]) -> Plan:
    """``rules`` as ``(metric, op, value, reason)`` steps (``(None, rule, None, None)`` for a rule that
    must be called): the same decisions as calling each rule, at a third of the cost per paragraph."""
    out = []
    for rule in rules:
        t = rule.test()
        out.append((None, rule, None, None) if t is None else (t[0], t[1], t[2], rule.reason))
    return tuple(out)


def _first(plan: Plan, x: Any) -> str | None:
    """The reason of the first rule of ``plan`` that drops ``x``, or None."""
    for metric, op, value, reason in plan:
        if metric is None:
            r = op(x)
            if r:
                return r
        elif op(x[metric], value):
            return reason
    return None


@dataclass(frozen=True)
class RuleSet:
    """Every enabled rule of one config, by level, in the order they are tried: the first failing
    rule's reason is the unit's reason (so counts per reason add up to the units dropped)."""

    paragraph: tuple[Rule, ...]
    document: tuple[Rule, ...]
    image_count: tuple[Rule, ...]
    image_url: tuple[Rule, ...]
    image_size: tuple[SizeRule, ...]
    image_pixels: tuple[Rule, ...]
    language: Language | None

    @classmethod
    def from_config(cls, cfg: FilterConfig) -> "RuleSet":
        return cls(paragraph_rules(cfg), document_rules(cfg), image_count_rules(cfg), url_rules(cfg),
                   size_rules(cfg), pixel_rules(cfg), language_rule(cfg))

    def __post_init__(self) -> None:
        for level in ("paragraph", "document", "image_count", "image_url", "image_pixels"):
            object.__setattr__(self, f"_{level}_plan", _plan(getattr(self, level)))

    def paragraph_reason(self, m: dict[str, Any]) -> str | None:
        return _first(self._paragraph_plan, m)  # type: ignore[attr-defined]

    def document_reason(self, m: dict[str, Any]) -> str | None:
        return _first(self._document_plan, m)  # type: ignore[attr-defined]

    def image_count_reason(self, n_images: int) -> str | None:
        return _first(self._image_count_plan, {"images": n_images})  # type: ignore[attr-defined]

    def image_reason(self, img: ImageFacts) -> str | None:
        r = _first(self._image_url_plan, img)  # type: ignore[attr-defined]
        for w, h in img.sizes:  # each known size against every size rule, declared size first
            for size_rule in self.image_size:
                r = r or size_rule.size_reason(w, h)
        return r or _first(self._image_pixels_plan, img)  # type: ignore[attr-defined]

    def __iter__(self):
        """Every rule: image, paragraph, then document level (the order a document meets them)."""
        yield from self.image_url
        yield from self.image_size
        yield from self.image_pixels
        yield from self.paragraph
        yield from self.document
        yield from self.image_count

    def describe(self) -> list[dict[str, Any]]:
        return [r.describe() for r in self]


@lru_cache(maxsize=64)
def _cached(cfg: FilterConfig) -> RuleSet:
    return RuleSet.from_config(cfg)


_BY_ID: dict[int, tuple[FilterConfig, RuleSet]] = {}


def rules_for(cfg: FilterConfig) -> RuleSet:
    """The rule set of ``cfg`` (cached per config: configs are frozen). The same config object is
    found by identity first (hashing a 30-field config costs more than a paragraph's rules)."""
    hit = _BY_ID.get(id(cfg))
    if hit is not None and hit[0] is cfg:
        return hit[1]
    try:
        rules = _cached(cfg)
    except TypeError:  # an unhashable field value: build it each time
        return RuleSet.from_config(cfg)
    if len(_BY_ID) > 64:
        _BY_ID.clear()
    _BY_ID[id(cfg)] = (cfg, rules)  # holds cfg, so its id is not reused while the entry lives
    return rules


def profile_rules(profile: str, overrides: dict[str, Any] | None = None) -> RuleSet:
    """The rules of a profile (``obelics``, ``m3w``) with ``filter_overrides`` applied."""
    return rules_for(resolve_filters(profile, overrides))


def format_rules(rules: RuleSet, title: str) -> str:
    """A table of ``rules`` for ``pmd interleaved --list-filters``."""
    rows = [(r["level"], r["name"], str(r["setting"]), r["reason"], r["keeps"]) for r in rules.describe()]
    head = ("level", "rule (config key)", "setting", "drop reason", "keeps")
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(4)]
    lines = [title, "  " + "  ".join(h.ljust(w) for h, w in zip(head, widths)) + "  " + head[4]]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4] for row in rows]
    return "\n".join(lines)


__all__ = ["AtLeast", "AtMost", "Formats", "ImageFacts", "Language", "MinPunctuation", "RequireText", "Rule", "RuleSet",
           "SingleColour", "SizeRule", "UrlBans", "format_rules", "image_facts", "profile_rules", "rules_for"]
