"""A local image-caption folder as a build input (extra, not a PMD source): ``image_folder``.

Give ``pmd build --config`` the folders themselves; each is recognised by its layout and parsed by the
registered parser of that dataset, with images read from the folder (local paths: the build's local-image
path, no network):

* Flickr8k layout: ``Flickr8k.token.txt`` (``<image>.jpg#<n><TAB>caption``) + ``images/`` (or ``Images/``,
  ``Flicker8k_Dataset/``) — parsed by the ``flickr8k`` source;
* COCO layout: ``annotations/captions_*.json`` (official 2014/2017 files, or Karpathy ``dataset_coco.json``)
  + the image folders (``train2017/``, ``val2017/``, or flat) — parsed by the ``coco`` source.

Records keep ``source: image_folder`` (so the build's per-source counts reconcile) and name the layout in
``meta["dataset"]``. Example::

    sources:
      image_folder:
        paths: [/data/flickr8k, /data/coco2017]
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator, Mapping, Sequence

from pmd.errors import UserError
from pmd.records import PairRecord
from pmd.sources.base import DEFAULT_TARGET_BYTES, InputUnit, ParseResult, Source, expand_paths, is_local


def folder_layout(folder: str) -> list[tuple[str, str, str]]:
    """``(dataset, caption file, image root)`` for every caption file of a Flickr8k or COCO folder."""
    if not os.path.isdir(folder):
        raise UserError(f"image_folder: {folder} is not a directory")
    found: list[tuple[str, str, str]] = []
    for token in sorted(f for f in os.listdir(folder) if f.endswith(".token.txt")):
        from pmd.sources.flickr8k import default_image_root

        path = os.path.join(folder, token)
        found.append(("flickr8k", path, default_image_root(path)))
    ann = os.path.join(folder, "annotations")
    if os.path.isdir(ann):
        for name in sorted(os.listdir(ann)):
            if name.endswith(".json") and (name.startswith("captions_") or name == "dataset_coco.json"):
                found.append(("coco", os.path.join(ann, name), folder))
    if not found:
        raise UserError(f"image_folder: {folder} has neither a Flickr8k layout (*.token.txt + images/) nor a "
                        f"COCO layout (annotations/captions_*.json + image folders)")
    return found


class ImageFolder(Source):
    name = "image_folder"
    splittable = False
    description = "a local Flickr8k- or COCO-layout folder (extra, not PMD): captions + local image files"
    defaults: Mapping[str, Any] = {}

    def units(self, paths: Sequence[str], options: Mapping[str, Any] | None = None,
              target_bytes: int = DEFAULT_TARGET_BYTES) -> list[InputUnit]:
        """One unit per caption file, as ``(caption file, dataset, image root)``."""
        self.resolve_options(options)
        units: list[InputUnit] = []
        for p in paths:
            p = str(p)
            if not is_local(p):
                raise UserError(f"image_folder: {p}: only local folders (images are read from disk)")
            for folder in expand_paths([p], "*") if any(c in p for c in "*?[") else [p]:
                for dataset, caption_file, root in folder_layout(folder):
                    units.append(InputUnit(self.name, (caption_file, dataset, root)))
        return units

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        from pmd.sources.registry import get_source

        self.resolve_options(options)
        caption_file, dataset, root = unit.paths
        inner = get_source(dataset)
        opts = {"image_root": root}
        for inner_unit in inner.units([caption_file], opts):
            for item in inner.parse(inner_unit, opts):
                if isinstance(item, PairRecord):
                    item = dataclasses.replace(item, source=self.name, meta={**item.meta, "dataset": dataset})
                yield item
