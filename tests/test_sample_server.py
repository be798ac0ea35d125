"""The sample's loopback image server: files, every fault kind, injected fault rates, load."""

from __future__ import annotations

import http.client
import io
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from pmd.sample.server import FaultConfig, ImageServer, free_port


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served")
    img = Image.new("RGB", (320, 240), (200, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    (root / "images").mkdir()
    for i in range(50):
        (root / "images" / f"im{i}.jpg").write_bytes(buf.getvalue())
    (root / "images" / "caf\u00e9.jpg").write_bytes(buf.getvalue())
    (root / "secret.txt").write_text("root file")
    return root


@pytest.fixture(scope="module")
def server(root):
    with ImageServer(root, faults=FaultConfig(slow_seconds=0.5)) as srv:
        yield srv


def get(server: ImageServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_serves_an_image_with_its_type_and_length(server, root):
    status, headers, body = get(server, "/images/im3.jpg?imgmax=800")
    assert status == 200
    assert headers["content-type"] == "image/jpeg"
    assert int(headers["content-length"]) == len(body) == (root / "images/im3.jpg").stat().st_size
    assert Image.open(io.BytesIO(body)).size == (320, 240)
    assert server.base_url == f"http://127.0.0.1:{server.port}"


def test_percent_encoded_names_and_head(server):
    status, _, body = get(server, "/images/caf%C3%A9.jpg")
    assert status == 200 and body[:2] == b"\xff\xd8"
    status, headers, body = get(server, "/images/im1.jpg", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 1000


def test_missing_files_and_paths_outside_root_are_404(server):
    assert get(server, "/images/nope.jpg")[0] == 404
    assert get(server, "/images/../../etc/passwd")[0] == 404
    assert get(server, "/images")[0] == 404  # directories are not listed


def test_fault_404_and_500(server):
    assert get(server, "/fault/404/images/im1.jpg")[0] == 404
    assert get(server, "/fault/500/images/im1.jpg")[0] == 500
    assert get(server, "/fault/teapot/images/im1.jpg")[0] == 400


def test_fault_notimage_is_html_labelled_as_jpeg(server):
    status, headers, body = get(server, "/fault/notimage/images/im1.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert body.startswith(b"<!DOCTYPE html>")
    with pytest.raises(Exception):
        Image.open(io.BytesIO(body))


def test_fault_noai_sends_the_robots_header(server, root):
    status, headers, body = get(server, "/fault/noai/images/im2.jpg")
    assert status == 200 and headers["x-robots-tag"] == "noai"
    assert body == (root / "images/im2.jpg").read_bytes()
    assert "x-robots-tag" not in get(server, "/images/im2.jpg")[1]


def test_fault_truncated_sends_half_the_bytes_with_the_full_length(server, root):
    size = (root / "images/im4.jpg").stat().st_size
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/fault/truncated/images/im4.jpg")
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.getheader("Content-Length")) == size
    with pytest.raises(http.client.IncompleteRead) as e:
        resp.read()
    assert len(e.value.partial) == size // 2
    conn.close()


def test_fault_slow_waits_then_serves(server, root):
    start = time.monotonic()
    status, _, body = get(server, "/fault/slow/images/im5.jpg")
    assert time.monotonic() - start >= 0.5
    assert status == 200 and body == (root / "images/im5.jpg").read_bytes()


def test_slow_fault_trips_a_client_timeout(root):
    with ImageServer(root) as srv:  # default 3 s delay
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=0.5)
        conn.request("GET", "/fault/slow/images/im5.jpg")
        with pytest.raises(socket.timeout):
            conn.getresponse()
        conn.close()


def test_injected_fault_rates_are_deterministic_by_path(root):
    faults = FaultConfig(rate_404=0.3, rate_500=0.2, seed=7)
    paths = [f"/images/im{i}.jpg" for i in range(50)]
    chosen = {p: faults.fault_for(p) for p in paths}
    assert chosen == {p: faults.fault_for(p) for p in paths}
    assert 5 <= sum(v == "404" for v in chosen.values()) <= 25
    assert 2 <= sum(v == "500" for v in chosen.values()) <= 18
    assert chosen != {p: FaultConfig(rate_404=0.3, rate_500=0.2, seed=8).fault_for(p) for p in paths}
    with ImageServer(root, faults=faults) as srv:
        for p in paths[:20]:
            want = {"404": 404, "500": 500, None: 200}[chosen[p]]
            assert get(srv, p)[0] == want, p
    assert FaultConfig().fault_for("/images/im1.jpg") is None
    with pytest.raises(ValueError):
        FaultConfig(rate_404=0.8, rate_500=0.5)


def test_two_hundred_concurrent_requests_all_succeed(server):
    before = server.hits

    def fetch(i: int) -> int:
        return get(server, f"/images/im{i % 50}.jpg")[0]

    with ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(pool.map(fetch, range(200)))
    assert statuses == [200] * 200
    assert server.hits - before == 200


def test_free_port_is_bindable_and_server_uses_it(root):
    port = free_port()
    with ImageServer(root, port=port) as srv:
        assert srv.port == port
        assert get(srv, "/secret.txt")[2] == b"root file"


def test_serves_the_generated_sample(image_server, sample_dir):
    import json

    meta = json.loads((sample_dir / "sample.json").read_text())
    assert image_server.base_url == meta["base_url"]
    url = meta["expected"]["same_image_bytes"][0]["urls"][0]
    status, headers, body = get(image_server, url[len(image_server.base_url):])
    assert status == 200 and headers["content-type"] == "image/jpeg"
    for kind, code in (("404", 404), ("500", 500)):
        assert get(image_server, meta["expected"]["faults"][kind][0][len(image_server.base_url):])[0] == code


def test_cli_serve_parses_fault_options():
    from pmd.cli import build_parser

    args = build_parser().parse_args(["sample", "serve", "/tmp/x", "--port", "9999", "--rate-404", "0.1",
                                      "--slow-seconds", "0.5"])
    assert args.sample_command == "serve" and args.port == 9999 and args.rate_404 == 0.1
    assert args.slow_seconds == 0.5 and str(args.dir) == "/tmp/x"
    args = build_parser().parse_args(["sample", "--out", "/tmp/y", "--seed", "3", "--scale", "0.5"])
    assert args.sample_command is None and args.seed == 3 and args.scale == 0.5
