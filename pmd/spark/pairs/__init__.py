"""The PMD build's DataFrame stages: ingest → filter → dedup → download → dedup_images → shard → stats.

Each module wires one stage's pure batch functions (``pmd.pairs.*``) into Spark jobs; ``run``
orders them with the shared ``pmd.spark.stages.Runner``. No module here collects per-record data
to the driver: the driver plans (input units, shard count), counts and commits.
"""
