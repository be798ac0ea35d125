"""Stage 4, download: the pure parts (config, fetch keys, result columns); Spark wiring in
``pmd.spark.pairs.download``.

* URL images: ``pmd.download.download_urls`` (img2dataset's pyspark distributor on the session,
  URL guard, honest User-Agent, noai-style directives). A Visual Genome region given by URL is
  fetched once uncropped (key of the bare URL, ``fetch_key``) and cut with ``process_crop_batch``.
* Local paths and archive members: ``pmd.download.local_batches`` (no network).

Every unique image key ends with one result row (``download_status`` columns + ``jpg``) in
``stages/download/images``; every pair then leaves the stage ``kept`` (downloaded) or ``failed``
with the image's error class.
"""

from __future__ import annotations

from typing import Any, Iterator

import pyarrow as pa

from pmd.pairs.config import BuildConfig
from pmd.config import load as load_config
from pmd.records import ImageRef

RESULT_COLUMNS = ("image_key", "url", "status", "error", "error_message", "width", "height",
                  "original_width", "original_height", "sha256", "attempts", "jpg")
CROP_COLS = ("crop_x", "crop_y", "crop_width", "crop_height")


def download_config(cfg: BuildConfig) -> Any:
    from pmd.download import DownloadConfig

    return load_config(DownloadConfig, dict(cfg.download))


def fetch_key(url: str) -> str:
    """Key under which a URL is fetched (uncropped): the image key of the bare URL."""
    return ImageRef(url=url).key()


#: ``fetch_keys_fn`` output: a URL image with the key it is fetched under (its own, or the bare URL's
#: for a crop) - the download requests are its distinct ``(fetch_key, url)``.
FETCH_SCHEMA = pa.schema([pa.field("image_key", pa.string()), pa.field("fetch_key", pa.string()),
                          pa.field("url", pa.string())] + [pa.field(c, pa.int32()) for c in CROP_COLS])


def fetch_keys_fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``: URL images ``image_key, image_url, crop_*`` → ``FETCH_SCHEMA`` rows."""
    for b in batches:
        d = b.to_pydict()
        fks = [k if w is None else fetch_key(u) for k, u, w in zip(d["image_key"], d["image_url"], d["crop_width"])]
        yield pa.RecordBatch.from_pydict({"image_key": d["image_key"], "fetch_key": fks, "url": d["image_url"],
                                          **{c: d[c] for c in CROP_COLS}}, schema=FETCH_SCHEMA)


def url_requests(images: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Unique URL images → (fetch requests ``image_key, url``, crop jobs ``image_key, fetch_key, url, crop...``).

    Pure reference of the Spark job in ``pmd.spark.pairs.download.url_requests_df`` (tests compare)."""
    d = images.to_pydict()
    fetch: dict[str, str] = {}
    crops: dict[str, list[Any]] = {k: [] for k in ("image_key", "fetch_key", "url", *CROP_COLS)}
    for i, url in enumerate(d["image_url"]):
        if d["crop_width"][i] is None:
            fetch[d["image_key"][i]] = url
        else:
            fk = fetch_key(url)
            fetch[fk] = url
            for k, v in (("image_key", d["image_key"][i]), ("fetch_key", fk), ("url", url)):
                crops[k].append(v)
            for c in CROP_COLS:
                crops[c].append(d[c][i])
    keys = sorted(fetch)
    req = pa.table({"image_key": pa.array(keys, pa.string()), "url": pa.array([fetch[k] for k in keys], pa.string())})
    return req, pa.table(crops, schema=pa.schema([("image_key", pa.string()), ("fetch_key", pa.string()),
                                                  ("url", pa.string())] + [(c, pa.int32()) for c in CROP_COLS]))
