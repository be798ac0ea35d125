"""The PMD corpus build: ingest → filter → dedup → download → dedup_images → shard, then stats.

``pmd.pairs.run.build(cfg, out_dir)`` runs it on a SparkSession; each stage lives in its own small
module and writes ``DIR/stages/<stage>/`` (data, counters, a ``_SUCCESS`` marker written last).
"""
