"""The embedded sample build does not depend on the port its image server got (issue 15, item 5).

Its URLs name the canonical ``http://127.0.0.1:8765`` (``pmd.sample.generate.DEFAULT_BASE_URL``);
the server binds a free port and the download workers' connections to the canonical authority
reach it through ``pmd.loopback``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from pmd import loopback
from pmd.sample.generate import DEFAULT_BASE_URL, ensure_sample
from pmd.sample.server import ImageServer, free_port, serve_sample


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_clean_samples_name_the_canonical_authority_and_are_identical(tmp_path):
    assert ensure_sample(tmp_path / "a") == ensure_sample(tmp_path / "b") == 8765
    meta = json.loads((tmp_path / "a" / "sample.json").read_text())
    assert meta["base_url"] == DEFAULT_BASE_URL
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_mapping_text_round_trip_and_refusals(monkeypatch):
    monkeypatch.delenv(loopback.ENV, raising=False)
    assert loopback.remap(("127.0.0.1", 8765)) == ("127.0.0.1", 8765)
    with loopback.published(("127.0.0.1", 8765), ("127.0.0.1", 40001)):
        with loopback.published(("localhost", 9000), ("::1", 40002)):
            text = loopback.current_text()
            assert loopback.parse(text) == {("127.0.0.1", 8765): ("127.0.0.1", 40001),
                                            ("localhost", 9000): ("::1", 40002)}
            assert loopback.remap(("127.0.0.1", 8765)) == ("127.0.0.1", 40001)
            assert loopback.remap(("LOCALHOST", 9000, 0, 0)) == ("::1", 40002, 0, 0)
            assert loopback.remap(("127.0.0.1", 8766)) == ("127.0.0.1", 8766)
        assert loopback.parse(loopback.current_text()) == {("127.0.0.1", 8765): ("127.0.0.1", 40001)}
    assert loopback.ENV not in os.environ
    for bad in ("example.com:80=127.0.0.1:1", "127.0.0.1:80=10.0.0.1:80", "127.0.0.1:80", "127.0.0.1=127.0.0.1:2"):
        with pytest.raises(ValueError, match=loopback.ENV):
            loopback.adopt(bad)
    with pytest.raises(ValueError):
        with loopback.published(("93.184.216.34", 80), ("127.0.0.1", 1)):
            pass


def test_the_guarded_fetch_reaches_a_server_serving_as_the_canonical_authority(tmp_path):
    from pmd.download.fetch_hooks import build_guarded_opener
    from pmd.download.guard import UrlPolicy

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format="PNG")
    (tmp_path / "a.png").write_bytes(buf.getvalue())
    canonical = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    opener = build_guarded_opener(UrlPolicy(allow_loopback=True), "pmd-test")
    with ImageServer(tmp_path, serves_as=canonical) as server:
        assert server.base_url != canonical
        assert opener.open(f"{canonical}/a.png", timeout=10).read() == buf.getvalue()
    assert loopback.ENV not in os.environ
    with pytest.raises(OSError):  # the mapping ends with the server
        opener.open(f"{canonical}/a.png", timeout=10).read()


def test_serve_sample_uses_a_free_port_for_the_urls_the_sample_names(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "x.jpg").write_bytes(b"\xff\xd8 not really")
    (tmp_path / "sample.json").write_text(json.dumps({"base_url": DEFAULT_BASE_URL}))
    with serve_sample(tmp_path) as a, serve_sample(tmp_path) as b:  # two builds at once: no port clash
        assert a.port != b.port and 8765 not in (a.port, b.port)
        assert loopback.remap(("127.0.0.1", 8765)) == ("127.0.0.1", b.port)
    assert loopback.ENV not in os.environ


def _urls_and_manifest(build: Path) -> tuple[list[str], str]:
    import pyarrow.parquet as pq

    urls = [u for p in sorted((build / "shards").glob("*.parquet"))
            for u in pq.read_table(p, columns=["image_url"]).column("image_url").to_pylist() if u]
    return urls, (build / "manifest.json").read_text(encoding="utf-8")


def test_the_sample_build_fetched_through_the_canonical_authority(sample_build):
    urls, manifest = _urls_and_manifest(sample_build)
    assert len(urls) > 50, "URL sources kept samples, so the workers reached the server"
    assert all(u.startswith(DEFAULT_BASE_URL + "/") for u in urls)
    assert set(re.findall(r"127\.0\.0\.1:(\d+)", manifest)) <= {"8765"}, "no real port in the manifest"


@pytest.mark.long
def test_two_clean_sample_builds_have_identical_shards(sample_build, tmp_path):
    from pmd.spark.pairs.run import build_embedded_sample

    other = build_embedded_sample(tmp_path / "again")
    shards = lambda b: [(s["path"], s["sha256"]) for s in json.loads((b / "manifest.json").read_text())["shards"]]
    assert shards(other) == shards(sample_build)
