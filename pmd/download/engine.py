"""Download image URLs with img2dataset on the caller's SparkSession, and normalise what it wrote.

``download_urls`` is the one entry point: it checks every URL with the guard (refused URLs never
reach img2dataset), downloads each distinct URL once with ``img2dataset.download`` (pyspark
distributor, WebDataset output: exactly the work of a plain img2dataset run, whose tars stream
cheaply back into the driver), then turns img2dataset's shards into two Parquet files:

* ``status.parquet`` (``schemas/download_status.json``): exactly one row per requested image key,
  ``success`` or ``failed`` with a stable error class (``pmd.download.errors``);
* ``images/`` (a Parquet dataset, one ``part-NNNNN.parquet`` per img2dataset shard):
  ``image_key, jpg, width, height, original_width, original_height, sha256`` (sha256 of the stored
  JPEG bytes) for every successful key. Each part is made inside the Spark task that downloaded the
  shard, right after img2dataset finishes it, so the driver never handles image bytes.

``_SUCCESS`` is written last: a rerun on the same request finds it and returns at once; a rerun
after a crash reuses img2dataset's finished shards (its incremental mode).

img2dataset quirks handled here (1.47):

* its pyspark distributor uses ``SparkSession.getActiveSession()`` and, if that is None, builds
  *and later stops* its own session: we make the caller's session active in this thread first;
* ``download()`` installs a SIGINT handler that calls ``sys.exit(0)`` (and fails outside the main
  thread): we keep it from touching signals while it runs; its statistics process prints progress
  to stdout: ours (``pmd.download.i2d_logger``) logs it;
* its ``sha256`` column hashes the original downloaded bytes, not the stored JPEG: we hash the JPEG;
* urllib follows redirects anywhere and resolves names again when it connects: a worker-side hook
  re-checks every redirect with the guard, refuses a connection whose peer address the guard refuses
  (DNS rebinding between the driver's check and the fetch), and sends an honest User-Agent
  (img2dataset's own token is used to match ``X-Robots-Tag: pmd: noai``);
* its output folder must hold no ``*.json`` other than its ``NNNNN_stats.json`` (incremental mode
  parses the names), so our own files live beside it, not in it;
* a shard whose stats file is missing did not finish: its rows are ignored and its keys become
  ``missing_from_downloader``; raw and images folders must be on storage every executor shares
  (local disk in local mode), as img2dataset's own output must be.

Spawn: img2dataset starts a logger process with multiprocessing ``spawn``; scripts that call this
must guard their entry point with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import math
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pmd import schemas
from pmd.download.errors import classify_error
from pmd.download.guard import UrlPolicy, check_url, check_urls, classify_address
from pmd.errors import UserError
from pmd.log import LogLines
from pmd.shard.tar_format import iter_members

log = logging.getLogger(__name__)

STATUS_FILE = "status.parquet"
IMAGES_DIR = "images"
SUCCESS_FILE = "_SUCCESS"
RAW_DIR = "_img2dataset"
INPUT_DIR = "_input"

#: Columns of the ``images/`` parts.
IMAGES_SCHEMA = pa.schema([
    pa.field("image_key", pa.string(), nullable=False),
    pa.field("jpg", pa.binary()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("original_width", pa.int32()),
    pa.field("original_height", pa.int32()),
    pa.field("sha256", pa.string()),
])


@dataclass(frozen=True)
class DownloadConfig:
    """How images are fetched and stored. Defaults follow PMD/FLAVA practice: 256 px short side,
    never upscaled, JPEG q90, an honest User-Agent, and opt-out headers (``noai``...) respected.

    ``samples_per_shard`` is img2dataset's unit of work (one Spark task each); ``thread_count``
    threads download inside each task. ``processes_count`` only matters if img2dataset had to make
    its own session, which ``download_urls`` prevents. ``allow_loopback``/``allow_private`` open the
    guard for tests and on-prem mirrors; metadata endpoints stay refused.
    """

    image_size: int = 256
    resize_mode: Literal["keep_ratio", "center_crop", "no"] = "keep_ratio"
    resize_only_if_bigger: bool = True
    encode_format: Literal["jpg"] = "jpg"
    encode_quality: int = 90
    timeout: int = 10
    retries: int = 1
    thread_count: int = 32
    processes_count: int = 2
    user_agent_token: str = "pmd (+https://github.com/pmd-data/pmd)"
    disallowed_header_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    allow_loopback: bool = False
    allow_private: bool = False
    samples_per_shard: int = 10000
    min_image_size: int = 0
    max_aspect_ratio: float = math.inf
    subjob_size: int = 1000
    max_shard_retry: int = 1
    keep_raw: bool = False

    def __post_init__(self) -> None:
        if self.image_size <= 0:
            raise ValueError(f"image_size must be > 0, got {self.image_size}")
        if not 1 <= self.encode_quality <= 100:
            raise ValueError(f"encode_quality must be in [1, 100], got {self.encode_quality}")
        if self.samples_per_shard <= 0 or self.thread_count <= 0 or self.timeout <= 0:
            raise ValueError("samples_per_shard, thread_count and timeout must be > 0")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")

    @property
    def policy(self) -> UrlPolicy:
        return UrlPolicy(allow_loopback=self.allow_loopback, allow_private=self.allow_private)

    @property
    def robots_token(self) -> str:
        """The product token matched against ``X-Robots-Tag: <token>: noai`` (first word, lower case)."""
        return (self.user_agent_token.split() or ["pmd"])[0].lower()

    @property
    def user_agent(self) -> str:
        """The User-Agent sent with every request: names the project and how to reach it."""
        return f"Mozilla/5.0 (compatible; {self.user_agent_token}; img2dataset)"


@dataclass(frozen=True)
class DownloadResult:
    """Where the normalised outputs are, and their counts (``errors``: error class → failed keys)."""

    status_path: Path
    images_path: Path
    n_requested: int = 0
    n_success: int = 0
    n_failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    resumed: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (guard, img2dataset, normalise)

    @property
    def n_downloaded(self) -> int:
        return self.n_success


# ---------------------------------------------------------------------------------------------
# Worker-side hook: redirects re-checked by the guard, honest User-Agent.

class _GuardedRedirectHandler(urllib.request.HTTPRedirectHandler):
    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        verdict = check_url(newurl, self.policy)
        if not verdict:
            raise urllib.error.URLError(f"{verdict.reason}: redirect to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _UserAgentHandler(urllib.request.BaseHandler):
    handler_order = 100

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent

    def http_request(self, req: urllib.request.Request) -> urllib.request.Request:
        req.add_header("User-agent", self.user_agent)
        return req

    https_request = http_request


def _peer_checked(http_class: Any, policy: UrlPolicy, req: urllib.request.Request) -> Any:
    """``http_class`` whose socket is refused right after the TCP connect (before TLS or any byte of
    the request) when the address it reached is one the guard refuses. This closes DNS rebinding: the
    guard resolved the name earlier in the driver, and the name may point elsewhere by now. Through a
    proxy the peer is the proxy, so proxied requests are left to it."""
    if req.has_proxy() or getattr(req, "_tunnel_host", None):
        return http_class

    def make(host: str, **kw: Any) -> Any:
        conn = http_class(host, **kw)
        create = conn._create_connection

        def create_checked(address: Any, *args: Any, **kwargs: Any) -> Any:
            sock = create(address, *args, **kwargs)
            try:
                peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
            except (OSError, ValueError, IndexError):
                peer = None  # not an IP socket: nothing a guard on addresses can say
            reason = classify_address(peer, policy) if peer is not None else None
            if reason:
                sock.close()
                raise OSError(f"{reason}: {address[0]} connected to {peer}")
            return sock

        conn._create_connection = create_checked
        return conn

    return make


class _PeerChecked:
    """Mixin for urllib's HTTP(S) handlers: every connection goes through ``_peer_checked``."""

    def __init__(self, policy: UrlPolicy) -> None:
        super().__init__()  # type: ignore[call-arg]
        self.policy = policy

    def do_open(self, http_class, req, **kw):  # type: ignore[no-untyped-def]
        return super().do_open(_peer_checked(http_class, self.policy, req), req, **kw)  # type: ignore[misc]


