"""Download budgets on loopback servers: pixels (decompression bombs refused from the header), response
bytes (reading stops at the cap) and the whole-fetch deadline (a trickling server trips it although
every single read is quick). Bodies are generated while sent; nothing large is stored."""

from __future__ import annotations

import io
import struct
import threading
import time
import urllib.error
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from pmd.download import DownloadConfig, FetchBudget, classify_error, is_transient
from pmd.download.fetch_hooks import DeadlineExceeded, ResponseTooLarge, build_guarded_opener
from pmd.download.guard import UrlPolicy
from pmd.download.image_area import AreaCheckedResizer, area_refusal

LOOPBACK = UrlPolicy(allow_loopback=True)
UA = DownloadConfig().user_agent


def _png_declaring(width: int, height: int, rows: int = 64) -> bytes:
    """A valid-looking 8-bit grey PNG whose header declares ``width``x``height``, with only ``rows`` rows
    of data (a bomb's header is all a budget check may read)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(b"\x00" * (width + 1)) for _ in range(rows)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _jpg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (10, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def hostile():
    """/declared-300mb (Content-Length 300 MB, zeros streamed), /endless (no length, streamed until the
    client goes), /trickle (length 100, one byte per 0.5 s), /slow-headers (status line one byte per
    0.5 s), /bomb.png, /ok.jpg. ``sent`` holds the body bytes each path wrote."""
    sent: dict[str, int] = {}
    bomb, ok = _png_declaring(20000, 20000), _jpg()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _stream(self, chunk: bytes, pause: float = 0.0, limit: int | None = None) -> None:
            n = 0
            try:
                while limit is None or n < limit:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    n += len(chunk)
                    sent[self.path] = n
                    if pause:
                        time.sleep(pause)
            except OSError:
                pass  # the client stopped reading: what a budget is for

        def do_GET(self):
            if self.path == "/slow-headers":
                for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                    try:
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.5)
                return
            body = {"/bomb.png": bomb, "/ok.jpg": ok}.get(self.path)
            self.send_response(200)
            if body is not None:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if self.path == "/declared-300mb":
                self.send_header("Content-Length", str(300 * 1024 * 1024))
                self.end_headers()
                self._stream(b"\x00" * 65536, limit=300 * 1024 * 1024)
            elif self.path == "/endless":
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                self._stream(bytes(range(256)) * 256)
            elif self.path == "/trickle":
                self.send_header("Content-Length", "100")
                self.end_headers()
                self._stream(b"x", pause=0.5, limit=100)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", sent
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_declared_length_over_the_cap_is_refused_before_reading(hostile, no_proxy):
    base, sent = hostile
    opener = build_guarded_opener(LOOPBACK, UA, FetchBudget(max_bytes=1 << 20, deadline_s=10))
    t0 = time.monotonic()
    with pytest.raises(ResponseTooLarge) as err:
        opener.open(f"{base}/declared-300mb", timeout=5)
    assert time.monotonic() - t0 < 3
    assert classify_error(str(err.value)) == "response_too_large" and not is_transient("response_too_large")


def test_an_endless_body_stops_at_the_cap(hostile, no_proxy):
    base, sent = hostile
    cap = 1 << 20
    opener = build_guarded_opener(LOOPBACK, UA, FetchBudget(max_bytes=cap, deadline_s=10))
    with opener.open(f"{base}/endless", timeout=5) as resp, pytest.raises(ResponseTooLarge) as err:
        resp.read()
    assert classify_error(str(err.value)) == "response_too_large"
    time.sleep(0.2)
    assert sent["/endless"] < cap + 16 * (1 << 20)  # the cap plus what socket buffers held, not "endless"


def test_a_trickling_body_trips_the_whole_download_deadline(hostile, no_proxy):
    base, _ = hostile
    opener = build_guarded_opener(LOOPBACK, UA, FetchBudget(deadline_s=1.5))
    t0 = time.monotonic()
    with opener.open(f"{base}/trickle", timeout=2) as resp, pytest.raises(DeadlineExceeded) as err:
        resp.read()  # every single read returns within 0.5 s: ``timeout`` alone never trips
    assert 1.4 < time.monotonic() - t0 < 4
    assert classify_error(str(err.value)) == "download_deadline" and is_transient("download_deadline")


def test_trickling_headers_trip_the_deadline(hostile, no_proxy):
    base, _ = hostile
    opener = build_guarded_opener(LOOPBACK, UA, FetchBudget(deadline_s=1.5))
    t0 = time.monotonic()
    with pytest.raises((DeadlineExceeded, urllib.error.URLError)) as err:
        opener.open(f"{base}/slow-headers", timeout=2).read()
    assert time.monotonic() - t0 < 4
    assert classify_error(str(err.value)) == "download_deadline"


def test_img2dataset_fetches_are_bounded(hostile, no_proxy):
    """img2dataset's own fetch (``urlopen`` + ``r.read()``) under the worker hooks."""
    from img2dataset.downloader import download_image

    from pmd.download import fetch_hooks

    base, _ = hostile
    saved = urllib.request._opener
    try:
        fetch_hooks.install_worker_hooks(LOOPBACK, UA, FetchBudget(max_bytes=1 << 20, deadline_s=1.5))
        errors = {path: download_image((0, f"{base}{path}"), 2, None, None)[2]
                  for path in ("/endless", "/trickle", "/ok.jpg")}
    finally:
        urllib.request.install_opener(saved)
        fetch_hooks._hooks_installed.clear()
    assert classify_error(errors["/endless"]) == "response_too_large"
    assert classify_error(errors["/trickle"]) == "download_deadline"
    assert errors["/ok.jpg"] is None


