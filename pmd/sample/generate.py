"""Generate the embedded sample: raw metadata of every PMD source in its real upstream format, the
rendered images (inside archives for local-image sources, under ``images/`` for URL sources), two WARC
files, and ``sample.json`` (written last, so its presence means the sample is complete).

``sample.json``::

    {"format_version": 1, "seed", "base_url", "scale",
     "sources": {pmd_source_name: {"paths": [metadata files], "options": {...}}},
     "karpathy": "coco/dataset_coco.json", "extras": {"coco_captions_2017": ...},
     "warc": ["warc/sample.warc.gz"], "expected": {...planted facts...}}

Paths (in ``paths``, ``warc`` and in options that name files) are relative to the directory holding
``sample.json``. ``paths`` lists only the metadata files a source parser reads; image archives and URL
templates are options, named as the parsers in ``pmd.sources`` name them (their option check is
strict). ``expected`` holds what was planted; ``expected["keys"]`` describes each entry.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from pmd.sample.context import SampleContext
from pmd.sample.src_coco import CAPTIONS_2017, KARPATHY, write_coco
from pmd.sample.src_ln import write_localized_narratives
from pmd.sample.src_vg import write_visual_genome
from pmd.sample.src_web import write_web_sources
from pmd.sample.src_wit import write_wit
from pmd.sample.src_yfcc import write_yfcc

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SOURCE_ORDER = ("coco", "sbu_captions", "localized_narratives__coco", "localized_narratives__flickr30k",
                "localized_narratives__ADE20k", "localized_narratives__openimages", "conceptual_captions",
                "visual_genome", "wit", "conceptual_12m", "red_caps", "yfcc100m")
# top-level entries this generator owns inside out_dir (removed before regenerating, nothing else is)
OWNED = ("sample.json", "coco", "sbu", "localized_narratives", "flickr30k", "ade20k", "cc3m", "cc12m",
         "visual_genome", "wit", "redcaps", "yfcc100m", "images", "warc")
DEFAULT_BASE_URL = "http://127.0.0.1:8765"

EXPECTED_KEYS = {
    "rows": "source -> raw records in its metadata files (lines, JSON items or regions), malformed included",
    "kept_pairs": "source -> pairs a faithful parser yields before download (LN: sentences; VG: regions; "
                  "filters and malformed lines applied; bad_urls excluded)",
    "malformed": "source -> [{file, line (1-based), kind}] for lines no parser can read",
    "bad_urls": "source -> [{file, line, url}] whose URL cannot be parsed (urlsplit raises)",
    "faults": "fault kind -> URLs that the ImageServer answers with that fault",
    "fault_rows": "source -> how many of its rows use a fault URL",
    "cross_source_duplicates": "[{url, caption, sources}] identical rows planted in two sources",
    "same_image_bytes": "[{urls, sha256}] distinct URLs serving identical JPEG bytes",
    "leakage": "Karpathy val/test cocoids, and the LN-COCO / VG images they remove",
    "wit": "per WIT data row: language, rule that picks the caption, expected text (None = dropped)",
    "yfcc": "per YFCC line: branch, chosen field, text under the reference rule, drop reason",
    "warc": "per WARC page: URL, images in page order, main paragraphs; damaged WARC facts",
}


def generate_sample(out_dir: str | os.PathLike, seed: int = 0, base_url: str = DEFAULT_BASE_URL,
                    scale: float = 1.0) -> Path:
    """Write the sample under ``out_dir`` and return the path of its ``sample.json``.

    Deterministic: the same ``seed``, ``base_url`` and ``scale`` give byte-identical files.
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    start = time.monotonic()
    ctx = SampleContext(out, seed, base_url, scale)
    sources: dict[str, Any] = {}
    coco, pool = write_coco(ctx)
    sources["coco"] = coco
    sources.update(write_localized_narratives(ctx, pool))
    sources["visual_genome"] = write_visual_genome(ctx, pool)
    sources.update(write_web_sources(ctx))
    sources["wit"] = write_wit(ctx)
    sources["yfcc100m"] = write_yfcc(ctx)

    try:
        import warcio  # noqa: F401 - the WARC writer; needed only here
    except ImportError as e:
        from pmd.errors import UserError

        raise UserError("the embedded sample's WARC is written with warcio, which is not installed: "
                        "pip install -c constraints.txt warcio") from e
    from pmd.sample.warc import write_warcs

    warcs = write_warcs(ctx)
    manifest = {
        "format_version": FORMAT_VERSION, "seed": seed, "base_url": ctx.base_url, "scale": scale,
        "sources": {name: sources[name] for name in SOURCE_ORDER},
        "karpathy": KARPATHY,
        "extras": {"coco_captions_2017": CAPTIONS_2017},
        "warc": warcs,
        "expected": {**ctx.expected, "keys": EXPECTED_KEYS},
    }
    path = out / "sample.json"
    tmp = out / "sample.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    log.info("sample written to %s in %.1fs: %d raw rows, %d pairs expected before download", out,
             time.monotonic() - start, sum(ctx.expected["rows"].values()), sum(ctx.expected["kept_pairs"].values()))
    return path


def ensure_sample(sample_dir: str | os.PathLike, seed: int = 0) -> int:
    """Generate the sample into ``sample_dir`` unless it is already there; return the port its URLs
    name. New samples name the canonical ``DEFAULT_BASE_URL`` whatever port serves them
    (``pmd.sample.server.serve_sample``), so two clean builds give identical URLs, keys and shards."""
    sdir = Path(sample_dir)
    meta_path = sdir / "sample.json"
    if not meta_path.exists():
        sdir.mkdir(parents=True, exist_ok=True)
        generate_sample(sdir, seed=seed, base_url=DEFAULT_BASE_URL)
    base_url = json.loads(meta_path.read_text(encoding="utf-8"))["base_url"]
    return int(base_url.rsplit(":", 1)[1].split("/")[0])


def load_sample(sample_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``sample.json`` (raises FileNotFoundError if the sample is missing or incomplete)."""
    return json.loads((Path(sample_dir) / "sample.json").read_text(encoding="utf-8"))