class _PeerCheckedHTTPHandler(_PeerChecked, urllib.request.HTTPHandler):
    pass


class _PeerCheckedHTTPSHandler(_PeerChecked, urllib.request.HTTPSHandler):
    pass


_hooks_installed: dict[str, Any] = {}


def build_guarded_opener(policy: UrlPolicy, user_agent: str) -> urllib.request.OpenerDirector:
    """A urllib opener that re-checks redirects with the guard, refuses connections that reach a refused
    address (whatever the name resolved to when the guard checked it), and sends ``user_agent``."""
    return urllib.request.build_opener(_GuardedRedirectHandler(policy), _PeerCheckedHTTPHandler(policy),
                                       _PeerCheckedHTTPSHandler(policy), _UserAgentHandler(user_agent))


def install_worker_hooks(policy: UrlPolicy, user_agent: str) -> None:
    """Make ``urllib.request.urlopen`` in this process use ``build_guarded_opener(policy, user_agent)``
    (img2dataset fetches with ``urlopen``)."""
    key = (policy, user_agent)
    if _hooks_installed.get("key") == key:
        return
    urllib.request.install_opener(build_guarded_opener(policy, user_agent))
    _hooks_installed["key"] = key


class _GuardedDownloader:
    """Wraps img2dataset's ``Downloader`` in each Spark task: installs the hooks first, and right
    after a shard finishes turns it into our images part (files still hot in the page cache, work
    spread over the executors instead of the driver)."""

    def __init__(self, inner: Any, policy: UrlPolicy, user_agent: str, images_dir: str) -> None:
        self.inner, self.policy, self.user_agent, self.images_dir = inner, policy, user_agent, images_dir

    def __call__(self, row: Any) -> Any:
        install_worker_hooks(self.policy, self.user_agent)
        ok, out = self.inner(row)
        if ok:
            name = f"{row[0]:0{self.inner.oom_shard_count}d}"
            try:
                normalise_shard(Path(self.inner.output_folder), name, Path(self.images_dir), self.inner.encode_format)
            except Exception:  # noqa: BLE001 - the driver redoes a missing part
                logging.getLogger(__name__).warning("normalising shard %s failed in the worker", name, exc_info=True)
        return ok, out


