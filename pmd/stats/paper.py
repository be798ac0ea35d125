"""FLAVA Table 1 (arXiv 2112.04482): the PMD composition a build is compared against.

Numbers from docs (pmd-sources.md §3): pairs in millions and mean caption words per source
group; the Localized Narratives row covers the four LN sub-sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class PaperRow:
    group: str
    pairs_m: float
    avg_words: float


FLAVA_TABLE1: tuple[PaperRow, ...] = (
    PaperRow("COCO", 0.9, 12.4),
    PaperRow("SBU Captions", 1.0, 12.1),
    PaperRow("Localized Narratives", 1.9, 13.8),
    PaperRow("Conceptual Captions", 3.1, 10.3),
    PaperRow("Visual Genome", 5.4, 5.1),
    PaperRow("WIT", 4.8, 12.8),
    PaperRow("Conceptual Captions 12M", 11.0, 17.3),
    PaperRow("RedCaps", 11.6, 9.5),
    PaperRow("YFCC100M (filtered)", 30.3, 12.7),
)
PAPER_TOTAL_PAIRS_M = 70.0
PAPER_UNIQUE_IMAGES_M = 68.0
PAPER_MEAN_WORDS = 12.1

_GROUP_OF = {
    "coco": "COCO",
    "sbu_captions": "SBU Captions",
    "sbu": "SBU Captions",
    "conceptual_captions": "Conceptual Captions",
    "cc3m": "Conceptual Captions",
    "visual_genome": "Visual Genome",
    "google/wit": "WIT",
    "wit": "WIT",
    "conceptual_12m": "Conceptual Captions 12M",
    "cc12m": "Conceptual Captions 12M",
    "red_caps": "RedCaps",
    "redcaps": "RedCaps",
    "yfcc100m": "YFCC100M (filtered)",
    "yfcc": "YFCC100M (filtered)",
}


def paper_group(source: str) -> str | None:
    """The Table 1 row of a PMD source name (``localized_narratives__*`` → Localized Narratives)."""
    if source.startswith("localized_narratives"):
        return "Localized Narratives"
    return _GROUP_OF.get(source)


def paper_table() -> pd.DataFrame:
    """Table 1 with each group's share of the 70M pairs."""
    df = pd.DataFrame([r.__dict__ for r in FLAVA_TABLE1])
    df["paper_share"] = df["pairs_m"] / df["pairs_m"].sum()
    return df


def compare_with_paper(pairs_per_source: dict[str, int], words_per_source: dict[str, float] | None = None
                       ) -> pd.DataFrame:
    """Build pair counts grouped by Table 1 row, next to the paper's counts and shares.

    Columns: group, pairs, share, paper_pairs_m, paper_share, share_ratio, mean_words, paper_avg_words.
    Sources outside Table 1 are grouped as "other" (no paper numbers).
    """
    words_per_source = words_per_source or {}
    rows: dict[str, dict[str, float]] = {r.group: {"pairs": 0, "words_sum": 0.0} for r in FLAVA_TABLE1}
    for src, n in pairs_per_source.items():
        g = paper_group(src) or "other"
        acc = rows.setdefault(g, {"pairs": 0, "words_sum": 0.0})
        acc["pairs"] += int(n)
        if src in words_per_source and words_per_source[src] == words_per_source[src]:
            acc["words_sum"] += float(words_per_source[src]) * int(n)
    paper = {r.group: r for r in FLAVA_TABLE1}
    total = sum(r["pairs"] for r in rows.values())
    out = []
    for g, acc in rows.items():
        p = paper.get(g)
        share = acc["pairs"] / total if total else 0.0
        paper_share = p.pairs_m / PAPER_TOTAL_PAIRS_M if p else float("nan")
        out.append({
            "group": g,
            "pairs": int(acc["pairs"]),
            "share": share,
            "paper_pairs_m": p.pairs_m if p else float("nan"),
            "paper_share": paper_share,
            "share_ratio": share / paper_share if p else float("nan"),
            "mean_words": acc["words_sum"] / acc["pairs"] if acc["pairs"] and acc["words_sum"] else float("nan"),
            "paper_avg_words": p.avg_words if p else float("nan"),
        })
    df = pd.DataFrame(out)
    if (df["group"] == "other").any() and df.loc[df["group"] == "other", "pairs"].sum() == 0:
        df = df[df["group"] != "other"]
    return df.reset_index(drop=True)
