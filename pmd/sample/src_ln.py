"""Localized Narratives: the official captions-only JSON Lines files for four subsets.

Each line is ``{"dataset_id", "image_id" (a string), "annotator_id" (int), "caption"}``; PMD splits
each narrative into sentences. ADE20k uses the full ``*_localized_narratives.jsonl`` records instead
(plus ``timed_caption``, ``traces``, ``voice_recording``), so parsers meet both layouts. Images: LN-COCO from ``coco/train2017.zip`` (2017 names, some ids in
Karpathy val/test), Flickr30k from ``flickr30k-images.tar.gz``, ADE20k from
``ADEChallengeData2016.zip``, Open Images over HTTP through a URL template.
"""

from __future__ import annotations

import json
from typing import Any

from pmd.sample import scenes as sc
from pmd.sample.archives import write_tar_gz, write_zip
from pmd.sample.context import SampleContext
from pmd.sample.src_coco import KARPATHY, ZIP_2017, CocoImage

LN_DIR = "localized_narratives"
FLICKR_TAR = "flickr30k/flickr30k-images.tar.gz"
ADE_ZIP = "ade20k/ADEChallengeData2016.zip"
OI_DIR = "images/open-images-dataset"


def sentences(caption: str) -> list[str]:
    """PMD's split: on '.', strip, drop empty pieces, re-append '.'."""
    return [p.strip() + "." for p in caption.split(".") if p.strip()]


def _write_jsonl(ctx: SampleContext, source: str, rel: str, records: list[dict[str, Any]],
                 bad_at: int | None) -> int:
    """Write records (one JSON per line), with a truncated JSON line inserted at index ``bad_at``."""
    lines = [json.dumps(r) for r in records]
    if bad_at is not None:
        lines.insert(bad_at, json.dumps(records[bad_at])[:-25])
        ctx.malformed(source, rel, bad_at + 1, "bad_json")
    ctx.write_text(rel, "\n".join(lines) + "\n")
    return len(lines)


def _record(dataset_id: str, image_id: str, scene: sc.Scene, rng) -> dict[str, Any]:
    return {"dataset_id": dataset_id, "image_id": image_id, "annotator_id": rng.randrange(1, 180),
            "caption": sc.narrative(scene, rng)}


