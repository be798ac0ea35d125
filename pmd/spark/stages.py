"""The stage machinery both builds share: ``DIR/stages/<stage>/`` directories and the ``Runner``.

A stage writes ``data/`` (Parquet, one row per input record with its ``outcome``), then
``counters.json``, then ``_SUCCESS`` (JSON with the stage's config fingerprint) last. A rerun skips
a stage whose marker carries the same fingerprint; a killed stage has no marker and is redone from
scratch. The counters are counted from the stage's rows (``source, outcome, reason`` groups) and
reconciled against what the previous stage kept, so a join that loses or duplicates rows fails the
build naming the stage and source instead of passing quietly.

Two ways to count. A stage whose data Spark writes is counted by a Spark job over what it wrote
(``count_book``). A stage whose Python tasks write their own part files (``pmd.spark.batches.
write_parts``: no Arrow-to-JVM copy, no JVM Parquet writer, no re-read) returns ``TaskCounts``,
the groups its tasks counted in the batches they wrote; the Runner then checks that ``data/``
holds exactly the part files the tasks reported, each with the rows the tasks say it has (Parquet
footers), and books those counts (``task_book``).

The ``Runner`` is generic: the build passes its fingerprint function (config → stage hash) and its
book function (pure: outcome counts → ``CounterBook``). Paths may be local or fsspec URLs
(``s3://``); Spark gets the ``s3a://`` spelling.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pmd.counters import CounterBook, ReconciliationError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: ``(source, outcome, reason, n)``: what a stage's rows say, counted by Spark.
OutcomeCount = tuple[str, str, "str | None", int]
#: Pure: ``(stage, outcome counts, per-source inputs or None) → book`` (None: input = outputs).
BookFn = Callable[[str, list[OutcomeCount], "dict[str, int] | None"], CounterBook]


# -- files ------------------------------------------------------------------------------------

def fs_and_path(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])


def spark_path(url: str) -> str:
    """The spelling Spark's Hadoop filesystems understand (s3:// → s3a://, local → absolute)."""
    if url.startswith("s3://"):
        return "s3a://" + url[len("s3://"):]
    if "://" in url:
        return url
    return os.path.abspath(url)


def exists(url: str) -> bool:
    fs, p = fs_and_path(url)
    return fs.exists(p)


def write_bytes_atomic(url: str, data: bytes) -> None:
    """Local: temp file + rename. Object stores: a single PUT is already all-or-nothing."""
    fs, p = fs_and_path(url)
    parent = p.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        tmp = f"{p}.tmp-{uuid.uuid4().hex}"
        with fs.open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
    else:
        with fs.open(p, "wb") as f:
            f.write(data)


