"""Flickr8k (extra, not a PMD source): ``Flickr8k.token.txt`` lines ``<image>.jpg#<n><TAB>caption``;
images from a local directory (option ``image_root``, default: ``Images`` beside the token file if it
exists, else ``images``). Used to validate the trainer on real photos.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping

from pmd.records import ImageRef, PairRecord
from pmd.sources.base import InputUnit, ParseResult, Source, iter_line_blocks, join_image_root
from pmd.text.normalize import clean_caption
from pmd.verdict import Dropped, Failure


def default_image_root(token_file: str) -> str:
    here = os.path.dirname(os.path.abspath(token_file))
    for name in ("Images", "images", "Flicker8k_Dataset", "Flickr8k_Dataset"):
        if os.path.isdir(os.path.join(here, name)):
            return os.path.join(here, name)
    return os.path.join(here, "images")


class Flickr8k(Source):
    name = "flickr8k"
    splittable = True
    file_pattern = "*.token.txt"
    description = "Flickr8k (extra, not PMD): Flickr8k.token.txt, images from a local directory"
    defaults: Mapping[str, Any] = {"image_root": None}

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        opts = self.resolve_options(options)
        path = unit.path
        root = opts["image_root"] or default_image_root(path)
        for first, lines in iter_line_blocks(unit):
            for i, line in enumerate(lines):
                ln = first + i
                cols = line.split("\t")
                if len(cols) != 2:
                    err = "empty_line" if not line.strip() else "wrong_column_count"
                    yield Failure(err, f"expected 'image#n<TAB>caption', got {len(cols)} columns", path, ln, line)
                    continue
                key, caption = cols
                image_name, sep, idx = key.strip().rpartition("#")
                if not sep or not image_name or not idx.isdigit():
                    yield Failure("bad_record", f"bad image key {key[:100]!r}", path, ln, line)
                    continue
                text = clean_caption(caption)
                if not text:
                    yield Dropped("empty_caption", path, ln)
                    continue
                image = ImageRef(path=join_image_root(root, image_name))
                yield PairRecord(self.name, text, image, {"image": image_name, "caption_index": int(idx)},
                                 input_file=path, input_line=ln)
