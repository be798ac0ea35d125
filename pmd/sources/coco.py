"""COCO captions, in PMD's layout (Karpathy ``dataset_coco.json``) or the official one.

* Karpathy: one pair per ``sentences[].raw``; PMD's train set is Karpathy ``train`` + ``restval``
  (option ``splits``); other images' captions are dropped as ``not_train_split``. Images are the
  2014 files (``train2014/COCO_train2014_....jpg``): ``{image_root}/{folder}/{filename}`` when
  ``image_root`` is given (a directory, or ``X.zip`` for an archive), else the COCO image server.
* Official ``captions_{train,val}2017.json``: one pair per annotation; image ``file_name`` under
  ``image_root`` (inside its ``train2017``/``val2017`` folder when that folder exists), else ``coco_url``.

``input_line`` is the 1-based position of the image (Karpathy) or annotation (official) in its list.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator, Mapping

from pmd.sources.base import InputUnit, ParseResult, Source, image_from, join_image_root, json_failure, load_json
from pmd.verdict import Dropped, Failure

COCO_IMAGE_SERVER = "http://images.cocodataset.org"
_FOLDER = re.compile(r"(train|val|test)(2014|2015|2017)")


class Coco(Source):
    name = "coco"
    paper_row = "COCO"
    paper_pairs_m, paper_avg_words = 0.9, 12.4
    file_pattern = "*.json"
    description = "COCO captions (Karpathy dataset_coco.json, train+restval; or captions_*2017.json)"
    defaults: Mapping[str, Any] = {
        "splits": ("train", "restval"),
        "image_root": None,
        "image_template": "{folder}/{filename}",
    }

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        opts = self.resolve_options(options)
        path = unit.path
        try:
            data = load_json(path)
        except ValueError as e:
            yield json_failure(path, e)
            return
        if isinstance(data, dict) and isinstance(data.get("images"), list) and "annotations" in data:
            yield from self._official(data, path, opts)
        elif isinstance(data, dict) and isinstance(data.get("images"), list):
            yield from self._karpathy(data, path, opts)
        else:
            yield Failure("bad_layout", "neither a Karpathy dataset_coco.json nor a COCO captions file", path, 1)

    def _image(self, folder: str, filename: str, fallback_url: str | None, opts: Mapping[str, Any]):
        root = opts["image_root"]
        if root:
            rel = opts["image_template"].format(folder=folder, filepath=folder, filename=filename,
                                                file_name=filename)
            if folder and rel.startswith(folder + "/") and os.path.isdir(root) and \
                    not os.path.isdir(os.path.join(root, folder)):
                rel = rel[len(folder) + 1:]  # a flat image directory
            return image_from(join_image_root(root, rel))
        return image_from(fallback_url or f"{COCO_IMAGE_SERVER}/{folder}/{filename}")

    def _karpathy(self, data: dict, path: str, opts: Mapping[str, Any]) -> Iterator[ParseResult]:
        splits = set(opts["splits"])
        for i, im in enumerate(data["images"]):
            ln = i + 1
            try:
                sentences = im["sentences"]
                split, folder, filename = im["split"], im["filepath"], im["filename"]
                if not isinstance(sentences, list):
                    raise TypeError("sentences is not a list")
            except (KeyError, TypeError) as e:
                yield Failure("bad_record", f"image entry lacks {e}", path, ln)
                continue
            if split not in splits:
                for _ in sentences:
                    yield Dropped("not_train_split", path, ln, split)
                continue
            try:
                image = self._image(folder, filename, None, opts)
            except (KeyError, IndexError, ValueError) as e:
                yield Failure("bad_image_template", f"{type(e).__name__}: {e}", path, ln)
                continue
            base = {k: v for k, v in im.items() if k not in ("sentences", "sentids")}
            for s in sentences:
                if not isinstance(s, dict):
                    yield Failure("bad_record", "sentence is not an object", path, ln)
                    continue
                meta = {**base, **{k: v for k, v in s.items() if k not in ("raw", "imgid")}}
                yield self.make_pair(s.get("raw"), image, meta, path, ln)

    def _official(self, data: dict, path: str, opts: Mapping[str, Any]) -> Iterator[ParseResult]:
        m = _FOLDER.search(os.path.basename(path))
        file_folder = m.group(0) if m else ""
        images: dict[Any, dict] = {}
        for im in data["images"]:
            if isinstance(im, dict) and "id" in im:
                images[im["id"]] = im
        annotations = data.get("annotations")
        if not isinstance(annotations, list):
            yield Failure("bad_layout", "'annotations' is not a list", path, 1)
            return
        for i, ann in enumerate(annotations):
            ln = i + 1
            if not isinstance(ann, dict) or "image_id" not in ann:
                yield Failure("bad_record", "annotation lacks image_id", path, ln)
                continue
            im = images.get(ann["image_id"])
            if im is None or "file_name" not in im:
                yield Failure("unknown_image", f"image_id {ann['image_id']} is not in 'images'", path, ln)
                continue
            coco_url = im.get("coco_url")
            folder = file_folder
            if isinstance(coco_url, str):
                um = _FOLDER.search(coco_url)
                folder = um.group(0) if um else folder
            try:
                image = self._image(folder, im["file_name"], coco_url, opts)
            except (KeyError, IndexError, ValueError) as e:
                yield Failure("bad_image_template", f"{type(e).__name__}: {e}", path, ln)
                continue
            meta = {**{k: v for k, v in im.items() if k != "id"},
                    **{k: v for k, v in ann.items() if k != "caption"}}
            yield self.make_pair(ann.get("caption"), image, meta, path, ln)