class ParquetPart:
    """One Parquet file written so that it appears whole or not at all: ``write`` batches, then
    ``commit`` (or ``abort``); ``options``: ``pyarrow.parquet.ParquetWriter`` keywords (snappy,
    pyarrow's default, as Spark's). Several can be open at once (a task writing two stages' parts).

    For a file written by a Spark task, which Spark may run twice (a retry, a speculative copy):
    the name and content depend on the task's input only, so a second attempt replaces the file
    with the same bytes. Local: a hidden temp name in the same directory (Spark's reader and
    ``part_files`` skip names starting with ``.``), renamed over the final name. Object stores:
    the file is built in memory and PUT once (``write_bytes_atomic``), as a streamed multipart
    upload would be completed even when the task fails mid-way.
    """

    def __init__(self, url: str, schema: "pa.Schema", options: dict[str, Any] | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.url, self.rows = url, 0
        fs, self._path = fs_and_path(url)
        self._local = isinstance(fs, LocalFileSystem)
        if self._local:
            parent, name = self._path.rsplit("/", 1)
            os.makedirs(parent, exist_ok=True)
            self._sink: Any = f"{parent}/.{name}.tmp-{uuid.uuid4().hex}"
        else:
            self._sink = pa.BufferOutputStream()
        self._writer = pq.ParquetWriter(self._sink, schema, **(options or {}))

    def write(self, batch: "pa.RecordBatch") -> None:
        """Append one batch (an empty one is skipped: no empty row group)."""
        if batch.num_rows:
            self._writer.write_batch(batch)
            self.rows += batch.num_rows

    def commit(self) -> int:
        """Close the file and make it appear under its name; returns its rows."""
        try:
            self._writer.close()
            if self._local:
                os.replace(self._sink, self._path)
            else:
                write_bytes_atomic(self.url, self._sink.getvalue().to_pybytes())
        finally:
            self._remove_temp()
        return self.rows

    def abort(self) -> None:
        """Drop what was written (a local temp file is removed; nothing appears)."""
        try:
            self._writer.close()
        finally:
            self._remove_temp()

    def _remove_temp(self) -> None:
        if self._local and os.path.exists(self._sink):
            os.remove(self._sink)


def write_parquet_atomic(url: str, batches: Iterable["pa.RecordBatch"], schema: "pa.Schema",
                         seen: Callable[["pa.RecordBatch"], None] | None = None,
                         options: dict[str, Any] | None = None) -> int:
    """Write ``batches`` as one Parquet file at ``url`` (a ``ParquetPart``: whole or not at all);
    returns its rows, and passes each non-empty batch to ``seen`` (counting) as it is written."""
    part = ParquetPart(url, schema, options)
    try:
        for b in batches:
            if b.num_rows:
                part.write(b)
                if seen is not None:
                    seen(b)
    except BaseException:
        part.abort()
        raise
    return part.commit()


def part_names(url: str) -> list[str]:
    """The Parquet files directly in ``url``, sorted: the names Spark's reader would read (hidden
    ``.``/``_`` files, such as a killed task's temp file, are skipped)."""
    fs, p = fs_and_path(url)
    names = (f.rstrip("/").rsplit("/", 1)[-1] for f in fs.ls(p, detail=False))
    return sorted(n for n in names if not n.startswith((".", "_")) and n.endswith(".parquet"))


def part_files(url: str) -> dict[str, int]:
    """``{name: rows}`` of ``part_names(url)``, the rows from each file's footer."""
    import pyarrow.parquet as pq

    fs, p = fs_and_path(url)
    out: dict[str, int] = {}
    for name in part_names(url):
        with fs.open(f"{p.rstrip('/')}/{name}", "rb") as fh:
            out[name] = pq.read_metadata(fh).num_rows
    return out


def write_json_atomic(url: str, obj: Any) -> None:
    write_bytes_atomic(url, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8"))


def read_json(url: str) -> Any:
    fs, p = fs_and_path(url)
    with fs.open(p, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def remove(url: str) -> None:
    fs, p = fs_and_path(url)
    if fs.exists(p):
        fs.rm(p, recursive=True)


def on_executor(spark: "SparkSession", fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` once, in one Spark task, for file work whose memory grows with the records
    (merging a table's part files into one, a report that reads them back): on the driver it would
    raise the driver's peak with the build's size, and the driver holds no per-record data. ``fn`` and
    its arguments must pickle, and the files it touches must be on storage the executors share (as
    the build's outputs already are). ``fn`` must be idempotent: Spark may retry the task."""
    import pyarrow as pa

    from pmd.spark.batches import map_batches

    schema = pa.schema([("done", pa.bool_())])

    def task(batches):  # type: ignore[no-untyped-def]
        for _ in batches:  # the one input row
            pass
        fn(*args)
        yield pa.record_batch([pa.array([True])], schema=schema)

    map_batches(spark.range(0, 1, numPartitions=1), task, schema).collect()


@dataclass(frozen=True)
class StageDir:
    """``out_dir/stages/<stage>/``: ``data/`` (and other datasets), ``counters.json``, ``_SUCCESS``."""

    out_dir: str
    stage: str

    @property
    def path(self) -> str:
        return join(self.out_dir, "stages", self.stage)

    def sub(self, name: str) -> str:
        return join(self.path, name)

    @property
    def data(self) -> str:
        return self.sub("data")

    @property
    def marker(self) -> str:
        return self.sub("_SUCCESS")

    def is_done(self, fingerprint: str) -> bool:
        if not exists(self.marker):
            return False
        try:
            return read_json(self.marker).get("fingerprint") == fingerprint
        except (ValueError, OSError):
            return False

    def reset(self) -> None:
        """Start the stage afresh: whatever a killed or outdated run left is removed."""
        remove(self.path)

    def counters(self) -> CounterBook:
        return CounterBook.from_list(read_json(self.sub("counters.json")))

    def commit(self, fingerprint: str, counters: CounterBook, extra: dict[str, Any] | None = None) -> None:
        """Counters, then the marker: a stage without its marker is unfinished, whatever else is there."""
        write_json_atomic(self.sub("counters.json"), counters.to_list())
        write_json_atomic(self.marker, {"stage": self.stage, "fingerprint": fingerprint, **(extra or {})})

    def info(self) -> dict[str, Any]:
        return read_json(self.marker)


# -- counting ---------------------------------------------------------------------------------

def count_inputs(df: "DataFrame", by: str = "source") -> dict[str, int]:
    """Rows per ``by`` value (a handful of groups: the driver gets one row per source)."""
    return {r[by]: int(r["count"]) for r in df.groupBy(by).count().collect()}


def count_outcomes(df: "DataFrame", by: str = "source") -> list[OutcomeCount]:
    """``(source, outcome, reason, n)`` groups of a stage's rows, sorted."""
    rows = df.groupBy(by, "outcome", "reason").count().collect()
    return sorted(((r[by], r["outcome"], r["reason"], int(r["count"])) for r in rows),
                  key=lambda t: (t[0], t[1], t[2] or ""))


@dataclass(frozen=True)
class TaskCounts:
    """What a stage's Python tasks wrote, as they counted it: ``(source, outcome, reason, n)``
    groups summed over the tasks (``counts``) and ``{part file name: rows}`` (``files``).

    A ``work`` function that returns one tells the ``Runner`` to book these counts instead of
    counting the stage's data with a Spark job; the files are checked against ``data/`` first.
    Spark keeps the result of exactly one attempt of each task, so a retried task is counted once.
    """

    counts: tuple[OutcomeCount, ...]
    files: dict[str, int]

    @staticmethod
    def from_rows(rows: Iterable[tuple[str, "str | None", "str | None", "str | None", int]]) -> "TaskCounts":
        """From the tasks' ``(file, source, outcome, reason, n)`` rows (an empty file: one row with
        ``source`` None and n 0)."""
        from collections import Counter

        groups: Counter = Counter()
        files: dict[str, int] = {}
        for file, source, outcome, reason, n in rows:
            files[file] = files.get(file, 0) + int(n)
            if source is not None:
                groups[(source, outcome, reason)] += int(n)
        counts = sorted(((s, o, r, n) for (s, o, r), n in groups.items()), key=lambda t: (t[0], t[1], t[2] or ""))
        return TaskCounts(tuple(counts), files)


def check_parts(stage: str, data_url: str, files: dict[str, int]) -> None:
    """``data_url`` holds exactly ``files`` (names and row counts), or ``ReconciliationError``: a part
    a task reported but did not leave, a stray part nobody reported (it would be read downstream
    and counted nowhere), or a part whose rows differ from its task's count."""
    on_disk = part_files(data_url)
    if on_disk != files:
        missing = sorted(set(files) - set(on_disk))
        stray = sorted(set(on_disk) - set(files))
        differ = sorted(f"{n}: tasks {files[n]}, file {on_disk[n]}" for n in set(files) & set(on_disk)
                        if files[n] != on_disk[n])
        raise ReconciliationError(f"stage {stage!r}: {data_url} does not hold what its tasks wrote "
                                  f"(missing {missing[:5]}, stray {stray[:5]}, rows differ {differ[:5]})")


# -- running ----------------------------------------------------------------------------------

class Runner:
    """Runs stages in order; each stage commits data, counters and its marker, in that order.

    ``fingerprint(stage)`` hashes the config parts the stage (and the ones before it) depend on;
    ``book(stage, counts, inputs)`` turns Spark's outcome counts into a reconciled-checkable book.
    ``progress`` (optional) is a context-manager factory ``(spark, stage) → ctx`` around each stage.
    """

    def __init__(self, spark: "SparkSession", out_dir: str, fingerprint: Callable[[str], str], book: BookFn,
                 progress_interval: float = 5.0, kept_outcome: str = "kept", by: str = "source") -> None:
        self.spark, self.out_dir = spark, out_dir
        self.fingerprint, self.book_fn = fingerprint, book
        self.progress_interval, self.kept_outcome, self.by = progress_interval, kept_outcome, by
        self.book = CounterBook()
        self.timings: dict[str, float] = {}
        self.skipped: list[str] = []

    def sd(self, stage: str) -> StageDir:
        return StageDir(self.out_dir, stage)

    def read(self, stage: str, sub: str = "data") -> "DataFrame":
        return self.spark.read.parquet(spark_path(self.sd(stage).sub(sub)))

    def kept(self, stage: str) -> "DataFrame":
        return self.read(stage).where(f"outcome = '{self.kept_outcome}'")

    def count_book(self, stage: str, out_df: "DataFrame", inputs: "dict[str, int] | DataFrame | None") -> CounterBook:
        """The stage's counters counted from ``out_df``, reconciled (raises ``ReconciliationError``).

        ``inputs``: per-source input counts, or a DataFrame of input rows to count, or None
        (the first stage: input = outcomes)."""
        if inputs is not None and not isinstance(inputs, dict):
            inputs = count_inputs(inputs, self.by)
        book = self.book_fn(stage, count_outcomes(out_df, self.by), inputs)
        book.check_reconciled()
        return book

    def task_book(self, stage: str, data_url: str, done: TaskCounts, inputs: "dict[str, int] | None") -> CounterBook:
        """The stage's counters from its tasks' counts, after checking ``data_url`` holds exactly the
        files they reported; reconciled (raises ``ReconciliationError``)."""
        check_parts(stage, data_url, done.files)
        book = self.book_fn(stage, list(done.counts), inputs)
        book.check_reconciled()
        return book

    def stage(self, name: str, work: Callable[[StageDir], "TaskCounts | None"], input_stage: str | None,
              extra: Callable[[], dict[str, Any]] | None = None) -> None:
        """Run ``work(stage_dir)`` unless the stage's marker matches; count, reconcile, commit.

        ``work`` returning ``TaskCounts`` (its tasks wrote their own parts and counted them) is
        booked from those counts; anything else is counted by a Spark job over ``data/``."""
        from pmd.spark.progress import SparkStageProgress, report_done

        sd = self.sd(name)
        fp = self.fingerprint(name)
        if sd.is_done(fp):
            log.info("%s: already done (marker %s), skipping", name, sd.marker)
            self.book = self.book.merge(sd.counters())
            self.skipped.append(name)
            return
        sd.reset()
        t0 = time.monotonic()
        log.info("%s: starting", name)
        with SparkStageProgress(self.spark, name, self.progress_interval):
            done = work(sd)
        # input = what the previous stage kept (its own books, counted from its rows); the outputs are
        # counted from this stage's rows: a join that loses or duplicates rows cannot balance
        inputs = None if input_stage is None else {c.source: c.kept for c in self.book if c.stage == input_stage}
        if isinstance(done, TaskCounts):
            book = self.task_book(name, sd.data, done, inputs)
        else:
            book = self.count_book(name, self.read(name), inputs)
        secs = time.monotonic() - t0
        tot = book.total(name)
        report_done(name, tot.input, tot.kept, tot.n_dropped, tot.n_failed, secs)
        sd.commit(fp, book, {"seconds": round(secs, 3), **(extra() if extra else {})})
        self.timings[name] = secs
        self.book = self.book.merge(book)

    def stage_pair(self, first: str, second: str,
                   both: Callable[[StageDir, StageDir], "tuple[TaskCounts, TaskCounts]"],
                   second_alone: Callable[[StageDir], "TaskCounts | None"], input_stage: str | None = None) -> None:
        """Two consecutive stages made in one pass (``both(first_dir, second_dir)``: one job whose tasks
        write both stages' parts), committed as two stages: the first's counters and marker, then the
        second's, each booked and reconciled as ``stage`` would (the second's input is what the first
        kept). A rerun skips what is done: with the first stage done, the second runs alone
        (``second_alone``, given the first's marker); with the first not done, both are redone. The
        wall time is the first stage's marker's ``seconds``; the second's says ``made_with``."""
        from pmd.spark.progress import SparkStageProgress, report_done

        sd1, sd2 = self.sd(first), self.sd(second)
        fp1, fp2 = self.fingerprint(first), self.fingerprint(second)
        if sd1.is_done(fp1):
            self.stage(first, lambda sd: None, input_stage)  # skipped: its marker matches
            self.stage(second, second_alone, first)
            return
        sd2.reset()
        sd1.reset()
        t0 = time.monotonic()
        log.info("%s + %s: starting", first, second)
        with SparkStageProgress(self.spark, f"{first}+{second}", self.progress_interval):
            done1, done2 = both(sd1, sd2)
        # the first commits before the second is checked: a second that does not balance leaves the
        # first done, and the rerun makes the second alone
        inputs = None if input_stage is None else {c.source: c.kept for c in self.book if c.stage == input_stage}
        secs = time.monotonic() - t0
        for name, sd, fp, done, other in ((first, sd1, fp1, done1, second), (second, sd2, fp2, done2, first)):
            book = self.task_book(name, sd.data, done, inputs)
            tot = book.total(name)
            report_done(name, tot.input, tot.kept, tot.n_dropped, tot.n_failed, secs)
            sd.commit(fp, book, {"seconds": round(secs, 3) if name == first else 0.0, "made_with": other})
            self.timings[name] = secs if name == first else 0.0
            self.book = self.book.merge(book)
            inputs = {c.source: c.kept for c in book if c.stage == name}

    def check_chain(self, stages: Sequence[str]) -> None:
        check_books(self.book, stages)


def check_books(book: CounterBook, stages: Sequence[str]) -> None:
    """Every stage balances, and each stage took in exactly what the one before it kept."""
    book.check_reconciled()
    present = [s for s in stages if any(c.stage == s for c in book)]
    for up, down in zip(present, present[1:]):
        book.check_chain(up, down)