def test_a_decompression_bomb_is_refused_from_its_header():
    bomb = _png_declaring(20000, 20000)
    assert len(bomb) < 2 * 1024 * 1024
    inner_calls = []

    def inner(stream, bbox=None):
        inner_calls.append(1)
        return b"img", 1, 1, 1, 1, None

    resizer = AreaCheckedResizer(inner, DownloadConfig().max_image_area)
    out = resizer(io.BytesIO(bomb))
    assert out[0] is None and classify_error(out[-1]) == "image_too_large" and not inner_calls  # never decoded
    # below PIL's own bomb limit the declared size is named exactly
    msg = area_refusal(io.BytesIO(_png_declaring(12000, 10000)), 100_000_000)
    assert msg == "image area too large: 12000x10000 declares 120000000 pixels > max_image_area 100000000"
    assert area_refusal(io.BytesIO(_png_declaring(12000, 10000)), 200_000_000) is None
    assert resizer(io.BytesIO(b"not an image at all"))[0] == b"img"  # unknown formats go to the decoder
    assert resizer(io.BytesIO(_jpg()))[0] == b"img" and len(inner_calls) == 2


def test_img2dataset_resizer_behind_the_area_check():
    from img2dataset.resizer import Resizer

    real = Resizer(image_size=64, resize_mode="keep_ratio", resize_only_if_bigger=True)
    resizer = AreaCheckedResizer(real, 1_000_000)
    img, w, h, ow, oh, err = resizer(io.BytesIO(_jpg()))
    assert err is None and (ow, oh) == (320, 240) and min(w, h) == 64
    assert classify_error(resizer(io.BytesIO(_png_declaring(2000, 1000)))[-1]) == "image_too_large"


def test_local_images_have_the_same_pixel_budget(tmp_path):
    from pmd.download.local import read_local_image

    (tmp_path / "bomb.png").write_bytes(_png_declaring(20000, 20000))
    row, jpg = read_local_image(str(tmp_path / "bomb.png"), None, DownloadConfig())
    assert (row["error"], jpg) == ("image_too_large", None)
    (tmp_path / "wide.png").write_bytes(_png_declaring(3000, 2000, rows=2000))
    row, _ = read_local_image(str(tmp_path / "wide.png"), None, DownloadConfig(max_image_area=5_000_000))
    assert row["error"] == "image_too_large"


def test_budgets_are_validated():
    for bad in ({"max_image_area": 0}, {"max_response_bytes": -1}, {"download_deadline": 0}):
        with pytest.raises(ValueError):
            DownloadConfig(**bad)
