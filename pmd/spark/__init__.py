"""The one Spark layer of ``pmd``: session, batch mapping, stage machinery, connected components.

Everything that touches ``pyspark`` lives here (plus the thin ``pipelines/``): records flow through
pure functions elsewhere in ``pmd/`` and reach Spark only as ``mapInArrow`` callables. Modules:

* ``session``    - ``spark_session``: the one session factory (CLI, pipelines, both builds).
* ``batches``    - ``map_batches``: ``mapInArrow`` with an Arrow output schema; ``write_parts``: tasks that
  write their own Parquet parts and return only counts (ingest, filter).
* ``stages``     - ``StageDir`` and ``Runner``: data, counters, ``_SUCCESS`` marker last; resume.
* ``components`` - connected components of an edge DataFrame (large-star / small-star).
* ``progress``   - progress lines while a stage's Spark jobs run.
* ``pairs``      - the PMD build's DataFrame stages (``pmd.pairs`` holds their pure functions).
"""