class _NoSignals:
    """Stands in for the ``signal`` module inside ``img2dataset.main`` while it runs."""

    SIGINT = 2

    @staticmethod
    def signal(*_: Any) -> None:
        return None


_patch_lock = threading.Lock()


@contextlib.contextmanager
def _patched_img2dataset(policy: UrlPolicy, user_agent: str, images_dir: Path) -> Iterator[Any]:
    import importlib

    # ``img2dataset.main`` the attribute is the CLI function (the package re-exports it): get the module
    i2d_main = importlib.import_module("img2dataset.main")

    from pmd.download.i2d_logger import LoggingLoggerProcess

    with _patch_lock:
        orig_dist, orig_signal, orig_logger = i2d_main.pyspark_distributor, i2d_main.signal, i2d_main.LoggerProcess

        def distributor(processes_count, downloader, reader, subjob_size, max_shard_retry):  # type: ignore[no-untyped-def]
            return orig_dist(processes_count, _GuardedDownloader(downloader, policy, user_agent, str(images_dir)),
                             reader, subjob_size, max_shard_retry)

        i2d_main.pyspark_distributor, i2d_main.signal = distributor, _NoSignals
        i2d_main.LoggerProcess = LoggingLoggerProcess  # its progress lines go to logging, not stdout
        try:
            yield i2d_main
        finally:
            i2d_main.pyspark_distributor, i2d_main.signal, i2d_main.LoggerProcess = orig_dist, orig_signal, orig_logger


