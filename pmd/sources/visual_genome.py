"""Visual Genome region descriptions: ``region_descriptions.json`` aligned by index with
``image_data.json``; every region is one pair: its ``phrase`` and the crop ``(x, y, width, height)``
of its image (``ImageRef.crop``), as PMD (m4) cropped regions.

Images whose ``coco_id`` is in Karpathy val/test are dropped (``karpathy_eval_leak``; option
``karpathy``). Image = ``{image_root}/{VG_100K or VG_100K_2}/{id}.jpg`` when ``image_root`` (a
directory or ``images.zip``) is given — the folder is the one the image's ``url`` names — else ``url``.
``input_line`` is the 1-based position of the image in the two lists.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterator, Mapping, Sequence

from pmd.errors import UserError
from pmd.records import Crop
from pmd.sources.base import (DEFAULT_TARGET_BYTES, InputUnit, ParseResult, Source, expand_paths, image_from,
                              is_valid_url, join_image_root, json_failure, load_json)
from pmd.sources.karpathy import eval_coco_ids
from pmd.verdict import Dropped, Failure

log = logging.getLogger(__name__)


class VisualGenome(Source):
    name = "visual_genome"
    paper_row = "Visual Genome"
    paper_pairs_m, paper_avg_words = 5.4, 5.1
    file_pattern = "*.json"
    description = "Visual Genome region descriptions (region crops + phrases; Karpathy val/test dropped)"
    defaults: Mapping[str, Any] = {"image_root": None, "karpathy": None}

    def units(self, paths: Sequence[str], options: Mapping[str, Any] | None = None,
              target_bytes: int = DEFAULT_TARGET_BYTES) -> list[InputUnit]:
        """One unit per (region_descriptions, image_data) pair, matched by folder."""
        self.resolve_options(options)
        files = expand_paths(paths, self.file_pattern)
        regions = [p for p in files if "region_descriptions" in os.path.basename(p)]
        metas = [p for p in files if "image_data" in os.path.basename(p)]
        if not regions:
            raise UserError("visual_genome needs region_descriptions.json (and image_data.json)")
        units = []
        for r in regions:
            same_dir = [m for m in metas if os.path.dirname(m) == os.path.dirname(r)]
            cand = same_dir or metas
            if len(cand) != 1:
                raise UserError(f"visual_genome: cannot match {r} with one image_data.json (found {cand})")
            units.append(InputUnit(self.name, (r, cand[0])))
        return units

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        opts = self.resolve_options(options)
        if len(unit.paths) != 2:
            raise UserError("a visual_genome unit is (region_descriptions.json, image_data.json)")
        reg_path, img_path = unit.paths
        loaded = []
        for p in (reg_path, img_path):
            try:
                loaded.append(load_json(p))
            except ValueError as e:
                yield json_failure(p, e)
                return
        regions, images = loaded
        if not isinstance(regions, list) or not isinstance(images, list):
            yield Failure("bad_layout", "both files must hold a JSON list", reg_path, 1)
            return
        if opts["karpathy"]:
            excluded = eval_coco_ids(opts["karpathy"])
        else:
            log.warning("visual_genome: no 'karpathy' option: Karpathy val/test COCO images are NOT removed")
            excluded = frozenset()
        by_id = {im.get("image_id"): im for im in images if isinstance(im, dict)}
        for i, item in enumerate(regions):
            ln = i + 1
            if not isinstance(item, dict) or not isinstance(item.get("regions"), list):
                yield Failure("bad_record", "expected {id, regions: [...]}", reg_path, ln)
                continue
            image_id = item.get("id", item.get("image_id"))
            im = images[i] if i < len(images) and isinstance(images[i], dict) else None
            if im is None or im.get("image_id") != image_id:
                im = by_id.get(image_id)  # lists should be aligned; fall back to the id
            if im is None:
                yield Failure("unknown_image", f"image {image_id} is not in image_data.json", reg_path, ln)
                continue
            n = len(item["regions"])
            try:
                coco_id = None if im.get("coco_id") is None else int(im["coco_id"])
            except (TypeError, ValueError):
                yield Failure("bad_record", f"image {image_id}: coco_id {im.get('coco_id')!r} is not an integer",
                              reg_path, ln)
                continue
            if coco_id is not None and coco_id in excluded:
                for _ in range(n):
                    yield Dropped("karpathy_eval_leak", reg_path, ln, f"coco_id={im['coco_id']}")
                continue
            url = im.get("url") or ""
            if opts["image_root"]:
                folder = url.rstrip("/").split("/")[-2] if url.count("/") >= 3 else "VG_100K"
                location = join_image_root(opts["image_root"], f"{folder}/{image_id}.jpg")
            elif is_valid_url(url):
                location = url
            else:
                for _ in range(n):
                    yield Failure("bad_url", f"image {image_id} has no usable url", reg_path, ln)
                continue
            image_meta = {f"image_{k}" if k in ("width", "height", "url") else k: v for k, v in im.items()}
            for reg in item["regions"]:
                try:
                    crop = Crop(int(reg["x"]), int(reg["y"]), int(reg["width"]), int(reg["height"]))
                except (KeyError, TypeError, ValueError) as e:
                    yield Failure("bad_region", f"region {reg.get('region_id') if isinstance(reg, dict) else '?'}: "
                                  f"{type(e).__name__}: {e}", reg_path, ln)
                    continue
                meta = {**image_meta, **{k: v for k, v in reg.items() if k not in ("phrase", "x", "y", "width",
                                                                                  "height", "image_id")}}
                yield self.make_pair(reg.get("phrase"), image_from(location, crop), meta, reg_path, ln)
