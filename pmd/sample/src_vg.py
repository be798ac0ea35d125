"""Visual Genome: ``image_data.json`` + ``region_descriptions.json`` (v1.2, aligned by index), images in
``images.zip`` as ``VG_100K/{id}.jpg`` and also served over HTTP (the ``url`` field).

Every region box contains the shape(s) its phrase names, so crops are true to their phrases. Some
images carry a ``coco_id`` (the same scene as that COCO image), a few of them in Karpathy val/test.
"""

from __future__ import annotations

from typing import Any

from pmd.sample import scenes as sc
from pmd.sample.archives import write_zip
from pmd.sample.context import SampleContext
from pmd.sample.src_coco import KARPATHY, CocoImage

IMAGE_DATA = "visual_genome/image_data.json"
REGIONS = "visual_genome/region_descriptions.json"
IMAGES_ZIP = "visual_genome/images.zip"


def write_visual_genome(ctx: SampleContext, coco_pool: list[CocoImage]) -> dict[str, Any]:
    rng = ctx.rng("visual_genome")
    n = ctx.n(36, minimum=8)
    leaky = [im for im in coco_pool if im.leaky][:4]
    train = [im for im in coco_pool if not im.leaky][-4:]
    from_coco = leaky + train
    image_data, regions_all, members = [], [], []
    region_id, kept, leaky_ids, leaky_regions = 1000, 0, [], 0
    for k in range(n):
        image_id = k + 1
        coco = from_coco[k] if k < len(from_coco) else None
        scene = coco.scene if coco else ctx.scene(rng)
        data = ctx.jpeg(scene)
        members.append((f"VG_100K/{image_id}.jpg", data))
        url = ctx.serve(f"images/vg/VG_100K/{image_id}.jpg", data)
        image_data.append({"width": scene.width, "url": url, "height": scene.height, "image_id": image_id,
                           "coco_id": coco.cocoid if coco else None,
                           "flickr_id": rng.randrange(10**8, 10**10) if k % 3 == 0 else None})
        regions = []
        phrases = sc.region_phrases(scene, rng)
        phrases.append((f"{scene.background} background", ()))
        for phrase, shapes in phrases:
            x, y, w, h = scene.region(shapes) if shapes else (0, 0, scene.width, scene.height)
            regions.append({"region_id": region_id, "width": w, "height": h, "image_id": image_id,
                            "phrase": phrase + (" " if rng.random() < 0.1 else ""), "y": y, "x": x})
            region_id += 1
        regions_all.append({"regions": regions, "id": image_id})
        if coco and coco.leaky:
            leaky_ids.append(image_id)
            leaky_regions += len(regions)
        else:
            kept += len(regions)
    ctx.write_json(IMAGE_DATA, image_data)
    ctx.write_json(REGIONS, regions_all)
    write_zip(ctx.path(IMAGES_ZIP), members)
    ctx.counts("visual_genome", rows=sum(len(r["regions"]) for r in regions_all), kept=kept)
    ctx.expected["leakage"]["visual_genome"] = {"image_ids": leaky_ids, "regions": leaky_regions}
    return {"paths": [IMAGE_DATA, REGIONS],
            "options": {"image_root": IMAGES_ZIP, "karpathy": KARPATHY}}
