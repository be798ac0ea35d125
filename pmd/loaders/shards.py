"""Shard lists for streaming: URL expansion, fsspec opening, node/worker splitting, epoch-seeded order.

* ``expand_shards`` accepts a local path, a brace pattern (``shards/pairs-{000000..000009}.tar``), an
  fsspec URL (``s3://``, ``gs://``, ``memory://``, ...), ``a::b`` lists (WebDataset's syntax), a list of
  any of these, or a PMD build directory / its ``manifest.json`` (local or fsspec), whose shards it lists.
* ``open_url`` opens a shard: fsspec for the protocols WebDataset has no handler of its own for, else
  WebDataset's ``gopen``. Importing ``pmd.loaders`` changes no global table; a program that wants
  ``wds.WebDataset("s3://...")`` itself to stream through fsspec calls ``register_fsspec_opener()``.
* Build directories are read through ``pmd.shard.manifest`` (the one manifest reader), and every shard a
  manifest lists is checked as it is read: a missing, empty or short shard (fewer samples or bytes than
  the manifest says), or, with ``verify="sha256"``, one whose bytes differ, is a counted ``shard`` error
  (raised under ``on_error="raise"``), so a damaged build never reads as a smaller one.
* ``consumer_shards`` gives one consumer (node rank × DataLoader worker) its shards for one epoch: the
  shard list is shuffled with a seed made of ``(seed, epoch)`` only — the same permutation on every rank
  and worker, so the split is a partition — then split by node (``RANK``/``WORLD_SIZE`` as set by
  ``torchrun``, or ``torch.distributed``) and by worker (``torch.utils.data.get_worker_info()``, or the
  ``WORKER``/``NUM_WORKERS`` variables). Fewer shards than consumers is an error that says what to do.
* ``resampled_shards`` draws shards with replacement forever, seeded by ``(seed, epoch, rank, worker)``.
* ``iter_tar`` streams a tar's samples (own header parser, 5x faster than ``tarfile``'s stream mode) and
  ``ShardStream`` is the IterableDataset that the pair, image, text and interleaved pipelines share.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import itertools
import posixpath
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Sequence, TypedDict, TypeVar

import torch
from torch.utils.data import IterableDataset
from webdataset import utils as wds_utils
from webdataset.shardlists import expand_urls

from pmd.errors import UserError
from pmd.loaders.errors import CorruptSampleError, CorruptSampleWarning, ErrorCounts, SkipSample, check_on_error, report
from pmd.shard.manifest import MANIFEST_NAME, manifest_shards, shard_entries
from pmd.shard.tar_format import TarFormatError, iter_members  # noqa: F401 - TarFormatError re-exported

T = TypeVar("T")
# ``webdataset.gopen`` the attribute is the function; the module (with the scheme table) is this:
wds_gopen = importlib.import_module("webdataset.gopen")

# Schemes WebDataset already opens itself (curl, subprocess pipes, ...): left alone.
_WDS_OWN_SCHEMES = frozenset({"pipe", "http", "https", "sftp", "ftps", "scp", "ais", "htgs", "hf", "file"})


class NotEnoughShardsError(UserError, ValueError):
    """Fewer shards than nodes × workers: some consumer would get nothing."""


def fsspec_open(url: str, mode: str = "rb", bufsize: int = 8192, **kw) -> IO[bytes]:
    """A WebDataset gopen handler that opens ``url`` with fsspec (any registered protocol)."""
    import fsspec

    return fsspec.open(url, mode).open()


def register_fsspec_opener(protocols: Sequence[str] | None = None) -> list[str]:
    """Register :func:`fsspec_open` in ``webdataset.gopen.gopen_schemes``; returns the schemes registered.

    Only for programs that open URLs with WebDataset itself (``wds.WebDataset("s3://...")``): pmd's
    loaders open fsspec URLs without it (``open_url``), and importing ``pmd.loaders`` never calls it.
    By default: every fsspec protocol WebDataset has no handler for (s3, gs, gcs, az, memory, ...), plus
    ``gs`` (WebDataset's needs the ``gsutil`` binary) and the table's ``__default__`` fallback, so any
    other scheme goes to fsspec too (which names the missing protocol if it does not know it).
    """
    import fsspec

    if protocols is None:
        protocols = sorted(p for p in fsspec.available_protocols() if p not in _WDS_OWN_SCHEMES)
    for proto in protocols:
        wds_gopen.gopen_schemes[proto] = fsspec_open
    wds_gopen.gopen_schemes["__default__"] = fsspec_open
    return list(protocols)


def open_url(url: str) -> IO[bytes]:
    """Open a shard for reading: local paths, ``file://``, WebDataset's schemes and any fsspec URL."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme and scheme not in _WDS_OWN_SCHEMES:
        return fsspec_open(url, "rb")
    return wds_gopen.gopen(url, "rb")


def _is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def _looks_like_build_dir(url: str) -> str | None:
    """The manifest URL if ``url`` is a build directory or its manifest, else None."""
    if url.endswith(MANIFEST_NAME):
        return url
    if _is_remote(url):
        if any(ch in url for ch in "{}*") or url.endswith((".tar", ".tgz", ".tar.gz")):
            return None
        import fsspec

        fs, path = fsspec.core.url_to_fs(url)
        manifest = posixpath.join(url.rstrip("/"), MANIFEST_NAME)
        return manifest if fs.exists(posixpath.join(path, MANIFEST_NAME)) else None
    local = Path(url.removeprefix("file://"))
    if local.is_dir():
        if (local / MANIFEST_NAME).is_file():
            return str(local / MANIFEST_NAME)
        raise UserError(f"{url}: a directory without {MANIFEST_NAME}; pass shard paths or a pmd build directory")
    return None


def expand_shard_entries(source: str | Path | Sequence[str | Path], *,
                         manifest_field: str = "path") -> list[tuple[str, dict[str, Any] | None]]:
    """``(url, manifest row or None)`` for every shard ``source`` names, in order; the row (samples,
    bytes, sha256) is there for shards listed by a build's manifest, None for plain paths and patterns."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    out: list[tuple[str, dict[str, Any] | None]] = []
    for item in items:
        item = str(item)
        manifest = _looks_like_build_dir(item)
        if manifest is None:
            out.extend((u, None) for u in expand_urls(item))
        elif manifest_field == "path":
            out.extend(shard_entries(manifest).items())
        else:
            out.extend((u, None) for u in manifest_shards(manifest, manifest_field))
    if not out:
        raise UserError(f"no shards found in {source!r}")
    return out


def expand_shards(source: str | Path | Sequence[str | Path], *, manifest_field: str = "path") -> list[str]:
    """Every shard URL that ``source`` names, in order (see the module docstring for the accepted forms).

    ``manifest_field`` picks the manifest entry to list for build directories: ``"path"`` (the tars) or
    ``"parquet"`` (their sidecars).
    """
    return [u for u, _ in expand_shard_entries(source, manifest_field=manifest_field)]


@dataclass(frozen=True)
class ConsumerInfo:
    """Who is reading: node ``rank`` of ``world_size``, DataLoader ``worker`` of ``num_workers``."""

    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1

    @property
    def consumers(self) -> int:
        return self.world_size * self.num_workers

    @property
    def consumer(self) -> int:
        """This consumer's index in ``[0, consumers)``."""
        return self.rank * self.num_workers + self.worker


def consumer_info() -> ConsumerInfo:
    """The current rank/world size (``RANK``/``WORLD_SIZE`` from torchrun, or ``torch.distributed``) and
    DataLoader worker (``get_worker_info()``, or ``WORKER``/``NUM_WORKERS``)."""
    rank, world, worker, workers = wds_utils.pytorch_worker_info()
    if not (0 <= rank < world) or not (0 <= worker < workers):
        raise UserError(f"inconsistent rank/worker: rank {rank} of {world}, worker {worker} of {workers}")
    return ConsumerInfo(rank, world, worker, workers)


def rng_for(*parts: object) -> random.Random:
    """A ``random.Random`` seeded from ``parts`` — stable across processes (string seeds are hashed with
    SHA-512 by ``random``, not with Python's per-process ``hash``)."""
    return random.Random(":".join(str(p) for p in parts))


def epoch_order(urls: Sequence[str], *, seed: int, epoch: int | str, shuffle: bool) -> list[str]:
    """The global shard order of one epoch: a permutation seeded by ``(seed, epoch)``, or as given."""
    order = list(urls)
    if shuffle:
        rng_for("shards", seed, epoch).shuffle(order)
    return order


def split_by_node(urls: Sequence[str], info: ConsumerInfo) -> list[str]:
    """Every ``world_size``-th shard from ``rank`` (WebDataset's ``split_by_node``, rank from torchrun's env)."""
    return list(urls)[info.rank :: info.world_size]


def split_by_worker(urls: Sequence[str], info: ConsumerInfo) -> list[str]:
    """Every ``num_workers``-th shard from ``worker`` (WebDataset's ``split_by_worker``)."""
    return list(urls)[info.worker :: info.num_workers]


def consumer_shards(
    urls: Sequence[str], *, seed: int, epoch: int | str, shuffle: bool, info: ConsumerInfo | None = None
) -> list[str]:
    """This consumer's shards for ``epoch``: split by node, then by worker, of the epoch's order."""
    info = info or consumer_info()
    if len(urls) < info.consumers:
        raise NotEnoughShardsError(
            f"{len(urls)} shard(s) for {info.world_size} node(s) x {info.num_workers} DataLoader worker(s) = "
            f"{info.consumers} consumers: every consumer needs at least one shard. Write more, smaller shards, "
            f"use fewer workers or nodes, or pass resampled=True"
        )
    order = epoch_order(urls, seed=seed, epoch=epoch, shuffle=shuffle)
    return split_by_worker(split_by_node(order, info), info)


def resampled_shards(urls: Sequence[str], *, seed: int, epoch: int, info: ConsumerInfo | None = None) -> Iterator[str]:
    """Shards drawn with replacement, forever; each consumer and epoch has its own seeded stream."""
    info = info or consumer_info()
    rng = rng_for("resample", seed, epoch, info.rank, info.worker)
    urls = list(urls)
    while True:
        yield urls[rng.randrange(len(urls))]


@dataclass
class RawSample:
    """One sample as read from a shard: its ``key``, the shard ``url`` and ``members`` (extension -> bytes;
    for text corpora ``{"txt": str}``)."""

    key: str
    url: str
    members: dict[str, bytes | str]


def split_member_name(name: str) -> tuple[str | None, str]:
    """WebDataset's rule: the key is the name up to the first dot of its last path component."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not dot or not stem:
        return None, ""
    return (f"{head}/{stem}" if head else stem), ext


class ShardTally:
    """What a reader took from one shard file: bytes (of the file as stored) and, when asked, their
    sha256, for the comparison with the manifest row once the shard has been read to its end."""

    def __init__(self, sha256: bool = False) -> None:
        self.bytes = 0
        self.hasher = hashlib.sha256() if sha256 else None

    def wrap(self, stream: IO[bytes]) -> IO[bytes]:
        return _TallyingReader(stream, self)  # type: ignore[return-value]


class _TallyingReader:
    def __init__(self, stream: IO[bytes], tally: ShardTally) -> None:
        self._stream, self._tally = stream, tally

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._tally.bytes += len(data)
        if self._tally.hasher is not None:
            self._tally.hasher.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 16):
            pass


def iter_tar(url: str, tally: ShardTally | None = None) -> Iterator[RawSample]:
    """Stream a WebDataset tar: consecutive members sharing a key form one sample.

    A member name seen twice within one sample marks it ``members["__duplicate__"]`` (the decoder
    rejects it). Read errors (truncated tar, bad header, unreachable URL) propagate to the stream, which
    counts them as ``shard`` errors. Compressed tars (``.tar.gz``/``.tgz``) are read through gzip.
    With a ``tally``, the file's bytes are counted (and hashed) to the end, past the archive's end blocks.
    """
    with open_url(url) as raw_stream:
        stream: IO[bytes] = raw_stream
        counted = _TallyingReader(raw_stream, tally) if tally is not None else None
        if counted is not None:
            stream = counted  # type: ignore[assignment]
        if url.endswith((".gz", ".tgz")):
            stream = gzip.GzipFile(fileobj=stream)  # type: ignore[assignment, arg-type]
        current: RawSample | None = None
        for name, data in iter_members(stream):
            key, ext = split_member_name(name)
            if key is None or key.startswith("__"):
                continue
            if current is not None and current.key != key:
                yield current
                current = None
            if current is None:
                current = RawSample(key, url, {})
            ext = ext.lower()
            if ext in current.members:
                current.members["__duplicate__"] = ext.encode()
            current.members[ext] = data
        if current is not None:
            yield current
        if counted is not None:
            counted.drain()


VERIFY_CHOICES = ("none", "samples", "sha256")


def shard_problem(entry: dict[str, Any], samples: int, tally: ShardTally | None) -> str | None:
    """How a fully read shard differs from its manifest row (None when it matches): fewer or more
    samples, other size, other sha256 (when hashed)."""
    want = int(entry.get("samples", -1))
    if tally is not None and tally.bytes == 0:
        return f"empty shard (0 bytes; the manifest lists {want} samples, {entry.get('bytes')} bytes)"
    if samples != want:
        return f"{'short' if samples < want else 'long'} shard: {samples} of the {want} samples the manifest lists"
    if tally is not None and entry.get("bytes") is not None and tally.bytes != int(entry["bytes"]):
        return f"shard size {tally.bytes} bytes, the manifest says {entry['bytes']}"
    if tally is not None and tally.hasher is not None and entry.get("sha256"):
        digest = tally.hasher.hexdigest()
        if digest != entry["sha256"]:
            return f"sha256 {digest[:12]}… differs from the manifest's {str(entry['sha256'])[:12]}…"
    return None


def shuffle_buffer(items: Iterator[T], size: int, rng: random.Random) -> Iterator[T]:
    """Yield ``items`` in a random order using a buffer of ``size`` (WebDataset's sample shuffle)."""
    buf: list[T] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        i = rng.randrange(size)
        buf[i], item = item, buf[i]
        yield item
    rng.shuffle(buf)
    yield from buf


Decoder = Callable[[RawSample, random.Random], dict[str, Any]]


class StreamOptions(TypedDict, total=False):
    """The stream options every pipeline (``pair_pipeline``, ``m3w_pipeline``, ...) hands to
    :class:`ShardStream` unchanged; their defaults and meaning are ShardStream's (one place)."""

    shuffle: bool
    shuffle_buffer: int
    resampled: bool
    seed: int
    epoch_length: int | None
    on_error: str
    verify: str


class ShardStream(IterableDataset):
    """An iterable dataset over shards: split by node and worker, shard order seeded per epoch, a sample
    shuffle buffer, a decode step whose failures follow the corrupt-sample policy, optional resampling
    and fixed epoch length.

    Options (the pipelines pass them through as :class:`StreamOptions`): ``shuffle`` (shards per
    epoch, and samples through a ``shuffle_buffer``), ``resampled`` (shards with replacement, forever),
    ``seed``, ``epoch_length`` (samples per consumer and iteration), ``on_error`` (``"warn"``: skip,
    count, warn; ``"raise"``), ``verify`` (below).

    Shards listed by a build manifest are compared with it after each full read (``verify="samples"``:
    sample count and, for pmd's tar reader, bytes; ``"sha256"`` adds the content hash; ``"none"``
    trusts them): a missing, empty, short or altered shard is one counted ``shard`` error.

    Epochs: :meth:`set_epoch` (call it before each epoch, as with ``DistributedSampler``; it reaches
    persistent and non-persistent DataLoader workers alike because the value lives in shared memory).
    Without it, each new iteration of the same object counts as the next epoch (in-process iteration,
    or ``persistent_workers=True``).
    """

    allow_record_split = False  # text corpora override: fewer files than consumers -> split records

    def __init__(
        self,
        urls: str | Path | Sequence[str | Path],
        *,
        decode: Decoder,
        reader: Callable[[str], Iterator[RawSample]] = iter_tar,
        shuffle: bool = True,
        shuffle_buffer: int = 1000,
        resampled: bool = False,
        seed: int = 0,
        epoch_length: int | None = None,
        on_error: str = "warn",
        verify: str = "samples",
    ) -> None:
        super().__init__()
        entries = expand_shard_entries(urls)
        self.urls = [u for u, _ in entries]
        if verify not in VERIFY_CHOICES:
            raise ValueError(f"verify must be one of {VERIFY_CHOICES}, got {verify!r}")
        self.verify = verify
        # manifest rows of the shards a build lists (checked after each full read of a shard)
        self.expected: dict[str, dict[str, Any]] = {u: e for u, e in entries if e is not None} if verify != "none" else {}
        self.decode = decode
        self.reader = reader
        self.shuffle = shuffle
        self.shuffle_buffer = int(shuffle_buffer)
        self.resampled = resampled
        self.seed = int(seed)
        if epoch_length is not None and epoch_length <= 0:
            raise ValueError(f"epoch_length must be positive, got {epoch_length}")
        self.epoch_length = epoch_length
        self.on_error = check_on_error(on_error)
        self.errors = ErrorCounts()
        self._explicit_epoch = torch.full((1,), -1, dtype=torch.int64)
        try:
            self._explicit_epoch.share_memory_()
        except (RuntimeError, OSError):
            pass
        self._iterations = 0

    # -- epochs -------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next iterations (shard order, buffer and resampling seeds)."""
        if epoch < 0:
            raise ValueError("epoch must be >= 0")
        self._explicit_epoch[0] = int(epoch)

    def with_epoch(self, n: int) -> "ShardStream":
        """Make each iteration yield exactly ``n`` samples per consumer (WebDataset's ``with_epoch``):
        shards are re-read (next pass, new order) when they run out. Returns ``self``."""
        if n <= 0:
            raise ValueError(f"epoch length must be positive, got {n}")
        self.epoch_length = int(n)
        return self

    def _next_epoch(self) -> int:
        explicit = int(self._explicit_epoch[0])
        if explicit >= 0:
            return explicit
        epoch = self._iterations
        self._iterations += 1
        return epoch

    # -- iteration ------------------------------------------------------------------------------
    def _fail(self, err: CorruptSampleError, info: ConsumerInfo) -> None:
        report(err, on_error=self.on_error, counts=self.errors, slot=info.worker)

    def _units(self, info: ConsumerInfo, epoch: int) -> Iterator[tuple[str, int | None]]:
        """(url, record stride or None) in this consumer's reading order; endless when resampling or
        with a fixed epoch length."""
        if self.resampled:
            for url in resampled_shards(self.urls, seed=self.seed, epoch=epoch, info=info):
                yield url, None
            return
        passes = itertools.count() if self.epoch_length else (0,)
        for p in passes:
            sub = f"{epoch}" if p == 0 else f"{epoch}.{p}"
            if self.allow_record_split and len(self.urls) < info.consumers:
                for url in epoch_order(self.urls, seed=self.seed, epoch=sub, shuffle=self.shuffle):
                    yield url, info.consumer
            else:
                for url in consumer_shards(self.urls, seed=self.seed, epoch=sub, shuffle=self.shuffle, info=info):
                    yield url, None

    def _read(self, url: str) -> tuple[Iterator[RawSample], ShardTally | None]:
        """The shard's samples and, for a manifest-listed shard read by ``iter_tar``, its byte tally."""
        if url in self.expected and self.reader is iter_tar:
            tally = ShardTally(sha256=self.verify == "sha256")
            return iter_tar(url, tally), tally
        return self.reader(url), None

    def _raw(self, info: ConsumerInfo, epoch: int) -> Iterator[RawSample]:
        empty_units = 0
        for url, stride_index in self._units(info, epoch):
            n = 0
            read = 0
            last_key = None
            entry = self.expected.get(url)
            problem = None
            try:
                samples, tally = self._read(url)
                for i, raw in enumerate(samples):
                    read = i + 1
                    last_key = raw.key
                    if stride_index is not None and i % info.consumers != stride_index:
                        continue
                    n += 1
                    yield raw
                if entry is not None:
                    problem = shard_problem(entry, read, tally)
            except CorruptSampleError as err:
                self._fail(err.located(url, err.key or last_key), info)
            except FileNotFoundError as exc:
                listed = f" (the manifest lists {entry.get('samples')} samples)" if entry is not None else ""
                self._fail(CorruptSampleError("shard", f"missing shard{listed}: {exc}", shard=url), info)
            except Exception as exc:  # unreadable shard: count it, go on with the next one
                after = f" (after key {last_key})" if last_key else ""
                self._fail(CorruptSampleError("shard", f"{type(exc).__name__}: {exc}{after}", shard=url), info)
            if problem:  # read to its end, but not what the build wrote
                self._fail(CorruptSampleError("shard", problem, shard=url), info)
            empty_units = 0 if n else empty_units + 1
            if empty_units >= max(len(self.urls), 1) and (self.resampled or self.epoch_length):
                # a full round of shards gave nothing: stop instead of spinning forever
                warnings.warn(f"pmd.loaders: no readable samples in {len(self.urls)} shard(s); stopping", CorruptSampleWarning)
                return

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = consumer_info()
        epoch = self._next_epoch()
        raw: Iterator[RawSample] = self._raw(info, epoch)
        if self.shuffle and self.shuffle_buffer > 1:
            raw = shuffle_buffer(raw, self.shuffle_buffer, rng_for("buffer", self.seed, epoch, info.rank, info.worker))
        rng = rng_for("decode", self.seed, epoch, info.rank, info.worker)
        out = self._decoded(raw, rng, info)
        if self.epoch_length:
            out = itertools.islice(out, self.epoch_length)
        return out

    def _decoded(self, raw: Iterator[RawSample], rng: random.Random, info: ConsumerInfo) -> Iterator[dict[str, Any]]:
        for sample in raw:
            try:
                if "__duplicate__" in sample.members:
                    dup = sample.members["__duplicate__"]
                    raise CorruptSampleError("other", f"member .{dup.decode() if isinstance(dup, bytes) else dup} appears twice")
                out = self.decode(sample, rng)
            except SkipSample:
                self.errors.add("filtered", info.worker)
                continue
            except CorruptSampleError as err:
                self._fail(err.located(sample.url, sample.key), info)
                continue
            except Exception as exc:
                self._fail(CorruptSampleError("other", f"{type(exc).__name__}: {exc}", shard=sample.url, key=sample.key), info)
                continue
            yield out

