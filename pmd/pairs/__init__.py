"""The PMD corpus build's pure parts: configs, row layouts, outcomes, counting and the batch functions
each stage runs on the executors (ingest → filter → dedup → download → dedup_images → shard).

They need no Spark: ``pmd.spark.pairs`` wires them into DataFrame jobs and
``pmd.spark.pairs.run.build(cfg, out_dir)`` runs the stages, each writing ``DIR/stages/<stage>/``
(data, counters, a ``_SUCCESS`` marker written last).
"""
