"""URL sources with simple line formats: SBU (legacy two files), CC3M, CC12M and RedCaps.

Planted here: an unparsable URL (SBU), a TSV line with a missing column (CC3M, CC12M), exact
duplicates (same URL and caption in CC3M and CC12M), the same image bytes under an SBU and a
CC12M URL, and a few URLs under the server's ``/fault/<kind>/`` paths.
"""

from __future__ import annotations

import json
from typing import Any

from pmd.sample import scenes as sc
from pmd.sample.context import SampleContext

SBU_DIR = "sbu/dataset"
SBU_URLS = f"{SBU_DIR}/SBU_captioned_photo_dataset_urls.txt"
SBU_CAPTIONS = f"{SBU_DIR}/SBU_captioned_photo_dataset_captions.txt"
CC3M_TSV = "cc3m/Train_GCC-training.tsv"
CC12M_TSV = "cc12m/cc12m.tsv"
REDCAPS_SUBREDDITS = ("itookapicture", "mildlyinteresting", "somethingimade")
REDCAPS_EMPTY = "birding"


def _spots(rng, n: int, k: int) -> list[int]:
    """``k`` distinct row positions in ``range(n)`` (sorted), for planting things among ordinary rows."""
    return sorted(rng.sample(range(n), min(k, n)))


def write_web_sources(ctx: SampleContext) -> dict[str, dict[str, Any]]:
    rng = ctx.rng("web-shared")
    shared = [ctx.scene(rng) for _ in range(3)]  # same bytes under an SBU URL and a CC12M URL
    dup_scenes = [ctx.scene(rng) for _ in range(4)]  # identical rows in CC3M and CC12M
    dups: list[tuple[str, str]] = []
    sbu, sbu_shared_urls = _sbu(ctx, shared)
    out = {"sbu_captions": sbu, "conceptual_captions": _cc3m(ctx, dup_scenes, dups)}
    out["conceptual_12m"] = _cc12m(ctx, shared, sbu_shared_urls, dups)
    out["red_caps"] = _redcaps(ctx)
    return out


def _sbu(ctx: SampleContext, shared: list[sc.Scene]) -> tuple[dict[str, Any], list[str]]:
    rng = ctx.rng("sbu")
    n = ctx.n(90, minimum=12)
    shared_at = dict(zip(_spots(rng, n, len(shared)), shared))
    shared_urls: list[str] = []
    faults = dict(zip(_spots(rng, n, 3), ("404", "500", "truncated")))
    faults = {i: k for i, k in faults.items() if i not in shared_at}
    bad_line = rng.choice([i for i in range(n) if i not in shared_at and i not in faults])
    urls, caps = [], []
    for i in range(n):
        scene = shared_at.get(i) or ctx.scene(rng)
        rel = f"images/sbu/{rng.randrange(100, 9999)}/{rng.randrange(10**9, 10**10)}_{rng.getrandbits(40):010x}.jpg"
        if i == bad_line:
            url = f"http://[{rel}"  # unbalanced IPv6 bracket: urllib.parse.urlsplit raises ValueError
            ctx.bad_url("sbu_captions", SBU_URLS, i + 1, url)
        elif i in faults:
            url = ctx.fault(faults[i], rel, "sbu_captions", scene)
        else:
            url = ctx.serve_scene(rel, scene)
            if i in shared_at:
                shared_urls.append(url)
        urls.append(url)
        caps.append(sc.web_caption(scene, rng).replace("<PERSON>", "My friend"))
    ctx.write_text(SBU_URLS, "".join(u + "\n" for u in urls))
    ctx.write_text(SBU_CAPTIONS, "".join(c + "\n" for c in caps))
    ctx.counts("sbu_captions", rows=n, kept=n - 1)
    return {"paths": [SBU_URLS, SBU_CAPTIONS], "options": {}}, shared_urls


def _cc3m(ctx: SampleContext, dup_scenes: list[sc.Scene], dups: list[tuple[str, str]]) -> dict[str, Any]:
    rng = ctx.rng("cc3m")
    n = ctx.n(110, minimum=14)
    dup_at = dict(zip(_spots(rng, n, len(dup_scenes)), dup_scenes))
    faults = {i: k for i, k in zip(_spots(rng, n, 3), ("404", "notimage", "noai")) if i not in dup_at}
    missing_col = rng.choice([i for i in range(n) if i not in dup_at and i not in faults])
    lines = []
    for i in range(n):
        scene = dup_at.get(i) or ctx.scene(rng)
        caption = sc.lower_alt(scene, rng)
        rel = f"images/cc3m/{rng.getrandbits(64):016x}.jpg"
        if i in faults:
            url = ctx.fault(faults[i], rel, "conceptual_captions", scene)
        else:
            url = ctx.serve_scene(rel, scene)
        if rng.random() < 0.3:
            url += "?imgmax=800"
        if i in dup_at:
            dups.append((url, caption))
        if i == missing_col:
            lines.append(caption)  # the URL column is missing
            ctx.malformed("conceptual_captions", CC3M_TSV, i + 1, "missing_column")
        else:
            lines.append(f"{caption}\t{url}")
    ctx.write_text(CC3M_TSV, "\n".join(lines) + "\n")
    ctx.counts("conceptual_captions", rows=n, kept=n - 1)
    return {"paths": [CC3M_TSV], "options": {}}


