"""Assembly: the kept blocks merged into texts between images, as an OBELICS-style document."""

from __future__ import annotations

from typing import Any

from pmd.interleaved.select import (
    _BOILERPLATE_LINE, LINK_DENSITY_MAX, WIDER_MIN_PARAS, _select, _wider_para, comment_cut, subtree_text,
)
from pmd.interleaved.walk import GALLERY_WEIGHT

SEPARATORS = ("", "\n", "\n\n")


Walked = tuple  # (blocks, items, parent_of, tag_of, negative, weight): what a walk returns
EMPTY_WALK: Walked = ([], [], [0], [""], set(), {})  # the walk of a page without a root element


def assemble(walked: Walked, main_content: bool,
             ) -> tuple[list[str | None], list[str | None], list[dict[str, Any] | None]]:
    """Main-content selection over a walk's result and the merge of kept blocks into texts between
    images (``_walk.c``'s ``extract`` does the walk and this in one call)."""
    blocks, items, parent_of, tag_of, negative, weight = walked
    if main_content:
        region, neg, wider = _select(blocks, parent_of, tag_of, negative, weight)
    else:
        region, neg, wider = None, negative, set()
    # per container: under a boilerplate container still in force (``out``), or else outside the region
    # (``outside``), and then whether in the wider region; parents are numbered before their children,
    # so one pass, linear in the page
    n_el = len(tag_of)
    out = [False] * n_el
    if neg:
        for e in range(1, n_el):
            out[e] = out[parent_of[e]] or e in neg
    # text blocks under a gallery (walk.GALLERY_WEIGHT) are dropped, its images stay
    caption = [False] * n_el
    if main_content and GALLERY_WEIGHT in weight.values():
        for e in range(1, n_el):
            caption[e] = caption[parent_of[e]] or weight.get(e, 0) == GALLERY_WEIGHT
    outside = [False] * n_el
    wide = [0] * n_el  # the wider-region container a container lies in (0: none)
    if region is not None:
        inside = [False] * n_el
        for e in range(1, n_el):
            par = parent_of[e]
            inside[e] = e in region or inside[par]
            outside[e] = not inside[e]
            wide[e] = e if e in wider else wide[par]
    # a wider-region container counts only with several such paragraphs (not one bio or caption box)
    paras = [0] * n_el
    if wider:
        for b in blocks:
            if wide[b.el] and _wider_para(b):
                paras[wide[b.el]] += 1
    texts: list[str | None] = []
    images: list[str | None] = []
    metadata: list[dict[str, Any] | None] = []
    buf: list[str] = []
    skipped = False
    cut = 0  # the container of a comment heading (select.COMMENT_HEADING): the rest of it is dropped
    sub_len: list[int] | None = None  # text length under each container, made at the first such heading

    def flush_text() -> None:
        if buf:
            texts.append("".join(buf))
            images.append(None)
            metadata.append(None)
            buf.clear()

    for kind, it in items:
        # under no boilerplate container, and in the region (or a long link-free text block of the wider
        # region); then the block's own link density and boilerplate-line checks
        el = it.el
        if cut:  # items come in document order, so the first one outside the container ends the cut
            a = el
            while a > cut:
                a = parent_of[a]
            if a == cut:
                skipped = True
                continue
            cut = 0
        # a comment heading in the region (a boilerplate wrapper of it alone counts too)
        if kind == "t" and main_content and not outside[el] and comment_cut(it):
            cut = parent_of[el]
            if sub_len is None:
                sub_len = subtree_text(blocks, parent_of)
            while cut > 1 and sub_len[cut] == len(it.text):  # a wrapper of the heading alone
                cut = parent_of[cut]
            skipped = True
            continue
        if out[el] or (outside[el] and not (kind == "t" and paras[wide[el]] >= WIDER_MIN_PARAS and _wider_para(it))):
            skipped = True
            continue
        if kind == "t":
            if caption[el]:
                skipped = True
                continue
            n = len(it.text)
            ld = it.link_chars / n if n else 1.0
            if ld > LINK_DENSITY_MAX or (n < 40 and _BOILERPLATE_LINE.match(it.text)):
                skipped = True
                continue
            if buf:
                buf.append("\n\n" if skipped else (SEPARATORS[it.sep] or " "))
            buf.append(it.text)
            skipped = False
        else:
            flush_text()
            skipped = False
            texts.append(None)
            images.append(it.url)
            metadata.append({"src": it.src, "alt_text": it.alt, "rendered_width": it.width,
                             "rendered_height": it.height})
    flush_text()
    return texts, images, metadata

