"""M3W-style interleaved web documents (Flamingo M3W / OBELICS): WARC reading, single-pass DOM
extraction, node/document filters with stored metrics, dedup, image join-back and sharding.

Pure functions live here; the Spark job is ``pipelines/interleaved_build.py``.
"""

from pmd.interleaved.extract import extract_document

__all__ = ["extract_document"]
