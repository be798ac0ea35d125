"""Getting image bytes: the URL guard, img2dataset on Spark, local/archive images with crops, and
content dedup. Every requested image key ends with exactly one ``download_status`` row."""

from pmd.download.content_dedup import DHASH_SCHEMA, canonical_images, dhash64, dhash_batch, hamming
from pmd.download.engine import (IMAGES_SCHEMA, DownloadConfig, DownloadResult, download_urls,
                                 status_counts)
from pmd.download.errors import classify_error, is_transient
from pmd.download.guard import UrlPolicy, check_url, check_urls
from pmd.download.local import (LOCAL_OUTPUT_SCHEMA, crop_downloaded, local_batches, process_crop_batch,
                                process_local_batch, read_local_image)

__all__ = ["DHASH_SCHEMA", "dhash_batch", "IMAGES_SCHEMA", "LOCAL_OUTPUT_SCHEMA", "DownloadConfig", "DownloadResult", "UrlPolicy",
           "canonical_images", "check_url", "check_urls", "classify_error", "crop_downloaded", "dhash64",
           "download_urls", "hamming", "is_transient", "local_batches", "process_crop_batch",
           "process_local_batch", "read_local_image", "status_counts"]
