"""COCO: Karpathy ``dataset_coco.json`` with images in ``train2014.zip``/``val2014.zip`` (2014 names),
the official ``annotations/captions_train2017.json``, and ``train2017.zip`` (2017 names) for LN-COCO.

The same scenes are reused by LN-COCO and Visual Genome (``coco_id``), so their Karpathy val/test
images exercise the leakage filter. Karpathy restval/val/test images come from val2014, as upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pmd.sample import scenes as sc
from pmd.sample.archives import write_zip
from pmd.sample.context import SampleContext

KARPATHY = "coco/dataset_coco.json"
ZIP_2014 = {"train2014": "coco/train2014.zip", "val2014": "coco/val2014.zip"}
ZIP_2017 = "coco/train2017.zip"
CAPTIONS_2017 = "coco/annotations/captions_train2017.json"
LICENSES = [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1,
             "name": "Attribution-NonCommercial-ShareAlike License"},
            {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"}]


@dataclass(frozen=True)
class CocoImage:
    cocoid: int
    split: str  # Karpathy split: train | restval | val | test
    scene: sc.Scene
    captions: tuple[str, ...]

    @property
    def folder(self) -> str:
        return "train2014" if self.split == "train" else "val2014"

    @property
    def filename(self) -> str:
        return f"COCO_{self.folder}_{self.cocoid:012d}.jpg"

    @property
    def leaky(self) -> bool:
        return self.split in ("val", "test")


def write_coco(ctx: SampleContext) -> tuple[dict[str, Any], list[CocoImage]]:
    rng = ctx.rng("coco")
    n = ctx.n(48, minimum=12)
    n_small = max(2, n // 8)
    splits = ["val"] * n_small + ["test"] * n_small + ["restval"] * n_small
    splits += ["train"] * (n - len(splits))
    rng.shuffle(splits)
    ids = sorted(rng.sample(range(1, 581930), n))
    pool = []
    for cocoid, split in zip(ids, splits):
        scene = ctx.scene(rng)
        pool.append(CocoImage(cocoid, split, scene, tuple(sc.coco_captions(scene, rng))))

    images, sentid, members = [], 700000, {k: [] for k in ZIP_2014}
    for imgid, im in enumerate(pool):
        sentences = []
        for cap in im.captions:
            sentences.append({"tokens": sc.coco_tokens(cap), "raw": cap, "imgid": imgid, "sentid": sentid})
            sentid += 1
        images.append({"filepath": im.folder, "sentids": [s["sentid"] for s in sentences], "filename": im.filename,
                       "imgid": imgid, "split": im.split, "sentences": sentences, "cocoid": im.cocoid})
        members[im.folder].append((f"{im.folder}/{im.filename}", ctx.jpeg(im.scene)))
    ctx.write_json(KARPATHY, {"images": images, "dataset": "coco"})
    for folder, rel in ZIP_2014.items():
        write_zip(ctx.path(rel), members[folder])
    write_zip(ctx.path(ZIP_2017), [(f"train2017/{im.cocoid:012d}.jpg", ctx.jpeg(im.scene)) for im in pool])
    _captions_2017(ctx, pool, rng)

    kept = sum(len(im.captions) for im in pool if im.split in ("train", "restval"))
    ctx.counts("coco", rows=sum(len(im.captions) for im in pool), kept=kept)
    ctx.expected["leakage"]["karpathy_val_test_cocoids"] = sorted(im.cocoid for im in pool if im.leaky)
    spec = {"paths": [KARPATHY],
            "options": {"image_root": "coco", "image_template": "{folder}.zip::{folder}/{filename}",
                        "splits": ["train", "restval"]}}
    return spec, pool


def _captions_2017(ctx: SampleContext, pool: list[CocoImage], rng) -> None:
    images, annotations, ann_id = [], [], 100000
    for im in pool:
        name = f"{im.cocoid:012d}.jpg"
        images.append({"license": rng.choice((1, 4)), "file_name": name,
                       "coco_url": f"http://images.cocodataset.org/train2017/{name}",
                       "height": im.scene.height, "width": im.scene.width,
                       "date_captured": f"2013-11-{10 + im.cocoid % 18} 1{im.cocoid % 10}:18:45",
                       "flickr_url": f"http://farm{1 + im.cocoid % 9}.staticflickr.com/8186/{im.cocoid}_4e622c8349_z.jpg",
                       "id": im.cocoid})
        for cap in im.captions:
            annotations.append({"image_id": im.cocoid, "id": ann_id, "caption": cap})
            ann_id += 1
    info = {"description": "COCO 2017 Dataset", "url": "http://cocodataset.org", "version": "1.0", "year": 2017,
            "contributor": "COCO Consortium", "date_created": "2017/09/01"}
    ctx.write_json(CAPTIONS_2017, {"info": info, "licenses": LICENSES, "images": images, "annotations": annotations})
