"""Main-content selection over the walk's blocks: which containers hold the article, which blocks stay.

A readability-style score of each container (paragraph length and commas, class/id hints, link
density) picks the article container and its strong siblings; when several strong containers sit in
sibling subtrees of one ancestor (an article split into sections, steps or cards, each wrapped in its
own chain of divs, or an index of teasers spread over several lists), that ancestor is the article
instead. Blocks of comment threads, and of boilerplate boxes nested in the article's text (a gallery
between its paragraphs), never count towards a container's score. Inside the region, blocks that are
mostly link text (menus, related-link lists), boilerplate lines and blocks under boilerplate
containers (comments, share bars, sidebars) are dropped, and so are the captions of galleries (their
images stay) and everything after a comment-section heading in its container (``COMMENT_HEADING``).
A big unscored box after the chosen container does not join it (``SIBLING_BOX_MAX``). The same rules
are compiled into ``_walk.c`` (``select_region`` and the assembly loop), which receives the tables
below through ``init``, ``set_wider``, ``set_select`` and ``set_comment_heading``.
"""

from __future__ import annotations

import re

from pmd.interleaved.walk import GALLERY_WEIGHT, THREAD_WEIGHT, _Block

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
# A block is dropped as a menu or link list when more than this share of its text is link text. Prose
# with many inline links (reviews, deal lists, link-rich blog posts, citation-heavy docs) stays: the
# region's container score already discounts link-heavy containers, so the block rule only removes
# what is nearly all links.
LINK_DENSITY_MAX = 0.8
# The climb: the CLIMB_CANDIDATES best containers scoring CLIMB_FRAC of the best one or more are the
# strong candidates; the lowest ancestor of the best, at most CLIMB_LEVELS up and below the root, with
# strong candidates under CLIMB_BRANCHES or more of its children (the best's own branch counted)
# becomes the article container. Readability.js does a similar climb (its top-5 "alternative
# candidates"); one section alone, or a section and one teaser box, never moves it.
# The climbed-to ancestor must also hold CLIMB_COVER of the strong candidates or more: on an index page
# of many equal teasers spread over several lists, the lowest ancestor with three branches is one list
# among several, and the page's content is the ancestor that holds most of them.
CLIMB_FRAC = 0.4
CLIMB_CANDIDATES = 10
CLIMB_BRANCHES = 3
CLIMB_LEVELS = 8
CLIMB_COVER = 0.5
# A boilerplate container whose parent holds this many long link-free paragraphs of its own
# (``_wider_para``) is a box nested in the article's text (a related-stories gallery or video strip
# between its paragraphs): its blocks score nothing, so a long one cannot elect itself over the text
# around it. A boilerplate-looking container that wraps the whole content (class names such as
# "content-with-sidebar") has no such parent and still scores.
NESTED_BOX_PARAS = 3
_REGION_TAGS = frozenset({"p", "blockquote", "pre", "ul", "ol", "table", "h2", "h3", "h4", "figure", "div"})
# A sibling of the chosen container that scored too little to join by its score joins by its own text
# (over 80 characters with few links, or a short line without links) when it is a paragraph
# (``WIDER_TAGS``), comes before the container (a headline, byline or summary box above the article
# body), or is a box of SIBLING_BOX_MAX characters or fewer. A bigger box after the article that earned
# no score of its own (its text sits deeper than the score reaches) is a column of teasers ("Part of
# complete coverage", "What's new") rather than the article's continuation.
SIBLING_BOX_MAX = 400
_BOILERPLATE_LINE = re.compile(
    r"^(advert(isement|ising)?|anzeige|werbung|share( this)?( article| story)?|read more|continue reading|"
    r"related( articles| stories)?|comments?|loading\.*|sponsored|click here|skip to (main )?content|"
    r"sign up|subscribe( now)?|follow us|print|e-?mail|tweet|facebook|twitter|linkedin|whatsapp)\W*$",
    re.I,
)
# A heading (these tags, shorter than COMMENT_HEADING_MAX characters) that opens a comment section:
# "Comments", "12 Comments", "Comments (9)", "3 Responses to ...", "Leave a Reply", "Post a comment".
# Blogs of many engines (Movable Type, TypePad, some WordPress themes) print readers' comments as plain
# paragraphs after such a heading in the article's own container, without a "comment" class to mark
# them, so the class rules cannot drop them; a reader's "Posted by" line looks like the article's own.
# In the region, the heading and every item after it inside the heading's parent container are dropped
# (``comment_cut``; a wrapper that holds the heading alone counts as the heading). A lone "Comment" (a
# newspaper's opinion section) does not count.
COMMENT_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
COMMENT_HEADING_MAX = 60
COMMENT_HEADING = re.compile(
    r"^\W*(?:\d+\s+)?(?:(?:reader |user )?comments|\d+\s+comment|responses|replies|"
    r"(?:leave|post|add|write|submit) (?:a|your) (?:comment|reply|response)|"
    r"\d+ (?:thoughts|responses|replies) (?:on|to) .*)\W*(?:\(\d+\))?\W*$",
    re.I,
)


