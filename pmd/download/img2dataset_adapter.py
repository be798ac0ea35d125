"""img2dataset 1.47 on the caller's SparkSession, with our hooks in every download task.

``run_img2dataset`` is ``img2dataset.download`` (pyspark distributor, WebDataset output, incremental
mode) over a Parquet URL dataset written by Spark, with these quirks handled:

* its pyspark distributor uses ``SparkSession.getActiveSession()`` and, if that is None, builds
  *and later stops* its own session: the caller's session is made active in this thread first;
* ``download()`` installs a SIGINT handler that calls ``sys.exit(0)`` (and fails outside the main
  thread): it is kept from touching signals while it runs; its statistics process prints progress
  to stdout: ours (``pmd.download.i2d_logger``) logs it and dies with its parent;
* every Spark task runs ``_GuardedDownloader``: the network guard (``PMD_NETGUARD=1``), the guarded,
  budgeted urllib opener (``pmd.download.fetch_hooks``) and the header-checked pixel budget
  (``pmd.download.image_area``) are in place before the first fetch, and the finished shard becomes
  our images part right there (``pmd.download.raw_shards``);
* its output folder must hold no ``*.json`` other than its ``NNNNN_stats.json`` (incremental mode
  parses the names), so our own files live beside it, not in it.

img2dataset starts its logger process with multiprocessing ``spawn``: scripts that call this must
guard their entry point with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from pathlib import Path
from typing import Any, Iterator

from pmd.download.config import DownloadConfig, FetchBudget
from pmd.download.fetch_hooks import install_worker_hooks
from pmd.download.guard import UrlPolicy
from pmd.download.image_area import AreaCheckedResizer, raise_decoder_limits
from pmd.download.raw_shards import normalise_shard
from pmd import loopback
from pmd.log import LogLines

log = logging.getLogger(__name__)


def honour_netguard() -> None:
    """Install the no-network guard in this process when the run asked for it (``PMD_NETGUARD=1``,
    inherited by every process of a test run): download workers are where connections happen."""
    if os.environ.get("PMD_NETGUARD") == "1":
        from pmd import netguard

        netguard.install()


class _GuardedDownloader:
    """Wraps img2dataset's ``Downloader`` in each Spark task: installs the hooks first, and right
    after a shard finishes turns it into our images part (files still hot in the page cache, work
    spread over the executors instead of the driver)."""

    def __init__(self, inner: Any, policy: UrlPolicy, user_agent: str, budget: FetchBudget, max_area: int,
                 images_dir: str) -> None:
        self.inner, self.policy, self.user_agent, self.images_dir = inner, policy, user_agent, images_dir
        self.budget, self.max_area = budget, max_area
        self.loopback_map = loopback.current_text()  # made on the driver, where the sample server runs

    def __call__(self, row: Any) -> Any:
        honour_netguard()
        loopback.adopt(self.loopback_map)
        install_worker_hooks(self.policy, self.user_agent, self.budget)
        raise_decoder_limits(self.max_area)
        if not isinstance(self.inner.resizer, AreaCheckedResizer):
            self.inner.resizer = AreaCheckedResizer(self.inner.resizer, self.max_area)
        ok, out = self.inner(row)
        if ok:
            name = f"{row[0]:0{self.inner.oom_shard_count}d}"
            try:
                normalise_shard(Path(self.inner.output_folder), name, Path(self.images_dir), self.inner.encode_format)
            except Exception:  # noqa: BLE001 - the driver has the part made by another task
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
def _patched_img2dataset(cfg: DownloadConfig, images_dir: Path) -> Iterator[Any]:
    # ``img2dataset.main`` the attribute is the CLI function (the package re-exports it): get the module
    i2d_main = importlib.import_module("img2dataset.main")

    from pmd.download.i2d_logger import LoggingLoggerProcess

    with _patch_lock:
        orig_dist, orig_signal, orig_logger = i2d_main.pyspark_distributor, i2d_main.signal, i2d_main.LoggerProcess

        def distributor(processes_count, downloader, reader, subjob_size, max_shard_retry):  # type: ignore[no-untyped-def]
            guarded = _GuardedDownloader(downloader, cfg.policy, cfg.user_agent, cfg.fetch_budget, cfg.max_image_area,
                                         str(images_dir))
            return orig_dist(processes_count, guarded, reader, subjob_size, max_shard_retry)

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


def run_img2dataset(spark: Any, url_dir: Path, raw: Path, images: Path, cfg: DownloadConfig) -> None:
    """Download the URLs of the Parquet dataset ``url_dir`` (columns ``url``, ``image_key`` = the URL's
    keys, space separated) into ``raw`` with img2dataset, making ``images`` parts as shards finish.
    Finished shards already in ``raw`` are kept (incremental mode): a rerun fetches only the rest."""
    images.mkdir(parents=True, exist_ok=True)
    _activate_session(spark)
    with _patched_img2dataset(cfg, images) as i2d_main, \
            contextlib.redirect_stdout(LogLines(log, "img2dataset: ")):  # it prints progress
        i2d_main.download(
            url_list=str(url_dir), output_folder=str(raw), input_format="parquet", output_format="webdataset",
            url_col="url", save_additional_columns=["image_key"], distributor="pyspark",
            image_size=cfg.image_size, resize_mode=cfg.resize_mode, resize_only_if_bigger=cfg.resize_only_if_bigger,
            encode_format=cfg.encode_format, encode_quality=cfg.encode_quality, timeout=cfg.timeout,
            retries=cfg.retries, thread_count=cfg.thread_count, processes_count=cfg.processes_count,
            number_sample_per_shard=cfg.samples_per_shard, subjob_size=cfg.subjob_size,
            max_shard_retry=cfg.max_shard_retry, min_image_size=cfg.min_image_size,
            max_aspect_ratio=cfg.max_aspect_ratio, max_image_area=cfg.max_image_area,
            user_agent_token=cfg.robots_token, disallowed_header_directives=list(cfg.disallowed_header_directives),
            extract_exif=False, compute_hash=None, incremental_mode="incremental", enable_wandb=False,
        )
