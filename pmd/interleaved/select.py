"""Main-content selection over the walk's blocks: which containers hold the article, which blocks stay.

A readability-style score of each container (paragraph length and commas, class/id hints, link
density) picks the article container and its strong siblings; inside it, link-heavy blocks (menus,
related-link lists), boilerplate lines and blocks under boilerplate containers (comments, share bars,
sidebars) are dropped. The same rules are compiled into ``_walk.c`` (``select_region`` and the
assembly loop), which receives the tables below through ``init``.
"""

from __future__ import annotations

import re

from pmd.interleaved.walk import _Block

TAG_BONUS = {"div": 5, "article": 10, "main": 5, "section": 2, "pre": 3, "td": 3, "blockquote": 3,
             "ol": -3, "ul": -3, "dl": -3, "li": -3, "dd": -3, "dt": -3, "address": -3,
             "h1": -5, "h2": -5, "h3": -5, "h4": -5, "h5": -5, "h6": -5, "th": -5}
# blocks whose score goes to their parent and up (not to themselves); sibling containers that may join
# the chosen one in the content region
_PARA_TAGS = frozenset({"p", "pre", "td", "blockquote", "li"})
# The wider region keeps only paragraphs (these tags) of WIDER_MIN_CHARS or more without links, and only in
# a container with WIDER_MIN_PARAS of them (not a lone author bio, caption or blog description box).
WIDER_MIN_CHARS = 80
WIDER_MIN_PARAS = 3
WIDER_TAGS = frozenset({"p", "pre", "blockquote"})
_REGION_TAGS = frozenset({"p", "blockquote", "pre", "ul", "ol", "table", "h2", "h3", "h4", "figure", "div"})
_BOILERPLATE_LINE = re.compile(
    r"^(advertisement|anzeige|werbung|share( this)?( article| story)?|read more|continue reading|"
    r"related( articles| stories)?|comments?|loading\.*|sponsored|click here|skip to (main )?content|"
    r"sign up|subscribe( now)?|follow us|print|e-?mail|tweet|facebook|twitter|linkedin|whatsapp)\W*$",
    re.I,
)


def _wider_para(b: _Block) -> bool:
    """A block the wider region may keep: a long paragraph without links."""
    return b.link_chars == 0 and len(b.text) >= WIDER_MIN_CHARS and b.tag in WIDER_TAGS


def _select(blocks: list[_Block], parent_of: list[int], tag_of: list[str], negative: set[int],
            weight: dict[int, int]) -> tuple[set[int] | None, set[int], set[int]]:
    """The content region (a set of container ids; None = whole page), the negative containers that
    still apply (those that are not ancestors of the chosen container) and the wider region (containers
    where long link-free blocks are kept too)."""
    n_el = len(tag_of)
    text_len = [0] * n_el
    link_len = [0] * n_el
    score: dict[int, float] = {}
    for b in blocks:  # text of each block on its innermost container, then summed up the tree once
        e = b.el
        text_len[e] += len(b.text)
        link_len[e] += b.link_chars
    for e in range(n_el - 1, 0, -1):  # document (pre)order: children come after their parents
        t = text_len[e]
        if t:
            par = parent_of[e]
            if par:
                text_len[par] += t
                link_len[par] += link_len[e]
    for b in blocks:
        own = len(b.text) - b.link_chars
        if own < 25 or b.el == 1:  # too short, or directly in the root
            continue
        s = 1.0 + b.text.count(",") + b.text.count("，") + b.text.count("、") + min(own / 100.0, 3.0)
        # the block's container and two levels up (paragraph-like blocks: from their parent up)
        e = parent_of[b.el] if b.tag in _PARA_TAGS else b.el
        for level in range(3):
            if not e:
                break
            if e not in score:
                score[e] = float(TAG_BONUS.get(tag_of[e], 0) + weight.get(e, 0))
            score[e] += s / (1.0, 2.0, 6.0)[level]
            e = parent_of[e]
    if not score:
        return None, negative, set()
    final = {e: s * (1.0 - link_len[e] / max(text_len[e] or 1, 1)) for e, s in score.items()}
    top = max(final, key=final.__getitem__)
    if final[top] < 5:
        return None, negative, set()
    ancestors = set()
    e = top
    while e:
        ancestors.add(e)
        e = parent_of[e]
    region = {top}
    parent = parent_of[top]
    threshold = max(10.0, final[top] * 0.2)
    if parent:
        for e in range(1, n_el):
            if parent_of[e] != parent or e == top or e in negative:
                continue
            if final.get(e, 0.0) >= threshold:
                region.add(e)
                continue
            tl = text_len[e]
            ld = link_len[e] / tl if tl else 1.0
            if tag_of[e] in _REGION_TAGS:
                if (tl > 80 and ld < 0.25) or (0 < tl <= 80 and ld == 0):
                    region.add(e)
    # the wider region: subtrees beside the region's parent (under the same grandparent), where only long
    # link-free paragraphs are kept (``_wider_para``): an article continued in a sibling column, a
    # chapter or section body next to the block of headings the score picked
    wider: set[int] = set()
    if parent and parent_of[parent]:
        gp = parent_of[parent]
        wider = {e for e in range(1, n_el) if parent_of[e] == gp and e != parent and e not in negative}
    return region, negative - ancestors, wider