def subtree_text(blocks: list[_Block], parent_of: list[int]) -> list[int]:
    """The text length (characters of blocks) under each container, its subtree included."""
    n = [0] * len(parent_of)
    for b in blocks:
        n[b.el] += len(b.text)
    for e in range(len(parent_of) - 1, 1, -1):  # children are numbered after their parents
        n[parent_of[e]] += n[e]
    return n


def comment_cut(b: _Block) -> bool:
    """Whether a text block kept so far is a heading that opens a comment section (``COMMENT_HEADING``)."""
    return (b.tag in COMMENT_HEADING_TAGS and len(b.text) < COMMENT_HEADING_MAX
            and COMMENT_HEADING.match(b.text) is not None)


def _wider_para(b: _Block) -> bool:
    """A block the wider region may keep: a long paragraph without links."""
    return b.link_chars == 0 and len(b.text) >= WIDER_MIN_CHARS and b.tag in WIDER_TAGS


def _climb(top: int, final: dict[int, float], parent_of: list[int]) -> int:
    """The article container for the best-scoring ``top``: its lowest ancestor (``CLIMB_LEVELS`` up at
    most, never the root) whose children hold strong candidates in ``CLIMB_BRANCHES`` or more
    subtrees and ``CLIMB_COVER`` of all candidates; ``top`` itself when there is none. The scores only
    reach three levels up, so an article cut into sections that each sit in their own wrapper chain
    otherwise keeps one section only."""
    thr = CLIMB_FRAC * final[top]
    # the best first, ties in scoring order (``final`` keeps it): the same candidates as _walk.c's
    cands = sorted((e for e, v in final.items() if v >= thr), key=lambda e: -final[e])[:CLIMB_CANDIDATES]
    level = {}  # ancestor of top -> its number of levels above top
    a, n = parent_of[top], 1
    while a > 1 and n <= CLIMB_LEVELS:
        level[a] = n
        a, n = parent_of[a], n + 1
    branches: dict[int, set[int]] = {}
    cover: dict[int, int] = {}  # ancestor -> how many candidates lie under it
    for c in cands:
        prev, a = c, parent_of[c]
        while a:
            if a in level:
                branches.setdefault(a, set()).add(prev)
                cover[a] = cover.get(a, 0) + 1
            prev, a = a, parent_of[a]
    best = top
    for a, n in level.items():  # lowest first
        if len(branches.get(a, ())) >= CLIMB_BRANCHES and cover[a] >= CLIMB_COVER * len(cands):
            best = a
            break
    return best


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
    # blocks under a comment thread score nothing: a long discussion must not outweigh its article; nor do
    # blocks of a boilerplate box nested in the article's text (``NESTED_BOX_PARAS``) or of a gallery
    # (``walk.GALLERY_WEIGHT``: its captions, which assembly drops too)
    mute = [False] * n_el
    if negative or GALLERY_WEIGHT in weight.values():
        paras = [0] * n_el  # long link-free paragraphs directly in each container (all are _PARA_TAGS)
        for b in blocks:
            if _wider_para(b):
                paras[parent_of[b.el]] += 1
        for e in range(1, n_el):
            par = parent_of[e]
            w = weight.get(e, 0)
            mute[e] = mute[par] or w == GALLERY_WEIGHT or (e in negative and (w == THREAD_WEIGHT
                                                                              or paras[par] >= NESTED_BOX_PARAS))
    for b in blocks:
        own = len(b.text) - b.link_chars
        if own < 25 or b.el == 1 or mute[b.el]:  # too short, directly in the root, or muted (above)
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
    top_score = final[top]
    if top_score < 5:
        return None, negative, set()
    top = _climb(top, final, parent_of)
    ancestors = set()
    e = top
    while e:
        ancestors.add(e)
        e = parent_of[e]
    region = {top}
    parent = parent_of[top]
    threshold = max(10.0, top_score * 0.2)
    if parent:
        for e in range(1, n_el):
            if parent_of[e] != parent or e == top or e in negative:
                continue
            if final.get(e, 0.0) >= threshold:
                region.add(e)
                continue
            tl = text_len[e]
            ld = link_len[e] / tl if tl else 1.0
            tag = tag_of[e]
            if tag in _REGION_TAGS and (tag in WIDER_TAGS or tl <= SIBLING_BOX_MAX or e < top):
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
