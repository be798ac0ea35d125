"""Small shards in the build layouts of docs/ARCHITECTURE.md, for tests and the loader benchmark when no
real build is at hand: pair shards (``{key}.jpg/.txt/.json`` + ``manifest.json``, through ``pmd.shard``'s writers) and interleaved document
shards (``{key}.json`` + ``{key}.NNN.jpg``). Deterministic for a seed; images are noisy gradients with
text-like structure so JPEG sizes resemble photos more than flat colours do."""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from pmd.shard import PAIRS_KIND, TarShardWriter, write_manifest, write_parquet_sidecar, write_tar_shard

WORDS = ("a cat sits on the mat near a red door while two dogs play in the green park under blue sky "
         "people walk along the river with bicycles and small boats drift past old stone bridges").split()


def jpeg_bytes(width: int, height: int, seed: int, quality: int = 90) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * (1 + seed % 3)) % 256, (y * 2) % 256, ((x + y) * (seed % 5 + 1)) % 256], axis=-1)
    noise = rng.integers(0, 64, size=(height, width, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def caption(rng: random.Random, n: int | None = None) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n or rng.randint(5, 16)))


def write_tar(path: Path, members: Sequence[tuple[str, bytes]]) -> Path:
    """A tar with ``members`` in the given order, any names (pmd's one tar writer, raw members)."""
    with TarShardWriter(path) as w:
        for name, data in members:
            w.add_member(name, data)
    return Path(path)


def pair_sample(key: str, text: str, image: bytes, source: str = "synthetic") -> dict[str, bytes]:
    """The members (``{ext: bytes}``) of one pair sample, as the pair build writes them."""
    meta = {"id": key, "source": source, "text": text, "image_key": key, "sha256": hashlib.sha256(image).hexdigest()}
    return {"jpg": image, "json": json.dumps(meta).encode(), "txt": text.encode()}


def pair_members(key: str, text: str, image: bytes, source: str = "synthetic") -> list[tuple[str, bytes]]:
    """``pair_sample`` as named tar members, for ``write_tar``."""
    return [(f"{key}.{ext}", data) for ext, data in pair_sample(key, text, image, source).items()]


def write_pair_build(
    out_dir: str | Path, *, shards: int = 4, per_shard: int = 8, image_px: int = 256, seed: int = 0, parquet: bool = True
) -> Path:
    """A pair build directory: ``manifest.json`` and ``shards/pairs-NNNNNN.tar`` (+ ``.parquet``)."""
    out = Path(out_dir)
    rng = random.Random(seed)
    infos: list[dict[str, Any]] = []
    for s in range(shards):
        samples: list[tuple[str, dict[str, bytes]]] = []
        rows = []
        for i in range(per_shard):
            n = s * per_shard + i
            key = hashlib.sha256(f"{seed}:{n}".encode()).hexdigest()[:16]
            w, h = (image_px * 4 // 3, image_px) if n % 2 else (image_px, image_px * 3 // 2)
            text = caption(rng)
            samples.append((key, pair_sample(key, text, jpeg_bytes(w, h, seed * 100003 + n))))
            rows.append({"key": key, "id": key, "source": "synthetic", "text": text, "width": w, "height": h,
                         "shard": f"pairs-{s:06d}"})
        info = write_tar_shard(out / "shards" / f"pairs-{s:06d}.tar", samples).to_dict()
        if parquet:
            info["parquet"] = str(write_parquet_sidecar(out / "shards" / f"pairs-{s:06d}.parquet", rows))
        infos.append(info)
    write_manifest(out, PAIRS_KIND, infos, {"synthetic": {"seed": seed, "image_px": image_px}}, [])
    return out


def doc_members(key: str, elements: Sequence[str | bytes], image_ext: str = "jpg") -> list[tuple[str, bytes]]:
    """An interleaved-build sample: ``elements`` are texts (str) or image bytes, in page order."""
    texts: list[str | None] = []
    images: list[str | None] = []
    blobs: list[tuple[str, bytes]] = []
    for el in elements:
        if isinstance(el, str):
            texts.append(el)
            images.append(None)
        else:
            member = f"{len(blobs):03d}.{image_ext}"
            texts.append(None)
            images.append(member)
            blobs.append((f"{key}.{member}", el))
    doc = {"id": key, "url": f"https://example.org/{key}", "texts": texts, "images": images,
           "metadata": [None] * len(texts), "general_metadata": {}}
    return [(f"{key}.json", json.dumps(doc).encode()), *blobs]
