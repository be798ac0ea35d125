"""img2dataset on a local Spark session against the loopback ImageServer, and the normaliser."""

from __future__ import annotations

import io
import json
import os
import urllib.error
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pmd import schemas
from pmd.download import IMAGES_SCHEMA, DownloadConfig, download_urls, status_counts
from pmd.download.fetch_hooks import _GuardedRedirectHandler, _UserAgentHandler
from pmd.download.guard import CHECKED_SCHEMA, UrlPolicy
from pmd.download.raw_shards import finished_raw_shards, normalise_shard
from pmd.errors import UserError
from pmd.ids import stable_id

os.environ.setdefault("PYSPARK_PYTHON", os.path.join(os.path.dirname(os.sys.executable), "python"))


def _jpg(w, h, color):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from pmd.sample.server import FaultConfig, ImageServer

    root = tmp_path_factory.mktemp("www")
    for i in range(16):
        (root / f"img{i:02d}.jpg").write_bytes(_jpg(400 + i, 300, (i * 15, 80, 200 - i * 10)))
    (root / "small.jpg").write_bytes(_jpg(200, 150, (10, 20, 30)))
    (root / "tall.jpg").write_bytes(_jpg(300, 600, (200, 20, 30)))
    (root / "notes.jpg").write_bytes(b"plain text, not an image")
    with ImageServer(root, faults=FaultConfig(slow_seconds=8.0)) as server:  # /fault/slow/ sleeps 8 s
        yield server


