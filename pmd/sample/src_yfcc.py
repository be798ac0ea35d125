"""YFCC100M: the single-file ``yfcc100m_dataset`` TSV (25 columns, no header, URL-form-encoded text).

Rows cover every branch of PMD's rule (description first if English and > 2 words, else the title;
photos only). ``expected["yfcc"]`` gives, per file line, the branch and the text the reference rule
``collapse_ws(unescape(strip_html(unquote_plus(t))))`` should choose (None = dropped, with the reason).
"""

from __future__ import annotations

import hashlib
import html
import re
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from pmd.sample import scenes as sc
from pmd.sample.context import SampleContext

YFCC_TSV = "yfcc100m/yfcc100m_dataset"
N_COLUMNS = 25
# Each branch appears at least once; the remaining rows are ordinary English descriptions.
BRANCHES = ("en_description", "en_description_html", "en_description_entity", "nonen_description_en_title",
            "both_nonenglish", "too_short", "empty_description_good_title", "html_only_description", "video")
_TAG = re.compile(r"<[^<]+?>")


def clean(text: str) -> str:
    """The reference cleaning: URL-decode, strip HTML tags, decode entities, collapse whitespace."""
    return " ".join(html.unescape(_TAG.sub("", unquote_plus(text))).split())


def _texts(branch: str, scene: sc.Scene, rng) -> tuple[str, str, str | None, str | None]:
    """(title, description, chosen field or None, drop reason or None), both texts still plain."""
    eng = sc.sentence(f"{sc.relation(scene)} {sc.on_background(scene)}")
    eng_title = sc.relation(scene).capitalize()
    foreign = sc.translated(scene, rng.choice(("fr", "de", "es")))
    if branch == "en_description":
        return rng.choice(["IMG_0520", "DSC01234", "Shapes"]), eng, "description", None
    if branch == "en_description_html":
        first, rest = sc.relation(scene).split(" ", 1)
        return "Shapes", f"{first.capitalize()} <b>{rest}</b>\n{sc.on_background(scene)}.", "description", None
    if branch == "en_description_entity":
        return "Shapes", f"Shapes &amp; colours: {eng}", "description", None
    if branch == "nonen_description_en_title":
        return eng_title, foreign, "title", None
    if branch == "both_nonenglish":
        return sc.translated(scene, "de"), sc.translated(scene, "fr"), None, "not_english"
    if branch == "too_short":
        return "IMG_4410", f"{scene.shapes[0].color} {scene.shapes[0].kind}", None, "too_short"
    if branch == "empty_description_good_title":
        return eng_title, "", "title", None
    if branch == "html_only_description":
        return eng_title, '<a href="http://www.flickr.com/photos/shapes/"><img src="http://l.yimg.com/g/i.gif" /></a>', \
            "title", None
    if branch == "video":
        return "Shapes video", eng, None, "video"
    raise ValueError(branch)


def write_yfcc(ctx: SampleContext) -> dict[str, Any]:
    rng = ctx.rng("yfcc")
    n = ctx.n(90, minimum=len(BRANCHES) + 4)
    plan = list(BRANCHES) + ["en_description"] * (n - len(BRANCHES))
    rng.shuffle(plan)
    en_rows = [i for i, b in enumerate(plan) if b == "en_description"]
    faults = dict(zip(sorted(rng.sample(en_rows, 2)), ("404", "slow")))
    bad_after = sorted(rng.sample(range(n), 2))  # malformed lines go after these rows
    lines, expected = [], []
    for i, branch in enumerate(plan):
        scene = ctx.scene(rng)
        title, desc, field, reason = _texts(branch, scene, rng)
        photo_id = 10**9 + rng.getrandbits(33)
        nsid = f"{rng.randrange(10**7, 10**8)}@N0{rng.randrange(0, 9)}"
        server, farm, secret = rng.randrange(1000, 9999), rng.randrange(1, 10), f"{rng.getrandbits(40):010x}"
        rel = f"images/yfcc/{server}/{photo_id}_{secret}.jpg"
        if branch == "video":
            url = ctx.url(rel)  # never fetched: videos are dropped before download
        elif i in faults:
            url = ctx.fault(faults[i], rel, "yfcc100m", scene)
        else:
            url = ctx.serve_scene(rel, scene)
        tags = ",".join(quote_plus(t) for t in ("shapes", scene.shapes[0].color, scene.shapes[0].kind, "my art"))
        cols = [
            str(len(lines)), str(photo_id), hashlib.md5(str(photo_id).encode()).hexdigest(), nsid,
            quote_plus(f"artist {i % 7}"), f"2012-0{1 + i % 9}-1{i % 10} 09:56:37.0", str(1331840483 + i * 977),
            quote_plus("Canon PowerShot S100"), quote_plus(title), quote_plus(desc), tags, "",
            f"{rng.uniform(-120, 120):.6f}", f"{rng.uniform(-60, 60):.6f}", str(rng.randrange(1, 17)),
            f"http://www.flickr.com/photos/{nsid}/{photo_id}/", url, "Attribution-ShareAlike License",
            "http://creativecommons.org/licenses/by-sa/2.0/", str(server), str(farm), secret,
            f"{rng.getrandbits(40):010x}", "jpg", "1" if branch == "video" else "0",
        ]
        assert len(cols) == N_COLUMNS
        lines.append("\t".join(cols))
        raw_title, raw_desc = cols[8], cols[9]
        text = clean(raw_desc) if field == "description" else clean(raw_title) if field == "title" else None
        expected.append({"line": len(lines), "line_number": int(cols[0]), "branch": branch, "field": field,
                         "text": text, "reason": reason, "url": url})
        if i in bad_after:
            short = len(cols) - 1 if i == bad_after[0] else len(cols) + 1
            bad = [str(len(lines))] + cols[1:short] if short < len(cols) else [str(len(lines))] + cols[1:] + ["x"]
            lines.append("\t".join(bad))
            ctx.malformed("yfcc100m", YFCC_TSV, len(lines), "wrong_column_count")
            expected.append({"line": len(lines), "line_number": len(lines) - 1, "branch": "malformed",
                             "field": None, "text": None, "reason": "wrong_column_count", "url": None})
    ctx.write_text(YFCC_TSV, "\n".join(lines) + "\n")
    ctx.expected["yfcc"] = expected
    ctx.counts("yfcc100m", rows=len(lines), kept=sum(e["text"] is not None for e in expected))
    return {"paths": [YFCC_TSV], "options": {}}
