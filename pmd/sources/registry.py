"""Name → ``Source`` for every source pmd can parse.

``PMD_SOURCES`` are the 12 source names of PMD (FLAVA Table 1 order, the Localized Narratives row
split into its four subsets); other registered names (``flickr8k``) are extra corpora used for
validation, never part of a PMD build by default.
"""

from __future__ import annotations

from pmd.errors import UserError
from pmd.sources.base import Source
from pmd.sources.cc3m import ConceptualCaptions
from pmd.sources.cc12m import Conceptual12M
from pmd.sources.coco import Coco
from pmd.sources.flickr8k import Flickr8k
from pmd.sources.local_folder import ImageFolder
from pmd.sources.localized_narratives import LN_SUBSETS
from pmd.sources.redcaps import RedCaps
from pmd.sources.sbu import SbuCaptions
from pmd.sources.visual_genome import VisualGenome
from pmd.sources.wit import Wit
from pmd.sources.yfcc100m import Yfcc100m

#: FLAVA Table 1: row → (pairs in millions, average caption words).
PAPER_TABLE1: dict[str, tuple[float, float]] = {
    "COCO": (0.9, 12.4),
    "SBU Captions": (1.0, 12.1),
    "Localized Narratives": (1.9, 13.8),
    "Conceptual Captions": (3.1, 10.3),
    "Visual Genome": (5.4, 5.1),
    "Wikipedia Image Text (WIT)": (4.8, 12.8),
    "Conceptual Captions 12M": (11.0, 17.3),
    "RedCaps": (11.6, 9.5),
    "YFCC100M (filtered)": (30.3, 12.7),
}
PAPER_TOTAL = (70.0, 12.1)

_PMD: list[Source] = [
    Coco(),
    SbuCaptions(),
    *LN_SUBSETS,
    ConceptualCaptions(),
    VisualGenome(),
    Wit(),
    Conceptual12M(),
    RedCaps(),
    Yfcc100m(),
]
_EXTRA: list[Source] = [Flickr8k(), ImageFolder()]

PMD_SOURCES: tuple[str, ...] = tuple(s.name for s in _PMD)
EXTRA_SOURCES: tuple[str, ...] = tuple(s.name for s in _EXTRA)
SOURCES: dict[str, Source] = {s.name: s for s in (*_PMD, *_EXTRA)}


def get_source(name: str) -> Source:
    """The registered source ``name``; a ``UserError`` listing the known names otherwise."""
    try:
        return SOURCES[name]
    except KeyError:
        raise UserError(f"unknown source {name!r}; known sources: {', '.join(SOURCES)}") from None
