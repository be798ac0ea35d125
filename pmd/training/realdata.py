"""Real photos → a build the trainer validates on: Flickr8k and COCO 2017 folders.

Captions are parsed by the registered sources (``pmd.sources``: ``flickr8k``, ``coco``), so the
same parsing rules apply as in ``pmd build``; images are read from the local folders, resized to a
256 px short side (JPEG q90, as the build stores them) and written with ``data.write_build``.
Every record is accounted for in the returned counts (kept / dropped / failed by reason).
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from PIL import Image

from pmd.errors import UserError
from pmd.ids import stable_id
from pmd.records import PairRecord
from pmd.training.data import write_build
from pmd.verdict import Dropped, Failure

log = logging.getLogger(__name__)


def _records(name: str, paths: list[str], options: dict[str, Any]) -> Iterator[object]:
    from pmd.sources.registry import get_source

    src = get_source(name)
    for unit in src.units(paths, options):
        yield from src.parse(unit, options)


def resized_jpeg(path: str | Path, short_side: int = 256, quality: int = 90) -> tuple[bytes, int, int, int, int]:
    """(JPEG bytes, width, height, original width, original height)."""
    with Image.open(path) as im:
        ow, oh = im.size
        im.draft("RGB", (short_side, short_side))
        im = im.convert("RGB")
        s = short_side / min(im.size)
        if s < 1:
            im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=quality)
        return buf.getvalue(), im.width, im.height, ow, oh


def folders_to_build(out: str | Path, flickr8k: str | Path | None = None, coco: str | Path | None = None,
                     shard_size: int = 200) -> dict[str, Any]:
    """Write a PMD build of the pairs in a Flickr8k folder and/or a COCO 2017 folder; returns counts."""
    jobs: list[tuple[str, list[str], dict[str, Any]]] = []
    if flickr8k:
        root = Path(flickr8k)
        token = root / "Flickr8k.token.txt"
        if not token.is_file():
            raise UserError(f"{root}: no Flickr8k.token.txt")
        images = next((root / n for n in ("Images", "images", "Flicker8k_Dataset") if (root / n).is_dir()), root)
        jobs.append(("flickr8k", [str(token)], {"image_root": str(images)}))
    if coco:
        root = Path(coco)
        anns = sorted(str(p) for p in (root / "annotations").glob("captions_*2017.json"))
        if not anns:
            raise UserError(f"{root}: no annotations/captions_*2017.json")
        jobs.append(("coco", anns, {"image_root": str(root)}))
    counts: Counter[str] = Counter()
    cache: dict[str, tuple[bytes, int, int, int, int]] = {}

    def samples() -> Iterator[dict[str, Any]]:
        for name, paths, options in jobs:
            for rec in _records(name, paths, options):
                if isinstance(rec, Dropped):
                    counts[f"{name}/dropped/{rec.reason}"] += 1
                    continue
                if isinstance(rec, Failure):
                    counts[f"{name}/failed/{rec.error}"] += 1
                    continue
                assert isinstance(rec, PairRecord)
                path = rec.image.path
                if not path or "::" in path or not Path(path).is_file():
                    counts[f"{name}/dropped/image_missing"] += 1
                    continue
                try:
                    if path not in cache:
                        cache[path] = resized_jpeg(path)
                except OSError as exc:
                    counts[f"{name}/failed/image_unreadable"] += 1
                    log.warning("%s: %s", path, exc)
                    continue
                jpg, w, h, ow, oh = cache[path]
                counts[f"{name}/kept"] += 1
                key = stable_id(name, rec.input_file, rec.input_line, rec.text)
                yield {"key": key, "jpg": jpg, "text": rec.text, "id": key, "source": name, "image_path": path,
                       "width": w, "height": h, "original_width": ow, "original_height": oh}

    write_build(out, samples(), shard_size, config={"made_by": "pmd train --images-to-build"})
    return {"out": str(out), "counts": dict(sorted(counts.items())), "images": len(cache)}
