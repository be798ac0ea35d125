"""Getting image bytes: the URL guard, img2dataset on Spark, local/archive images with crops, and
content dedup. Every requested image key ends with exactly one ``download_status`` row.

Modules, one idea each:

* ``engine``              - ``download_urls``: the plan of one download, every step a Spark job;
* ``request_set``         - requests collapsed by key, conflicts, fingerprint (Spark aggregates);
* ``guard``               - the URL guard (SSRF), and ``guard_partition`` that runs it on executors;
* ``status_table``        - guard verdicts + img2dataset metadata + images parts → the status table;
* ``img2dataset_adapter`` - img2dataset on the caller's session, our hooks in every task;
* ``fetch_hooks``         - the worker's urllib opener: redirects re-checked, peer check at connect
  (DNS rebinding), honest User-Agent, byte budget and whole-fetch deadline;
* ``image_area``          - the pixel budget, checked from the header before decoding;
* ``raw_shards``          - img2dataset's shards → our images parts;
* ``i2d_logger`` / ``process_hygiene`` - img2dataset's statistics process, logged and dying with its parent;
* ``config``, ``errors``  - ``DownloadConfig``; stable error classes;
* ``local``, ``content_dedup`` - local/archive images and crops; sha256/dHash dedup.
"""

from pmd.download.content_dedup import DHASH_SCHEMA, canonical_images, dhash64, dhash_batch, hamming
from pmd.download.config import DownloadConfig, FetchBudget
from pmd.download.engine import DownloadResult, download_urls
from pmd.download.raw_shards import IMAGES_SCHEMA
from pmd.download.status_table import status_counts
from pmd.download.errors import classify_error, is_transient
from pmd.download.guard import UrlPolicy, check_url, check_urls, guard_partition
from pmd.download.local import (LOCAL_OUTPUT_SCHEMA, crop_downloaded, local_batches, process_crop_batch,
                                process_local_batch, read_local_image)

__all__ = ["DHASH_SCHEMA", "dhash_batch", "IMAGES_SCHEMA", "LOCAL_OUTPUT_SCHEMA", "DownloadConfig", "DownloadResult", "FetchBudget",
           "UrlPolicy",
           "canonical_images", "check_url", "check_urls", "classify_error", "crop_downloaded", "dhash64",
           "download_urls", "guard_partition", "hamming", "is_transient", "local_batches", "process_crop_batch",
           "process_local_batch", "read_local_image", "status_counts"]