def _activate_session(spark: Any) -> None:
    """Make ``spark`` the active session of this thread (img2dataset would otherwise make its own)."""
    cls = type(spark)
    if cls.getActiveSession() is not None:
        return
    try:
        jcls = cls._get_j_spark_session_class(spark.sparkContext._jvm)
        jcls.setActiveSession(spark._jsparkSession)
        cls._activeSession = spark
    except Exception as e:  # noqa: BLE001 - Spark internals differ across versions
        raise RuntimeError(f"cannot make the SparkSession active for img2dataset: {e}") from e
    if cls.getActiveSession() is None:
        raise RuntimeError("cannot make the SparkSession active for img2dataset")


# ---------------------------------------------------------------------------------------------
# Request handling

def _read_requests(requests: Any) -> pa.Table:
    if hasattr(requests, "toArrow") and hasattr(requests, "select"):  # a Spark DataFrame
        requests = requests.select("image_key", "url").toArrow()
    if not isinstance(requests, pa.Table):
        path = Path(requests)
        if not path.exists():
            raise UserError(f"download request {path} does not exist")
        requests = pq.read_table(path, columns=["image_key", "url"])
    missing = [c for c in ("image_key", "url") if c not in requests.column_names]
    if missing:
        raise UserError(f"download request lacks columns {missing} (needs image_key, url)")
    t = requests.select(["image_key", "url"])
    t = t.cast(pa.schema([("image_key", pa.string()), ("url", pa.string())]))
    if t.column("image_key").null_count:
        raise UserError("download request has rows without image_key")
    return t


def _request_pairs(table: pa.Table) -> dict[str, str | None]:
    """image_key → url; identical repeats collapse, one key with two URLs is an error."""
    pairs: dict[str, str | None] = {}
    for k, u in zip(table.column("image_key").to_pylist(), table.column("url").to_pylist()):
        prev = pairs.setdefault(k, u)
        if prev != u:
            raise UserError(f"image_key {k} is requested with two URLs: {prev!r} and {u!r}")
    return pairs


#: Config fields that change only speed or housekeeping, not what is downloaded: not fingerprinted.
_NOT_FINGERPRINTED = frozenset({"thread_count", "processes_count", "subjob_size", "max_shard_retry", "keep_raw"})


def _fingerprint(cfg: DownloadConfig, lines: Iterator[str] | list[str]) -> str:
    """Identity of a request (its lines) under the config fields that shape the result."""
    fields = {k: v for k, v in asdict(cfg).items() if k not in _NOT_FINGERPRINTED}
    h = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode())
    for line in lines:
        h.update(line.encode("utf-8", "surrogatepass"))
        h.update(b"\n")
    return h.hexdigest()


def _status_row(key: str, url: str | None, error: str | None, message: str | None = None,
                attempts: int = 0, **img: Any) -> dict[str, Any]:
    return {
        "image_key": key, "url": url, "status": "failed" if error else "success", "error": error,
        "error_message": message, "width": img.get("width"), "height": img.get("height"),
        "original_width": img.get("original_width"), "original_height": img.get("original_height"),
        "sha256": img.get("sha256"), "attempts": attempts,
    }