def _full_record(dataset_id: str, image_id: str, scene: sc.Scene, rng) -> dict[str, Any]:
    """A full ``*_localized_narratives.jsonl`` record: word timings, and mouse traces that really hover
    over the shapes the narrative names (coordinates normalised to [0, 1], as upstream)."""
    rec = _record(dataset_id, image_id, scene, rng)
    words, t = rec["caption"].split(), 0.5
    timed = []
    for w in words:
        timed.append({"utterance": w, "start_time": round(t, 2), "end_time": round(t + 0.35, 2)})
        t += 0.4
    traces = []
    for shape in scene.shapes:
        x, y, w, h = scene.box(shape)
        cx, cy = (x + w / 2) / scene.width, (y + h / 2) / scene.height
        pts = []
        for k in range(6):
            pts.append({"x": round(cx + (k % 3 - 1) * w / scene.width / 4, 4),
                        "y": round(cy + (k // 3 - 0.5) * h / scene.height / 4, 4), "t": round(0.5 + 0.1 * k, 3)})
        traces.append(pts)
    rec.update({"timed_caption": timed, "traces": traces,
                "voice_recording": f"ade20k_train/{image_id}_{rec['annotator_id']}.ogg"})
    return rec


def write_localized_narratives(ctx: SampleContext, coco_pool: list[CocoImage]) -> dict[str, dict[str, Any]]:
    return {
        "localized_narratives__coco": _coco(ctx, coco_pool),
        "localized_narratives__flickr30k": _flickr(ctx),
        "localized_narratives__ADE20k": _ade(ctx),
        "localized_narratives__openimages": _openimages(ctx),
    }


def _coco(ctx: SampleContext, pool: list[CocoImage]) -> dict[str, Any]:
    rng = ctx.rng("ln-coco")
    leaky = [im for im in pool if im.leaky]
    clean = [im for im in pool if not im.leaky]
    chosen = leaky[:max(2, len(leaky) // 2)] + rng.sample(clean, min(len(clean), ctx.n(26)))
    chosen.sort(key=lambda im: im.cocoid)
    records = [_record("mscoco_train2017", str(im.cocoid), im.scene, rng) for im in chosen]
    rel = f"{LN_DIR}/coco_train_captions.jsonl"
    rows = _write_jsonl(ctx, "localized_narratives__coco", rel, records, bad_at=rng.randrange(len(records)))
    kept = sum(len(sentences(r["caption"])) for r, im in zip(records, chosen) if not im.leaky)
    ctx.counts("localized_narratives__coco", rows=rows, kept=kept)
    ctx.expected["leakage"]["localized_narratives__coco"] = {
        "image_ids": [str(im.cocoid) for im in chosen if im.leaky],
        "sentences": sum(len(sentences(r["caption"])) for r, im in zip(records, chosen) if im.leaky)}
    return {"paths": [rel], "options": {"image_root": ZIP_2017, "image_template": "{folder}/{id12}.jpg",
                                        "karpathy": KARPATHY}}


def _flickr(ctx: SampleContext) -> dict[str, Any]:
    rng = ctx.rng("ln-flickr30k")
    n = ctx.n(30, minimum=3)
    ids = sorted(rng.sample(range(10**8, 10**10), n + 2))
    scenes = {i: ctx.scene(rng) for i in ids}
    annotated = ids[:n]  # the last two images in the tar have no narrative (skipped, as upstream)
    write_tar_gz(ctx.path(FLICKR_TAR), [(f"flickr30k-images/{i}.jpg", ctx.jpeg(s)) for i, s in scenes.items()])
    records = [_record("flickr30k_train", str(i), scenes[i], rng) for i in annotated]
    rel = f"{LN_DIR}/flickr30k_train_captions.jsonl"
    rows = _write_jsonl(ctx, "localized_narratives__flickr30k", rel, records, bad_at=None)
    ctx.counts("localized_narratives__flickr30k", rows=rows, kept=sum(len(sentences(r["caption"])) for r in records))
    return {"paths": [rel], "options": {"image_root": FLICKR_TAR, "image_template": "flickr30k-images/{image_id}.jpg"}}


def _ade(ctx: SampleContext) -> dict[str, Any]:
    rng = ctx.rng("ln-ade20k")
    n = ctx.n(30, minimum=3)
    ids = [f"ADE_train_{i:08d}" for i in sorted(rng.sample(range(1, 20211), n))]
    scenes = {i: ctx.scene(rng) for i in ids}
    write_zip(ctx.path(ADE_ZIP), [(f"ADEChallengeData2016/images/training/{i}.jpg", ctx.jpeg(s))
                                  for i, s in scenes.items()])
    records = [_full_record("ADE20k_train", i, scenes[i], rng) for i in ids]
    rel = f"{LN_DIR}/ade20k_train_localized_narratives.jsonl"  # full records, not the captions-only file
    bad_at = rng.randrange(len(records))
    rows = _write_jsonl(ctx, "localized_narratives__ADE20k", rel, records, bad_at=bad_at)
    ctx.counts("localized_narratives__ADE20k", rows=rows, kept=sum(len(sentences(r["caption"])) for r in records))
    return {"paths": [rel], "options": {"image_root": ADE_ZIP,
                                        "image_template": "ADEChallengeData2016/images/{folder}/{image_id}.jpg"}}


def _openimages(ctx: SampleContext) -> dict[str, Any]:
    rng = ctx.rng("ln-openimages")
    n = ctx.n(36, minimum=3)
    records, missing = [], None
    for k in range(n):
        image_id = f"{rng.getrandbits(64):016x}"
        scene = ctx.scene(rng)
        if k == n // 2:
            missing = ctx.url(f"{OI_DIR}/train/{image_id}.jpg")  # never written: the server answers 404
            ctx.expected["faults"]["404"].append(missing)
            ctx.expected["fault_rows"]["localized_narratives__openimages"] = 1
        else:
            ctx.serve_scene(f"{OI_DIR}/train/{image_id}.jpg", scene)
        records.append(_record("open_images_train_v6", image_id, scene, rng))
    rel = f"{LN_DIR}/open_images_train_v6_captions.jsonl"
    rows = _write_jsonl(ctx, "localized_narratives__openimages", rel, records, bad_at=None)
    ctx.counts("localized_narratives__openimages", rows=rows,
               kept=sum(len(sentences(r["caption"])) for r in records))
    return {"paths": [rel], "options": {"image_template": ctx.url(OI_DIR + "/{split}/{image_id}.jpg")}}
