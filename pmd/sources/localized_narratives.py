"""Localized Narratives: ``*_localized_narratives*.jsonl`` / ``*_captions.jsonl`` records
(``dataset_id``, ``image_id`` (a string), ``annotator_id``, ``caption``, ...), four PMD sources.

Each narrative is split into sentences as PMD's ``*_captions_multi.jsonl`` did: ``split('.')``,
pieces stripped, empty ones dropped, ``'.'`` re-appended; the full narrative is kept in
``meta['original_caption']``. Rows that already carry ``original_caption`` (a ``_multi`` file) are
one sentence each and are not split again. One line therefore yields one outcome per sentence.

Images: ``image_template`` (placeholders ``{image_id}``, ``{id12}`` = zero-padded to 12, ``{split}``,
``{folder}``) formats a URL (``scheme://...``) or a path, joined under ``image_root`` when given.
LN-COCO drops images in Karpathy val/test (option ``karpathy`` = path of ``dataset_coco.json``).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Iterator, Mapping

from pmd.sources.base import InputUnit, ParseResult, Source, image_from, iter_line_blocks, join_image_root
from pmd.sources.karpathy import eval_coco_ids
from pmd.verdict import Dropped, Failure

log = logging.getLogger(__name__)

#: fields never copied into meta: the mouse traces and word timings are large and not captions.
DEFAULT_DROP_FIELDS = ("traces", "timed_caption")


def split_sentences(narrative: str) -> list[str]:
    """PMD's sentence split: on '.', stripped, empty pieces dropped, '.' re-added."""
    return [p.strip() + "." for p in narrative.split(".") if p.strip()]


def _split_name(dataset_id: str, path: str) -> str:
    """``train`` / ``validation`` / ``test`` from the dataset id (or else the file name)."""
    for text in (dataset_id.lower(), path.rsplit("/", 1)[-1].lower()):
        if "train" in text:
            return "train"
        if "val" in text:
            return "validation"
        if "test" in text:
            return "test"
    return "train"


class LocalizedNarratives(Source):
    splittable = True
    file_pattern = "*.jsonl*"
    paper_row = "Localized Narratives"
    subset = ""
    default_template = ""
    #: folder names of each split (``{folder}``)
    folders: Mapping[str, str] = {"train": "train", "validation": "validation", "test": "test"}

    @property
    def defaults(self) -> Mapping[str, Any]:  # type: ignore[override]
        return {"image_template": self.default_template, "image_root": None, "karpathy": None,
                "split": None, "drop_fields": DEFAULT_DROP_FIELDS}

    def image_for(self, image_id: str, split: str, opts: Mapping[str, Any]):
        loc = opts["image_template"].format(image_id=image_id, id12=image_id.zfill(12), split=split,
                                            folder=self.folders.get(split, split))
        if "://" in loc:
            return image_from(loc)
        return image_from(join_image_root(opts["image_root"], loc))

    def excluded_ids(self, opts: Mapping[str, Any]) -> frozenset[str]:
        return frozenset()

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        opts = self.resolve_options(options)
        path = unit.path
        drop_fields = set(opts["drop_fields"]) | {"caption"}
        excluded = self.excluded_ids(opts)
        for first, lines in iter_line_blocks(unit):
            for i, line in enumerate(lines):
                ln = first + i
                if not line.strip():
                    yield Failure("empty_line", "blank line", path, ln)
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    yield Failure("bad_json", str(e)[:300], path, ln, line)
                    continue
                if not isinstance(row, dict) or not isinstance(row.get("caption"), str) or "image_id" not in row:
                    yield Failure("bad_record", "expected an object with image_id and caption", path, ln, line)
                    continue
                image_id = str(row["image_id"])
                if "original_caption" in row:
                    sentences = [row["caption"].strip()]
                else:
                    sentences = split_sentences(row["caption"])
                if not sentences:
                    yield Dropped("empty_caption", path, ln)
                    continue
                if image_id in excluded:
                    for _ in sentences:
                        yield Dropped("karpathy_eval_leak", path, ln, image_id)
                    continue
                split = opts["split"] or _split_name(str(row.get("dataset_id", "")), path)
                try:
                    image = self.image_for(image_id, split, opts)
                except (KeyError, IndexError, ValueError) as e:
                    yield Failure("bad_image_template", str(e), path, ln)
                    continue
                meta = {k: v for k, v in row.items() if k not in drop_fields}
                meta.setdefault("original_caption", row["caption"])
                for s in sentences:
                    yield self.make_pair(s, image, dict(meta), path, ln)


class LNOpenImages(LocalizedNarratives):
    name = "localized_narratives__openimages"
    description = "Localized Narratives, Open Images subset (image URL per split)"
    default_template = "https://s3.amazonaws.com/open-images-dataset/{split}/{image_id}.jpg"


class LNCoco(LocalizedNarratives):
    name = "localized_narratives__coco"
    description = "Localized Narratives, COCO subset (2017 file names; Karpathy val/test dropped)"
    default_template = "http://images.cocodataset.org/{folder}/{id12}.jpg"
    folders = {"train": "train2017", "validation": "val2017", "test": "test2017"}

    def excluded_ids(self, opts: Mapping[str, Any]) -> frozenset[str]:
        if not opts["karpathy"]:
            log.warning("%s: no 'karpathy' option (dataset_coco.json): Karpathy val/test images are NOT removed",
                        self.name)
            return frozenset()
        return frozenset(str(i) for i in eval_coco_ids(opts["karpathy"]))


class LNFlickr30k(LocalizedNarratives):
    name = "localized_narratives__flickr30k"
    description = "Localized Narratives, Flickr30k subset (images from flickr30k-images)"
    default_template = "flickr30k-images/{image_id}.jpg"


class LNADE20k(LocalizedNarratives):
    name = "localized_narratives__ADE20k"
    description = "Localized Narratives, ADE20k subset (ADEChallengeData2016 images)"
    default_template = "ADEChallengeData2016/images/{folder}/{image_id}.jpg"
    folders = {"train": "training", "validation": "validation", "test": "testing"}


LN_SUBSETS = (LNCoco(), LNFlickr30k(), LNADE20k(), LNOpenImages())