def _write_atomic_table(table: pa.Table, path: Path) -> None:
    tmp = Path(f"{path}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _result_from_marker(out: Path, marker: dict[str, Any]) -> DownloadResult:
    return DownloadResult(out / STATUS_FILE, out / IMAGES_DIR, marker["n_requested"], marker["n_success"],
                          marker["n_failed"], dict(marker.get("errors", {})), resumed=True)


def _run_img2dataset(spark: Any, url_keys: dict[str, list[str]], out: Path, cfg: DownloadConfig) -> Path:
    """Download the URLs of ``url_keys`` into ``out/_img2dataset`` (images parts into ``out/images``);
    finished shards of an interrupted run of the same request are reused."""
    raw, inp, images = out / RAW_DIR, out / INPUT_DIR, out / IMAGES_DIR
    inp.mkdir(parents=True, exist_ok=True)
    urls = sorted(url_keys)
    fp = _fingerprint(cfg, (f"{u}\t{' '.join(url_keys[u])}" for u in urls))
    fp_file = inp / "request.sha256"
    if not raw.exists() or not fp_file.exists() or fp_file.read_text().strip() != fp:
        if raw.exists():
            log.info("download: %s holds a different request; starting it over", raw)
        shutil.rmtree(raw, ignore_errors=True)
        shutil.rmtree(images, ignore_errors=True)  # parts are only valid beside their raw shards
    images.mkdir(parents=True, exist_ok=True)
    url_file = inp / "urls.parquet"
    # image_key carries every key of the URL (hex keys, space separated) so workers can fan out
    table = pa.table({"url": pa.array(urls, pa.string()),
                      "image_key": pa.array([" ".join(url_keys[u]) for u in urls], pa.string())})
    _write_atomic_table(table, url_file)
    fp_file.write_text(fp + "\n")
    _activate_session(spark)
    with _patched_img2dataset(cfg.policy, cfg.user_agent, images) as i2d_main, \
            contextlib.redirect_stdout(LogLines(log, "img2dataset: ")):  # it prints progress
        i2d_main.download(
            url_list=str(url_file), output_folder=str(raw), input_format="parquet", output_format="webdataset",
            url_col="url", save_additional_columns=["image_key"], distributor="pyspark",
            image_size=cfg.image_size, resize_mode=cfg.resize_mode, resize_only_if_bigger=cfg.resize_only_if_bigger,
            encode_format=cfg.encode_format, encode_quality=cfg.encode_quality, timeout=cfg.timeout,
            retries=cfg.retries, thread_count=cfg.thread_count, processes_count=cfg.processes_count,
            number_sample_per_shard=cfg.samples_per_shard, subjob_size=cfg.subjob_size,
            max_shard_retry=cfg.max_shard_retry, min_image_size=cfg.min_image_size,
            max_aspect_ratio=cfg.max_aspect_ratio, user_agent_token=cfg.robots_token,
            disallowed_header_directives=list(cfg.disallowed_header_directives),
            extract_exif=False, compute_hash=None, incremental_mode="incremental", enable_wandb=False,
        )
    return raw


def finished_raw_shards(raw: Path) -> list[Path]:
    """img2dataset metadata Parquet files whose ``_stats.json`` exists (stats are written after the data)."""
    out = []
    for p in sorted(raw.glob("*.parquet")):
        if (raw / f"{p.stem}_stats.json").exists():
            out.append(p)
        else:
            log.warning("download: ignoring unfinished img2dataset shard %s", p)
    return out


def _tar_images(tar_path: Path, ext: str) -> dict[str, bytes]:
    """img2dataset key → image bytes of one of its WebDataset tars."""
    found: dict[str, bytes] = {}
    if not tar_path.exists():
        return found
    with open(tar_path, "rb") as f:
        for name, data in iter_members(f):
            key, _, member_ext = name.partition(".")
            if member_ext == ext:
                found[key] = data
    return found


_META_COLS = ["url", "key", "image_key", "status", "error_message", "width", "height", "original_width",
              "original_height"]


def _part_path(images_dir: Path, name: str) -> Path:
    return images_dir / f"part-{name}.parquet"


def normalise_shard(raw: Path, name: str, images_dir: Path, ext: str = "jpg") -> Path:
    """One finished img2dataset shard (``NNNNN.parquet`` metadata + ``NNNNN.tar`` images) → our images
    part ``images_dir/part-NNNNN.parquet``: one row per (successful URL, key), sha256 of the stored bytes.
    Written atomically; rows are sorted by image_key so the part is deterministic."""
    d = pq.read_table(raw / f"{name}.parquet", columns=_META_COLS).to_pydict()
    jpgs = _tar_images(raw / f"{name}.tar", ext)
    rows: list[tuple[str, bytes, dict[str, Any]]] = []
    for i in range(len(d["url"])):
        jpg = jpgs.get(d["key"][i]) if d["status"][i] == "success" else None
        if not jpg:
            continue
        img = {"width": d["width"][i], "height": d["height"][i], "original_width": d["original_width"][i],
               "original_height": d["original_height"][i], "sha256": hashlib.sha256(jpg).hexdigest()}
        for key in (d["image_key"][i] or "").split():
            rows.append((key, jpg, img))
    rows.sort(key=lambda r: r[0])
    out: dict[str, list[Any]] = {f.name: [] for f in IMAGES_SCHEMA}
    for key, jpg, img in rows:
        out["image_key"].append(key)
        out["jpg"].append(jpg)
        for k, v in img.items():
            out[k].append(v)
    path = _part_path(images_dir, name)
    tmp = images_dir / f".{path.name}.tmp-{os.getpid()}"  # hidden: dataset readers skip it if left behind
    try:
        pq.write_table(pa.Table.from_pydict(out, schema=IMAGES_SCHEMA), tmp, compression="none")  # JPEGs: no gain
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _collect(raw: Path | None, url_keys: dict[str, list[str]], images_dir: Path) -> dict[str, dict[str, Any]]:
    """url → status fields, from img2dataset's metadata and our images parts (made here if a worker
    did not). Rows of unfinished shards are ignored: their keys become ``missing_from_downloader``."""
    results: dict[str, dict[str, Any]] = {}
    images_dir.mkdir(parents=True, exist_ok=True)
    for meta_path in (finished_raw_shards(raw) if raw is not None else []):
        name = meta_path.stem
        part = _part_path(images_dir, name)
        if not part.exists():
            normalise_shard(raw, name, images_dir)  # type: ignore[arg-type]
        ok = pq.read_table(part, columns=["image_key", "width", "height", "original_width", "original_height",
                                          "sha256"]).to_pylist()
        done = {r["image_key"]: r for r in ok}
        d = pq.read_table(meta_path, columns=["url", "status", "error_message"]).to_pydict()
        for i, url in enumerate(d["url"]):
            if url not in url_keys or url in results:
                continue
            first = done.get(url_keys[url][0])
            if first is not None:
                img = {k: first[k] for k in ("width", "height", "original_width", "original_height", "sha256")}
                results[url] = {"error": None, "message": None, "img": img}
            else:
                status = d["status"][i]
                msg = d["error_message"][i] or ("image missing from the shard tar" if status == "success"
                                                else status) or "no image"
                results[url] = {"error": classify_error(msg, status), "message": msg, "img": {}}
    if not any(images_dir.glob("part-*.parquet")):  # readers of an empty dataset still need its schema
        pq.write_table(IMAGES_SCHEMA.empty_table(), _part_path(images_dir, "empty"))
    return results


def download_urls(spark: Any, requests: Any, out_dir: str | os.PathLike[str],
                  cfg: DownloadConfig = DownloadConfig()) -> DownloadResult:
    """Download the images of ``requests`` (columns ``image_key``, ``url``) into ``out_dir``.

    ``requests`` is a pyarrow Table, a Parquet file or directory (Spark's output), or a Spark
    DataFrame (collected to the driver: it holds only keys and URLs).
    ``spark`` is the caller's live SparkSession (img2dataset's pyspark distributor runs on it).
    Returns the paths of ``status.parquet`` (one row per distinct requested key, schema
    ``download_status``) and the ``images`` Parquet dataset directory (``IMAGES_SCHEMA``, one row per
    successful key; read it with ``pq.read_table(dir)`` or ``spark.read.parquet(dir)``).
    Refused URLs fail as ``url_refused_*``/``bad_url``/``unresolvable_host`` without a fetch;
    duplicate URLs are fetched once; keys img2dataset lost fail as ``missing_from_downloader``.
    Idempotent: an ``out_dir`` holding a finished result for the same request is returned as is.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = _request_pairs(_read_requests(requests))
    result_fp = _fingerprint(cfg, (f"{k}\t{u}" for k, u in sorted(pairs.items(), key=lambda kv: kv[0])))
    marker_path = out / SUCCESS_FILE
    if marker_path.exists():
        try:
            marker = json.loads(marker_path.read_text())
        except (OSError, json.JSONDecodeError):
            marker = {}
        if marker.get("fingerprint") == result_fp and (out / STATUS_FILE).exists() and (out / IMAGES_DIR).is_dir():
            log.info("download: %s already holds this result; skipping", out)
            return _result_from_marker(out, marker)
        marker_path.unlink()

    t0 = time.perf_counter()
    distinct = sorted({u for u in pairs.values() if u is not None})
    verdicts = dict(zip(distinct, check_urls(distinct, cfg.policy)))
    allowed = [u for u in distinct if verdicts[u]]
    log.info("download: %d keys, %d distinct URLs, %d refused by the guard", len(pairs), len(distinct),
             len(distinct) - len(allowed))
    url_keys: dict[str, list[str]] = {}
    for k, u in pairs.items():
        if u is not None and verdicts[u]:
            url_keys.setdefault(u, []).append(k)

    if allowed and spark is None:
        raise ValueError(f"download_urls needs a SparkSession to fetch {len(allowed)} URLs (got None)")
    t1 = time.perf_counter()
    if not allowed:
        shutil.rmtree(out / IMAGES_DIR, ignore_errors=True)
    raw = _run_img2dataset(spark, url_keys, out, cfg) if allowed else None
    t2 = time.perf_counter()
    attempts = 1  # one download run tried each allowed URL (``pmd retry-failed`` adds its own)
    results = _collect(raw, url_keys, out / IMAGES_DIR)

    rows = []
    for key in sorted(pairs):
        url = pairs[key]
        if url is None:
            rows.append(_status_row(key, None, "bad_url", "no URL"))
        elif not verdicts[url]:
            rows.append(_status_row(key, url, verdicts[url].reason, f"refused by the URL guard: {verdicts[url].reason}"))
        elif url in results:
            r = results[url]
            rows.append(_status_row(key, url, r["error"], r["message"], attempts, **r["img"]))
        else:
            rows.append(_status_row(key, url, "missing_from_downloader",
                                    "img2dataset returned no row for this URL (its shard failed)", attempts))
    status = schemas.table_from_rows(rows, "download_status")
    _write_atomic_table(status, out / STATUS_FILE)

    errors = Counter(r["error"] for r in rows if r["error"])
    n_success = sum(1 for r in rows if r["status"] == "success")
    marker = {"fingerprint": result_fp, "n_requested": len(rows), "n_success": n_success,
              "n_failed": len(rows) - n_success, "errors": dict(sorted(errors.items()))}
    tmp = Path(f"{marker_path}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(marker, indent=1) + "\n")
    os.replace(tmp, marker_path)
    if raw is not None and not cfg.keep_raw:
        shutil.rmtree(raw, ignore_errors=True)
    timings = {"guard_s": round(t1 - t0, 3), "img2dataset_s": round(t2 - t1, 3),
               "normalise_s": round(time.perf_counter() - t2, 3)}
    log.info("download: %d ok, %d failed %s; %s", n_success, len(rows) - n_success, dict(errors.most_common(8)),
             timings)
    return DownloadResult(out / STATUS_FILE, out / IMAGES_DIR, len(rows), n_success, len(rows) - n_success,
                          marker["errors"], resumed=False, timings=timings)


def status_counts(status: pa.Table) -> dict[str, int]:
    """error class → number of failed keys in a status table (``success`` counted under ``success``)."""
    errors = pc.fill_null(status.column("error"), "success")
    vc = pc.value_counts(errors).to_pylist()
    return {d["values"]: d["counts"] for d in sorted(vc, key=lambda d: d["values"])}
