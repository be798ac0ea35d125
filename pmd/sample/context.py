"""Shared state while the sample is generated: output directory, seeded RNGs, served images, planted facts."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from pmd.sample.scenes import Scene, jpeg_bytes, random_scene, render

FAULT_KINDS = ("404", "500", "slow", "truncated", "notimage", "noai")


class SampleContext:
    """Everything one source writer needs: where to write, a per-purpose RNG, and the ``expected`` book."""

    def __init__(self, out: Path, seed: int, base_url: str, scale: float) -> None:
        self.out, self.seed, self.scale = out, seed, scale
        self.base_url = base_url.rstrip("/")
        self._jpeg_cache: dict[tuple[Scene, int, int], bytes] = {}
        self.expected: dict[str, Any] = {
            "rows": {}, "kept_pairs": {}, "malformed": {}, "bad_urls": {}, "faults": {k: [] for k in FAULT_KINDS},
            "fault_rows": {}, "cross_source_duplicates": [], "same_image_bytes": [], "leakage": {},
        }

    def rng(self, purpose: str) -> random.Random:
        """An RNG seeded by (seed, purpose): adding a source never changes another source's data."""
        return random.Random(f"pmd-sample:{self.seed}:{purpose}")

    def n(self, base: int, minimum: int = 1) -> int:
        return max(minimum, round(base * self.scale))

    # ------------------------------------------------------------------ files
    def path(self, rel: str) -> Path:
        p = self.out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_bytes(self, rel: str, data: bytes) -> str:
        self.path(rel).write_bytes(data)
        return rel

    def write_text(self, rel: str, text: str, encoding: str = "utf-8") -> str:
        return self.write_bytes(rel, text.encode(encoding))

    def write_json(self, rel: str, obj: Any) -> str:
        return self.write_text(rel, json.dumps(obj, ensure_ascii=True))

    # ------------------------------------------------------------------ images
    def scene(self, rng: random.Random) -> Scene:
        return random_scene(rng)

    def jpeg(self, scene: Scene, width: int | None = None, height: int | None = None) -> bytes:
        key = (scene, width or scene.width, height or scene.height)
        data = self._jpeg_cache.get(key)
        if data is None:
            data = self._jpeg_cache[key] = jpeg_bytes(render(scene, width, height))
        return data

    def url(self, rel: str) -> str:
        return f"{self.base_url}/{rel}"

    def serve(self, rel: str, data: bytes) -> str:
        """Write ``data`` under ``out/rel`` (the server serves ``out``) and return its URL."""
        self.write_bytes(rel, data)
        return self.url(rel)

    def serve_scene(self, rel: str, scene: Scene, width: int | None = None, height: int | None = None) -> str:
        return self.serve(rel, self.jpeg(scene, width, height))

    def fault(self, kind: str, rel: str, source: str, scene: Scene | None = None) -> str:
        """A URL under ``/fault/<kind>/``; the image behind it is written too, so slow/noai/truncated have bytes."""
        if scene is not None:
            self.serve_scene(rel, scene)
        url = self.url(f"fault/{kind}/{rel}")
        self.expected["faults"][kind].append(url)
        self.expected["fault_rows"][source] = self.expected["fault_rows"].get(source, 0) + 1
        return url

    # ------------------------------------------------------------------ planted facts
    def malformed(self, source: str, file: str, line: int, kind: str) -> None:
        self.expected["malformed"].setdefault(source, []).append({"file": file, "line": line, "kind": kind})

    def bad_url(self, source: str, file: str, line: int, url: str) -> None:
        self.expected["bad_urls"].setdefault(source, []).append({"file": file, "line": line, "url": url})

    def same_bytes(self, urls: list[str], data: bytes) -> None:
        self.expected["same_image_bytes"].append({"urls": urls, "sha256": hashlib.sha256(data).hexdigest()})

    def counts(self, source: str, rows: int, kept: int) -> None:
        self.expected["rows"][source] = rows
        self.expected["kept_pairs"][source] = kept