@pytest.fixture(scope="module")
def redirector(served):
    """Answers /to-metadata with a redirect to the metadata endpoint, /to-image with one to the image
    server; records the User-Agent of every request."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    agents = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            agents.append(self.headers.get("User-Agent"))
            target = ("http://169.254.169.254/latest/meta-data/" if self.path == "/to-metadata"
                      else f"{served.base_url}/img07.jpg")
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", agents
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def spark():
    from pmd.spark.session import spark_session

    return spark_session("local[2]")


def _requests(base, redirect_base):
    urls = [f"{redirect_base}/to-metadata", f"{redirect_base}/to-image"] + [f"{base}/img{i:02d}.jpg" for i in range(16)] + [
        f"{base}/small.jpg", f"{base}/tall.jpg",
        f"{base}/img00.jpg", f"{base}/img00.jpg",          # duplicates of the first URL
        f"{base}/missing.jpg", f"{base}/fault/404/img01.jpg", f"{base}/fault/500/img02.jpg",
        f"{base}/notes.jpg", f"{base}/fault/notimage/img03.jpg", f"{base}/fault/truncated/img04.jpg",
        f"{base}/fault/noai/img05.jpg", f"{base}/fault/slow/img06.jpg",
        "http://10.0.0.1/a.jpg", "http://169.254.169.254/latest/meta-data/", "ftp://example.com/a.jpg", None,
    ]
    keys = [stable_id("img", i) for i in range(len(urls))]
    return pa.table({"image_key": keys + [keys[0]], "url": urls + [urls[0]]})  # an identical repeat row


EXPECTED_ERRORS = {
    "missing.jpg": "http_404", "fault/404/": "http_404", "fault/500/": "http_500", "notes.jpg": "not_an_image",
    "fault/notimage/": "not_an_image", "fault/truncated/": "truncated_image", "fault/noai/": "disallowed_by_header",
    "fault/slow/": "timeout", "10.0.0.1": "url_refused_private", "169.254.169.254": "url_refused_metadata",
    "ftp://": "bad_url", "/to-metadata": "url_refused_metadata",
}


@pytest.mark.slow
@pytest.mark.spark
def test_download_urls_end_to_end(spark, served, redirector, tmp_path, capfd, caplog):
    caplog.set_level("INFO", logger="pmd")  # img2dataset's progress lines are INFO records
    cfg = DownloadConfig(allow_loopback=True, samples_per_shard=10, thread_count=4, retries=0, timeout=5,
                         keep_raw=True)
    redirect_base, agents = redirector
    req = _requests(served.base_url, redirect_base)
    hits0 = served.hits
    res = download_urls(spark, req, tmp_path / "dl", cfg)

    status = pq.read_table(res.status_path)
    schemas.validate(status, "download_status")
    rows = status.to_pylist()
    keys = sorted(set(req.column("image_key").to_pylist()))
    assert [r["image_key"] for r in rows] == keys  # exactly one row per requested key
    by_url = {}
    for r in rows:
        by_url.setdefault(r["url"], []).append(r)
    for needle, error in EXPECTED_ERRORS.items():
        hits = [r for u, rs in by_url.items() if u and needle in u for r in rs]
        assert hits and all(r["status"] == "failed" and r["error"] == error for r in hits), (needle, hits)
    none_row = [r for r in rows if r["url"] is None]
    assert [r["error"] for r in none_row] == ["bad_url"]

    ok = [r for r in rows if r["status"] == "success"]
    assert len(ok) == 16 + 2 + 2 + 1  # 16 images, small, tall, 2 more keys of the duplicated URL, redirect
    assert by_url[f"{redirect_base}/to-image"][0]["sha256"] == by_url[f"{served.base_url}/img07.jpg"][0]["sha256"]
    assert len(agents) == 2 and set(agents) == {DownloadConfig().user_agent}
    dup = by_url[f"{served.base_url}/img00.jpg"]
    assert len(dup) == 3 and len({r["sha256"] for r in dup}) == 1
    img03 = by_url[f"{served.base_url}/img03.jpg"][0]
    assert (img03["width"], img03["height"], img03["original_width"], img03["original_height"]) == (344, 256, 403, 300)
    small = by_url[f"{served.base_url}/small.jpg"][0]
    assert (small["width"], small["height"]) == (200, 150)  # never upscaled
    tall = by_url[f"{served.base_url}/tall.jpg"][0]
    assert (tall["width"], tall["height"]) == (256, 512)
    assert all(r["attempts"] == 1 for r in rows if r["error"] not in ("url_refused_private", "url_refused_metadata",
                                                                          "bad_url"))
    assert res.n_requested == len(keys) and res.n_success == 21 and res.n_failed == len(keys) - 21
    assert res.errors == {k: v for k, v in status_counts(status).items() if k != "success"}

    images = pq.read_table(res.images_path)
    assert images.schema.remove_metadata().equals(IMAGES_SCHEMA)
    assert sorted(p.name for p in res.images_path.iterdir()) == ["part-00000.parquet", "part-00001.parquet",
                                                                 "part-00002.parquet"]
    assert sorted(images.column("image_key").to_pylist()) == sorted(r["image_key"] for r in ok)
    import hashlib
    for rec in images.to_pylist():
        assert hashlib.sha256(rec["jpg"]).hexdigest() == rec["sha256"]
        assert Image.open(io.BytesIO(rec["jpg"])).size == (rec["width"], rec["height"])
    # the duplicated URL was fetched once: 16 + small + tall + 8 faulty/missing URLs + 1 redirected
    assert served.hits - hits0 == 27
    assert json.loads((tmp_path / "dl" / "_SUCCESS").read_text())["n_success"] == 21

    # a rerun finds the finished result and fetches nothing
    hits1 = served.hits
    again = download_urls(spark, req, tmp_path / "dl", cfg)
    assert again.resumed and again.n_success == 21 and served.hits == hits1

    # a crash after img2dataset but before _SUCCESS: its finished shards are reused, nothing refetched
    raw = tmp_path / "dl" / "_img2dataset"
    assert sorted(p.name for p in raw.glob("*_stats.json")) == ["00000_stats.json", "00001_stats.json",
                                                                "00002_stats.json"]
    (tmp_path / "dl" / "_SUCCESS").unlink()
    import shutil
    shutil.rmtree(tmp_path / "dl" / "status")
    resumed = download_urls(spark, req, tmp_path / "dl", cfg)
    assert not resumed.resumed and served.hits == hits1
    assert pq.read_table(resumed.status_path).equals(status)

    # img2dataset's statistics process logged its progress lines instead of printing them
    out, err = capfd.readouterr()
    assert "images per sec" not in out
    assert "pmd.download.img2dataset: total   - success:" in err


@pytest.mark.spark
def test_all_refused_needs_no_download(spark, tmp_path):
    req = pa.table({"image_key": ["00aa", "00bb"], "url": ["http://127.0.0.1:1/x.jpg", "http://192.168.0.1/y.jpg"]})
    res = download_urls(spark, req, tmp_path / "dl", DownloadConfig())
    assert res.errors == {"url_refused_loopback": 1, "url_refused_private": 1}
    assert not (tmp_path / "dl" / "_img2dataset").exists()  # no URL left: img2dataset never ran
    assert pq.read_table(res.images_path).num_rows == 0
    assert pq.read_table(res.images_path).schema.remove_metadata().equals(IMAGES_SCHEMA)


@pytest.mark.spark
def test_conflicting_request_is_a_user_error(spark, tmp_path):
    req = pa.table({"image_key": ["00aa", "00aa"], "url": ["http://a.invalid/1", "http://a.invalid/2"]})
    with pytest.raises(UserError, match="two URLs"):
        download_urls(spark, req, tmp_path, DownloadConfig())
    with_and_without = pa.table({"image_key": ["00aa", "00aa"], "url": ["http://a.invalid/1", None]})
    with pytest.raises(UserError, match="two URLs"):
        download_urls(spark, with_and_without, tmp_path, DownloadConfig())
    with pytest.raises(UserError, match="without image_key"):
        download_urls(spark, pa.table({"image_key": [None, "00aa"], "url": ["http://a.invalid/1"] * 2},
                                      schema=pa.schema([("image_key", pa.string()), ("url", pa.string())])),
                      tmp_path, DownloadConfig())
    with pytest.raises(UserError, match="columns"):
        download_urls(spark, pa.table({"key": ["00aa"]}), tmp_path, DownloadConfig())
    with pytest.raises(ValueError, match="SparkSession"):
        download_urls(None, req, tmp_path, DownloadConfig())


@pytest.mark.spark
def test_unfinished_raw_shards_become_missing(spark, tmp_path):
    from pmd.shard.tar_writer import write_tar_shard

    raw = tmp_path / "_img2dataset"
    raw.mkdir()
    jpg = _jpg(300, 256, (1, 2, 3))
    # img2dataset's WebDataset output: metadata Parquet (all rows) + tar (successful images) + stats;
    # our input's image_key column carries all keys of a URL, space separated
    cols = {"image_key": ["0b 0a", "0c"], "url": ["http://h/a.jpg", "http://h/b.jpg"],
            "key": ["000000000", "000000001"], "status": ["success", "failed_to_download"],
            "error_message": [None, "HTTP Error 410: Gone"], "width": [300, None], "height": [256, None],
            "original_width": [300, None], "original_height": [256, None]}
    pq.write_table(pa.table(cols), raw / "00000.parquet")
    write_tar_shard(raw / "00000.tar", [("000000000", {"jpg": jpg, "json": b"{}"})])
    (raw / "00000_stats.json").write_text("{}")
    pq.write_table(pa.table({**cols, "url": ["http://h/c.jpg", "http://h/d.jpg"], "image_key": ["0d", "0x"],
                             "key": ["000010000", "000010001"]}), raw / "00001.parquet")  # no stats: unfinished
    pq.write_table(pa.table({**cols, "url": ["http://h/e.jpg", "http://h/f.jpg"], "image_key": ["0e", "0f"],
                             "key": ["000020000", "000020001"]}), raw / "00002.parquet")
    write_tar_shard(raw / "00002.tar", [("000020009", {"jpg": jpg})])  # finished, but its tar lost the image
    (raw / "00002_stats.json").write_text("{}")
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    part = normalise_shard(raw, "00000", images_dir)  # what the Spark task does after the shard
    assert part.name == "part-00000.parquet"
    finished = finished_raw_shards(raw)
    assert [p.name for p in finished] == ["00000.parquet", "00002.parquet"]  # 00001 never finished
    normalise_shard(raw, "00002", images_dir)
    images = pq.read_table(images_dir).to_pylist()
    assert [r["image_key"] for r in images] == ["0a", "0b"] and images[0]["jpg"] == jpg
    assert images[0]["sha256"] == __import__("hashlib").sha256(jpg).hexdigest()

    # the status join (in Spark): image present → success, metadata only → its error, no finished
    # shard mentions the key → missing_from_downloader, refused by the guard → the guard's reason
    from pmd.download.status_table import assemble_status, raw_status

    checked = tmp_path / "checked"
    checked.mkdir()
    pq.write_table(pa.table({"image_key": ["0a", "0b", "0c", "0d", "0e", "0g"],
                             "url": ["http://h/a.jpg", "http://h/a.jpg", "http://h/b.jpg", "http://h/c.jpg",
                                     "http://h/e.jpg", "http://10.0.0.1/g.jpg"],
                             "refused": [None, None, None, None, None, "url_refused_private"]},
                            schema=CHECKED_SCHEMA), checked / "part-0.parquet")
    rows = {r["image_key"]: r.asDict() for r in
            assemble_status(spark, checked, raw_status(spark, finished), images_dir).collect()}
    assert sorted(rows) == ["0a", "0b", "0c", "0d", "0e", "0g"]
    assert [rows[k]["status"] for k in ("0a", "0b")] == ["success", "success"]
    assert rows["0a"]["sha256"] == images[0]["sha256"] and rows["0a"]["attempts"] == 1
    assert rows["0c"]["error"] == "http_410" and rows["0c"]["error_message"] == "HTTP Error 410: Gone"
    assert rows["0d"]["error"] == "missing_from_downloader"  # its shard never finished
    assert rows["0e"]["error"] == "download_error"  # finished, but the tar lost the image
    assert (rows["0g"]["error"], rows["0g"]["attempts"]) == ("url_refused_private", 0)


def test_redirects_are_guarded_and_user_agent_is_honest():
    handler = _GuardedRedirectHandler(UrlPolicy(allow_loopback=True))
    req = urllib.request.Request("http://127.0.0.1:9/a.jpg")
    with pytest.raises(urllib.error.URLError, match="url_refused_metadata"):
        handler.redirect_request(req, None, 302, "Found", {}, "http://169.254.169.254/latest/")
    assert handler.redirect_request(req, None, 302, "Found", {}, "http://127.0.0.1:9/b.jpg").full_url.endswith("b.jpg")
    strict = _GuardedRedirectHandler(UrlPolicy())
    with pytest.raises(urllib.error.URLError, match="url_refused_private"):
        strict.redirect_request(req, None, 301, "Moved", {}, "http://10.1.1.1/")

    cfg = DownloadConfig()
    ua = _UserAgentHandler(cfg.user_agent)
    out = ua.http_request(urllib.request.Request("http://x.invalid/", headers={"User-Agent": "Firefox/72"}))
    assert out.get_header("User-agent") == "Mozilla/5.0 (compatible; pmd (+https://github.com/pmd-data/pmd); img2dataset)"
    assert cfg.robots_token == "pmd"


@pytest.mark.spark
def test_requests_from_a_parquet_directory(spark, tmp_path):
    req = tmp_path / "req"
    req.mkdir()
    pq.write_table(pa.table({"image_key": ["00aa"], "url": ["http://10.0.0.1/a.jpg"], "extra": [1]}),
                   req / "part-00000.parquet")
    pq.write_table(pa.table({"image_key": ["00bb"], "url": ["http://x.invalid/b.jpg"], "extra": [2]}),
                   req / "part-00001.parquet")
    (req / "_SUCCESS").write_text("")
    res = download_urls(spark, req, tmp_path / "dl", DownloadConfig())
    rows = pq.read_table(res.status_path).to_pylist()
    assert [(r["image_key"], r["error"], r["attempts"]) for r in rows] == [
        ("00aa", "url_refused_private", 0), ("00bb", "unresolvable_host", 0)]


def test_dns_rebinding_is_refused_when_the_connection_is_made(served, monkeypatch):
    """The guard resolves a name on an executor; by the time a worker connects, the name may point at
    loopback or metadata. The worker's opener checks the address it actually reached."""
    import socket

    from pmd.download import guard
    from pmd.download.fetch_hooks import build_guarded_opener
    from pmd.download.errors import classify_error

    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    real, lookups = socket.getaddrinfo, []

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example":  # public at the guard's lookup, loopback afterwards
            lookups.append(port)
            return real("93.184.216.34" if len(lookups) == 1 else "127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    guard.clear_cache()
    try:
        url = f"http://rebind.example:{served.base_url.rsplit(':', 1)[1]}/img01.jpg"
        assert guard.check_url(url, UrlPolicy())  # what the guard saw: a public address
        hits = served.hits
        with pytest.raises(urllib.error.URLError) as err:
            build_guarded_opener(UrlPolicy(), DownloadConfig().user_agent).open(url, timeout=5)
        assert classify_error(str(err.value)) == "url_refused_loopback"
        assert "connected to 127.0.0.1" in str(err.value)
        assert len(lookups) == 2 and served.hits == hits  # refused after connect, before any request
    finally:
        guard.clear_cache()
    with build_guarded_opener(UrlPolicy(allow_loopback=True), DownloadConfig().user_agent).open(
            f"{served.base_url}/img01.jpg", timeout=5) as ok:  # a policy that allows loopback still fetches
        assert ok.status == 200 and ok.read()[:2] == b"\xff\xd8"


@pytest.mark.spark
def test_dataframe_requests_are_guarded_on_the_executors(spark, served, tmp_path, monkeypatch):
    """Requests arrive as a DataFrame; the guard runs in the executors' Python workers, so the driver
    neither checks a host nor resolves a name (its guard functions fail if called), and every key still
    ends with one status row, written by Spark."""
    import socket

    from pmd.download import guard

    def driver_must_not(*args, **kwargs):
        raise AssertionError(f"the driver ran the URL guard: {args}")

    monkeypatch.setattr(guard, "_check_host", driver_must_not)
    monkeypatch.setattr(guard, "resolve_host", driver_must_not)
    real_gai, lookups = socket.getaddrinfo, []

    def recording(host, *args, **kwargs):
        lookups.append(host)
        return real_gai(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    port = served.base_url.rsplit(":", 1)[1]
    rows = [("k1", f"http://localhost:{port}/img01.jpg", "a"), ("k1", f"http://localhost:{port}/img01.jpg", "b"),
            ("k2", f"http://localhost:{port}/img01.jpg", "c"), ("k3", "http://images.example.invalid/x.jpg", "d"),
            ("k4", "http://10.1.2.3/y.jpg", "e"), ("k5", None, "f"), ("k6", f"{served.base_url}/missing.jpg", "g")]
    req = spark.createDataFrame(rows, "image_key string, url string, caption string")
    cfg = DownloadConfig(allow_loopback=True, samples_per_shard=10, thread_count=2, retries=0, timeout=5)
    res = download_urls(spark, req, tmp_path / "dl", cfg)

    assert res.status_path.is_dir() and (res.status_path / "_SUCCESS").exists()  # a Spark dataset
    status = {r["image_key"]: r.asDict() for r in res.status_df(spark).collect()}
    assert sorted(status) == ["k1", "k2", "k3", "k4", "k5", "k6"]
    assert [status[k]["status"] for k in ("k1", "k2")] == ["success", "success"]
    assert status["k1"]["sha256"] == status["k2"]["sha256"]  # one URL, fetched once, two keys
    assert {k: (status[k]["error"], status[k]["attempts"]) for k in ("k3", "k4", "k5", "k6")} == {
        "k3": ("unresolvable_host", 0), "k4": ("url_refused_private", 0), "k5": ("bad_url", 0),
        "k6": ("http_404", 1)}
    assert status["k4"]["error_message"] == "refused by the URL guard: url_refused_private"
    assert (res.n_requested, res.n_success, res.errors) == (6, 2, {"bad_url": 1, "http_404": 1,
                                                                   "unresolvable_host": 1, "url_refused_private": 1})
    assert [h for h in lookups if h not in ("localhost", "127.0.0.1")] == []  # the driver resolved nothing
    joined = {r["image_key"]: r for r in res.results_df(spark).collect()}
    assert joined["k1"]["jpg"][:2] == b"\xff\xd8" and joined["k4"]["jpg"] is None
    assert list(res.results_df(spark).columns) == [f.name for f in schemas.load_schema("download_status")] + ["jpg"]


def test_guard_partition_caches_host_verdicts_per_task():
    from pmd.download.guard import guard_partition

    calls = []

    def resolve(host):
        calls.append(host)
        return {"a.example": ("93.184.216.34",), "b.example": ("10.0.0.9",)}[host]

    batches = [pa.RecordBatch.from_pydict({"image_key": [f"k{b}{i}" for i in range(3)],
                                           "url": [f"http://a.example/{b}{i}.jpg" for i in range(2)]
                                           + [f"http://b.example/{b}.jpg"]}) for b in range(3)]
    out = pa.Table.from_batches(list(guard_partition(UrlPolicy(), resolve=resolve)(iter(batches))))
    assert out.schema.equals(CHECKED_SCHEMA)
    assert out.column("refused").to_pylist() == [None, None, "url_refused_private"] * 3
    assert sorted(calls) == ["a.example", "b.example"]  # once per host for the whole task