def _cc12m(ctx: SampleContext, shared: list[sc.Scene], sbu_urls: list[str],
           dups: list[tuple[str, str]]) -> dict[str, Any]:
    rng = ctx.rng("cc12m")
    n = ctx.n(110, minimum=16)
    special = _spots(rng, n, len(shared) + len(dups) + 4)
    rng.shuffle(special)
    shared_at = dict(zip(special[:3], range(len(shared))))  # row -> index into shared / sbu_urls
    dup_at = dict(zip(special[3:3 + len(dups)], dups))
    rest = special[3 + len(dups):]
    faults = dict(zip(rest[:3], ("404", "truncated", "slow")))
    missing_col = rest[3]
    lines = []
    for i in range(n):
        if i in dup_at:
            url, caption = dup_at[i]
            lines.append(f"{url}\t{caption}")
            ctx.expected["cross_source_duplicates"].append(
                {"url": url, "caption": caption, "sources": ["conceptual_captions", "conceptual_12m"]})
            continue
        scene = shared[shared_at[i]] if i in shared_at else ctx.scene(rng)
        slug = "-".join(sc.listing(scene).replace(",", "").split()[:6])
        rel = f"images/cc12m/product/{rng.getrandbits(32):08x}/{slug}.jpeg"
        if i in faults:
            url = ctx.fault(faults[i], rel, "conceptual_12m", scene)
        else:
            url = ctx.serve_scene(rel, scene)
            if i in shared_at and shared_at[i] < len(sbu_urls):
                ctx.same_bytes([sbu_urls[shared_at[i]], url], ctx.jpeg(scene))
        if rng.random() < 0.3:
            url += "?aspect=fit&width=640&height=640"
        caption = sc.web_caption(scene, rng)
        if i == missing_col:
            lines.append(url)  # caption column missing
            ctx.malformed("conceptual_12m", CC12M_TSV, i + 1, "missing_column")
        else:
            lines.append(f"{url}\t{caption}")
    ctx.write_text(CC12M_TSV, "\n".join(lines))  # the real file has no final newline
    ctx.counts("conceptual_12m", rows=n, kept=n - 1)
    return {"paths": [CC12M_TSV], "options": {}}


def _redcaps(ctx: SampleContext) -> dict[str, Any]:
    rng = ctx.rng("redcaps")
    n = ctx.n(80, minimum=9)
    faults = dict(zip(_spots(rng, n, 2), ("500", "notimage")))
    per_sub: dict[str, list[dict[str, Any]]] = {s: [] for s in REDCAPS_SUBREDDITS}
    for i in range(n):
        sub = REDCAPS_SUBREDDITS[i % len(REDCAPS_SUBREDDITS)]
        scene = ctx.scene(rng)
        image_id = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(6))
        rel = f"images/redcaps/{image_id}{rng.getrandbits(20):05x}.jpg"
        url = ctx.fault(faults[i], rel, "red_caps", scene) if i in faults else ctx.serve_scene(rel, scene)
        raw = sc.redcaps_raw(scene, rng)
        slug = "_".join("".join(c for c in sc.redcaps_clean(raw) if c.isalnum() or c == " ").split()[:8])
        per_sub[sub].append({
            "image_id": image_id, "author": f"user{rng.randrange(1000, 99999)}", "url": url, "raw_caption": raw,
            "caption": sc.redcaps_clean(raw), "subreddit": sub, "score": rng.randrange(1, 500),
            "created_utc": 1546300800 + rng.randrange(0, 365 * 86400),
            "permalink": f"/r/{sub}/comments/{image_id}/{slug}/",
        })
    paths = []
    info = {"start_date": "2019-01-01", "end_date": "2019-12-31", "url": "https://redcaps.xyz", "version": 1.0}
    for sub in (*REDCAPS_SUBREDDITS, REDCAPS_EMPTY):
        rel = f"redcaps/annotations/{sub}_2019.json"
        ctx.write_text(rel, json.dumps({"info": info, "annotations": per_sub.get(sub, [])}))
        paths.append(rel)
    ctx.counts("red_caps", rows=n, kept=n)
    return {"paths": sorted(paths), "options": {"caption_field": "raw_caption"}}
