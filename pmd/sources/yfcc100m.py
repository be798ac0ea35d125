"""YFCC100M metadata → PMD's English subset.

Reads the 25-column single-file ``yfcc100m_dataset`` TSV (line number and photo hash first) and
the 23-column original Webscope shards (``yfcc100m_dataset-N.bz2``); the layout is told per row by
its column count. Photos only (marker ``0``; ``1`` = video → ``video``); image = download URL.

FLAVA's rule: title and description are URL-form-encoded; each is decoded, stripped of HTML tags,
unescaped and whitespace-collapsed (``clean_yfcc_text``); the description is used if it has more
than two words and is English, else the title under the same test, else the row is dropped:
``empty_caption`` (both empty), ``too_short`` (neither has > 2 words), ``no_english_caption``
(some field was long enough but none is English), ``invalid_utf8_caption`` (a field's ``%XX``
escapes are not UTF-8 — latin-1 escapes, a sequence cut at the end, stray bytes — and the other
field did not qualify either; the drop's detail names the field and the bytes). A field that is not
UTF-8 is never a caption (no U+FFFD text is kept), so the description → title fallback applies to it
as to a short one, and ``invalid_utf8_caption`` wins over the other reasons: it counts exactly the
photos that a readable encoding might have kept. ``meta['caption_field']`` says which was used.
Raw bytes that are not UTF-8 (file damage, not escapes) are a different thing: the parse guard
fails such a row with ``invalid_utf8`` (see ``pmd.sources.base``).

Language: fastText lid.176 in batches (``langid=fasttext``, default) — thousands of texts per
call — or the first public PMD script's row-at-a-time ``langdetect`` (``langid=langdetect``,
seeded), kept as the baseline. ``lang_labels``/``min_lang_score`` set the English test.

One parser, two emitters: ``parse`` gives objects; ``parse_batches`` (the Spark ingest's path) gives
the same outcomes as Arrow rows built from the batch's column-wise strings, with no object per row.
"""

from __future__ import annotations

import contextlib
import gc

from itertools import compress, repeat
from operator import itemgetter
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

import pyarrow as pa

from pmd.errors import UserError
from pmd.pairs.outcomes import flat_meta_json, line_outcome_batch, needs_no_escape
from pmd.records import ImageRef, PairRecord
from pmd.sources.base import (_DECODE_ERRORS, InputUnit, ParseResult, Source, _checked, is_valid_url,
                              iter_line_blocks, read_failure)
from pmd.text.normalize import clean_yfcc_texts, utf8_problem
from pmd.verdict import Dropped, Failure

COLUMNS_25 = (
    "line_number", "photo_id", "photo_hash", "user_nsid", "user_nickname", "date_taken", "date_uploaded",
    "capture_device", "title", "description", "user_tags", "machine_tags", "longitude", "latitude",
    "accuracy", "page_url", "download_url", "license_name", "license_url", "server_id", "farm_id",
    "secret", "secret_original", "extension", "marker",
)
COLUMNS_23 = COLUMNS_25[1:2] + COLUMNS_25[3:]
#: column count → (title, description, download_url) indices
_LAYOUT = {
    25: (COLUMNS_25.index("title"), COLUMNS_25.index("description"), COLUMNS_25.index("download_url")),
    23: (COLUMNS_23.index("title"), COLUMNS_23.index("description"), COLUMNS_23.index("download_url")),
}
_META_KEYS = {25: COLUMNS_25, 23: COLUMNS_23}
#: column count → an empty meta in its final key order (columns, download_url popped, caption_field last)
_META_TEMPLATE = {n: dict.fromkeys(keys + ("caption_field",)) for n, keys in _META_KEYS.items()}
#: rows gathered before one batched language prediction
BATCH_ROWS = 8192
#: drop reason of a photo whose description or title escapes are not UTF-8 and that has no caption
INVALID_UTF8 = "invalid_utf8_caption"
#: texts → (labels, scores), two parallel lists
ArrayPredictor = Callable[[Sequence[str]], tuple[list[str], list[float]]]


def langdetect_predict(texts: Sequence[str]) -> list[tuple[str, float]]:
    """Row-at-a-time ``langdetect.detect`` (seeded), PMD's first public script: label, score 1.0."""
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    out = []
    for t in texts:
        try:
            out.append((detect(t), 1.0))
        except LangDetectException:
            out.append(("unknown", 0.0))
    return out


class Yfcc100m(Source):
    name = "yfcc100m"
    paper_row = "YFCC100M (filtered)"
    paper_pairs_m, paper_avg_words = 30.3, 12.7
    splittable = True
    file_pattern = "yfcc100m_dataset*"
    description = "YFCC100M metadata TSV (photos; English description, else title, > 2 words)"
    defaults: Mapping[str, Any] = {
        "langid": "fasttext",
        "lid_model": None,
        "lang_labels": ("en",),
        "min_lang_score": 0.0,
        "min_words": 3,
    }

    def predictor(self, opts: Mapping[str, Any]) -> ArrayPredictor:
        """texts → (labels, scores): fastText's batched ``predict_arrays`` or the langdetect baseline."""
        if opts["langid"] == "fasttext":
            from pmd.text.langid import get_identifier

            return get_identifier(opts["lid_model"]).predict_arrays
        if opts["langid"] == "langdetect":
            return _langdetect_arrays
        raise UserError(f"yfcc100m: langid must be 'fasttext' or 'langdetect', got {opts['langid']!r}")

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        opts = self.resolve_options(options)
        predict = self.predictor(opts)
        path = unit.path
        for first, lines in iter_line_blocks(unit):
            for b0 in range(0, len(lines), BATCH_ROWS):
                yield from self.parse_lines(lines[b0:b0 + BATCH_ROWS], first + b0, path, predict, opts)

    def parse_batches(self, unit: InputUnit, options: Mapping[str, Any] | None,
                      batch_size: int) -> Iterator[pa.RecordBatch | list[ParseResult]]:
        """The unit's outcomes straight as ``PAIR_OUTCOME_SCHEMA`` batches (``Source.parse_batches``).

        The same parse as ``parse`` up to the emitter (``_scan``), then columns from the batch's
        flat strings instead of a ``PairRecord``/``Dropped`` per row: at PMD scale (30M YFCC pairs)
        building and then re-reading those objects cost half as much as the parse itself. A block
        whose bytes were not all UTF-8 (the decoder's error count moved while reading it) is parsed
        by ``parse_lines`` and its items ``_checked``, as the parse guard does, and given as a list;
        an exception reading the unit ends it as the guard's ``Failure``.
        """
        return self._batches(unit, options, max(1, batch_size))

    def _batches(self, unit: InputUnit, options: Mapping[str, Any] | None,
                 batch_size: int) -> Iterator[pa.RecordBatch | list[ParseResult]]:
        opts = self.resolve_options(options)
        predict = self.predictor(opts)
        path = unit.path
        n = 0
        blocks = iter_line_blocks(unit)
        try:
            while True:
                before = _DECODE_ERRORS[0]
                block = next(blocks, None)
                if block is None:
                    return
                first, lines = block
                clean = _DECODE_ERRORS[0] == before
                for b0 in range(0, len(lines), BATCH_ROWS):
                    chunk = lines[b0:b0 + BATCH_ROWS]
                    if clean:
                        with paused_gc():
                            batch = self._columnar_batch(chunk, first + b0, path, predict, opts)
                        for s in range(0, batch.num_rows, batch_size):
                            yield batch.slice(s, batch_size) if batch.num_rows > batch_size else batch
                    else:
                        yield [_checked(it) for it in self.parse_lines(chunk, first + b0, path, predict, opts)]
                    n += len(chunk)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - the parse guard's rule (pmd.sources.base._guard)
            yield [read_failure(e, unit.path, n)]

    def parse_lines(self, lines: Sequence[str], first_line: int, path: str, predict: ArrayPredictor,
                    opts: Mapping[str, Any]) -> list[ParseResult]:
        """One outcome per line, in order — the hot loop of a 100M-row file.

        Lines are grouped by column count (25 or 23); each group is split in one ``split`` of the
        joined lines and read column-wise (``flat[col::ncols]``), titles and descriptions are
        cleaned as one batch (``clean_yfcc_texts``), and language ID runs as at most two batched
        predictions: descriptions first, then the titles of rows whose description did not qualify
        (``choose_captions``). Records are then built with as few objects per row as possible.
        The cyclic collector is paused while the batch is built (``paused_gc``).
        """
        with paused_gc():
            return self._parse_batch(lines, first_line, path, predict, opts)

    def _parse_batch(self, lines: Sequence[str], first_line: int, path: str, predict: ArrayPredictor,
                     opts: Mapping[str, Any]) -> list[ParseResult]:
        """The object emitter: ``_scan``'s verdicts with a ``PairRecord`` per kept row and a
        ``Dropped`` per plain drop reason."""
        out, groups = self._scan(lines, first_line, path, predict, opts)
        name = self.name
        for g in groups:
            ncols, idx, flat = g.ncols, g.idx, g.flat
            meta_keys, template = _META_KEYS[ncols], _META_TEMPLATE[ncols]
            for r, f, t, lab, sc in zip(g.rows, g.field, g.text, g.lang, g.score):
                i = idx[r]
                a = r * ncols
                meta = template.copy()  # presized, keys in order: no rehash while filling
                meta.update(zip(meta_keys, flat[a:a + ncols]))
                url = meta.pop("download_url")
                meta["caption_field"] = f
                out[i] = PairRecord(name, t, _url_image(url), meta, lab, sc, path, first_line + i)
        for i, v in enumerate(out):
            if type(v) is str:
                out[i] = _dropped(v, path, first_line + i)
        return out

    def _columnar_batch(self, lines: Sequence[str], first_line: int, path: str, predict: ArrayPredictor,
                        opts: Mapping[str, Any]) -> pa.RecordBatch:
        """The columnar emitter: ``_scan``'s verdicts as one batch of outcome rows in line order,
        equal to ``outcome_batch`` of ``_parse_batch``'s objects (tested). Kept rows' URLs and metas
        come from the flat columns (``flat_meta_json``: one ``%`` template per row, the escaping
        checked once over the batch's joined lines)."""
        verdicts, groups = self._scan(lines, first_line, path, predict, opts)
        kept_at: list[int] = []
        texts: list[str] = []
        urls: list[str] = []
        metas: list[str] = []
        langs: list[str] = []
        scores: list[float] = []
        for g in groups:
            ncols, flat, rows = g.ncols, g.flat, g.rows
            pick = _picker(rows)
            kept_at += pick(g.idx)
            texts += g.text
            langs += g.lang
            scores += g.score
            urls += pick(flat[_LAYOUT[ncols][2]::ncols])
            names, cols = _META_COLUMNS[ncols]
            metas += flat_meta_json(names, cols, flat, ncols, rows, "caption_field", g.field,
                                    needs_no_escape(g.joined, "\t"))
        return line_outcome_batch(self.name, path, first_line, verdicts, kept_at, texts, urls, metas, langs, scores)

    def _scan(self, lines: Sequence[str], first_line: int, path: str, predict: ArrayPredictor,
              opts: Mapping[str, Any]) -> tuple[list[Any], list["_Kept"]]:
        """What both emitters share: per line a verdict (None = kept, a drop reason string, or a
        ``Dropped``/``Failure`` for the rare drop with a detail and the failures) and, per column
        layout, the kept rows (``_Kept``)."""
        n = len(lines)
        out: list[Any] = [None] * n
        groups: list[_Kept] = []
        tabs = list(map(str.count, lines, repeat("\t")))
        n25 = tabs.count(24)  # the usual batch: all 25 columns (no per-line scans of ``tabs``)
        n23 = tabs.count(22) if n25 < n else 0
        for ncols, count in ((25, n25), (23, n23)):
            if count:
                idx = list(range(n)) if count == n else [i for i, c in enumerate(tabs) if c == ncols - 1]
                g = self._columnwise(lines, idx, ncols, out, first_line, path, predict, opts)
                if g is not None:
                    groups.append(g)
        for i, c in enumerate(tabs if n25 + n23 < n else ()):
            if c != 24 and c != 22:
                line = lines[i]
                err = "empty_line" if not line.strip() else "wrong_column_count"
                out[i] = Failure(err, f"expected 25 (or 23) tab-separated columns, got {c + 1}",
                                 path, first_line + i, line)
        return out, groups

    def _columnwise(self, lines: Sequence[str], idx: list[int], ncols: int, out: list[Any], first_line: int,
                    path: str, predict: ArrayPredictor, opts: Mapping[str, Any]) -> "_Kept | None":
        ti, di, ui = _LAYOUT[ncols]
        # a tuple of strings: the collector untracks it at its first pass instead of re-scanning its
        # ~200k items at every later collection while the batch is alive
        joined = "\t".join([lines[i] for i in idx] if len(idx) < len(lines) else lines)
        flat = tuple(joined.split("\t"))
        rows = _photo_rows(flat[ncols - 1::ncols], flat[ui::ncols], lines, idx, out, first_line, path)
        if not rows:
            return None
        raw_desc, raw_title = flat[di::ncols], flat[ti::ncols]
        field, text, lang, score = choose_captions(
            [raw_desc[r] for r in rows], [raw_title[r] for r in rows], predict, opts["min_words"],
            frozenset(opts["lang_labels"]), opts["min_lang_score"])
        if None not in text:
            return _Kept(ncols, idx, joined, flat, rows, field, text, lang, score)
        keep = [t is not None for t in text]
        for r, f, k in zip(rows, field, keep):
            if not k:
                i = idx[r]
                out[i] = f if f is not INVALID_UTF8 else \
                    Dropped(f, path, first_line + i, _invalid_detail(raw_desc[r], raw_title[r]))
        rows = list(compress(rows, keep))
        if not rows:
            return None
        return _Kept(ncols, idx, joined, flat, rows, list(compress(field, keep)), list(compress(text, keep)),
                     list(compress(lang, keep)), list(compress(score, keep)))


class _Kept(NamedTuple):
    """The kept photos of one column layout in a batch: ``rows`` index ``idx`` (their lines) and
    the ``ncols``-wide rows of ``flat`` (``joined``'s values); field/text/lang/score parallel to
    ``rows``."""

    ncols: int
    idx: list[int]
    joined: str
    flat: tuple[str, ...]
    rows: list[int]
    field: list[str]
    text: list[str]
    lang: list[str]
    score: list[float]


def _picker(rows: list[int]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """``seq → (seq[r] for r in rows)`` as a tuple, at C speed (``itemgetter``)."""
    if len(rows) == 1:
        r0 = rows[0]
        return lambda seq: (seq[r0],)
    return itemgetter(*rows)


def _meta_columns(keys: Sequence[str]) -> tuple[list[str], list[int]]:
    """The meta's keys from the columns (all but ``download_url``; ``caption_field`` is added) and
    their column positions."""
    cols = [c for c, k in enumerate(keys) if k != "download_url"]
    return [keys[c] for c in cols], cols


#: column count → (meta keys from the columns, their column positions)
_META_COLUMNS = {n: _meta_columns(keys) for n, keys in _META_KEYS.items()}


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic collector while one batch is built, then restore it.

    A batch allocates ~40k objects that all stay alive until it is returned; the collector would
    re-scan them dozens of times for nothing (~7 % of the parse's CPU). Only our own code runs
    inside (never the consumer's, since ``parse_lines`` returns a list), and the batch holds no cycles.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def choose_captions(raw_desc: Sequence[str], raw_title: Sequence[str], predict: ArrayPredictor, min_words: int,
                    labels: frozenset[str], min_score: float) -> tuple[list[str], list[Any], list[Any], list[Any]]:
    """FLAVA's rule over a batch of photos: per row ``(field, text, lang, score)``.

    ``field`` is ``description`` or ``title`` for a kept row, else the drop reason (text, lang and
    score None; ``INVALID_UTF8`` itself, so the caller can test it by identity). Descriptions are
    cleaned and predicted first (one batch); titles only for the rows still without a caption (a
    second batch). A field whose escapes are not UTF-8 cleans to None: never long enough, never
    predicted. Parallel lists rather than a tuple per row: fewer live objects for the garbage
    collector to scan (it costs several µs per row here).
    """
    n = len(raw_desc)
    field: list[Any] = [None] * n  # None: nothing long enough (yet)
    text: list[Any] = [None] * n
    lang: list[Any] = [None] * n
    score: list[Any] = [None] * n
    descs = clean_yfcc_texts(raw_desc)
    # texts are whitespace-collapsed: words = spaces + 1, cheaper than split()
    long_desc = [k for k, d in enumerate(descs) if d and d.count(" ") + 1 >= min_words]
    if long_desc:
        for k, lab, sc in zip(long_desc, *predict([descs[k] for k in long_desc])):
            if lab in labels and sc >= min_score:
                field[k], text[k], lang[k], score[k] = "description", descs[k], lab, sc
            else:
                field[k] = "no_english_caption"
    need = [k for k, f in enumerate(field) if f is None or f == "no_english_caption"]
    titles = clean_yfcc_texts([raw_title[k] for k in need])
    long_title = [j for j, t in enumerate(titles) if t and t.count(" ") + 1 >= min_words]
    if long_title:
        for j, lab, sc in zip(long_title, *predict([titles[j] for j in long_title])):
            k = need[j]
            if lab in labels and sc >= min_score:
                field[k], text[k], lang[k], score[k] = "title", titles[j], lab, sc
            else:
                field[k] = "no_english_caption"
    for k, t in zip(need, titles):
        if field[k] is None:
            field[k] = "too_short" if descs[k] or t else "empty_caption"
    if None in descs or None in titles:  # rare: some field's escapes are not UTF-8
        for k, t in zip(need, titles):
            if text[k] is None and (t is None or descs[k] is None):
                field[k] = INVALID_UTF8
    return field, text, lang, score


def _invalid_detail(raw_desc: str, raw_title: str) -> str:
    """Which field(s) of a dropped photo are not UTF-8, and why: the drop's ``detail``."""
    parts = []
    for name, raw in (("description", raw_desc), ("title", raw_title)):
        problem = utf8_problem(raw)
        if problem is not None:
            parts.append(f"{name} {problem}")
    return "; ".join(parts) + " (escapes not UTF-8)"


def _langdetect_arrays(texts: Sequence[str]) -> tuple[list[str], list[float]]:
    pairs = langdetect_predict(texts)
    return [p[0] for p in pairs], [p[1] for p in pairs]


_PHOTO_VIDEO = frozenset(("0", "1"))


def _photo_rows(markers: Sequence[str], urls: Sequence[str], lines: Sequence[str], idx: list[int], out: list[Any],
                first_line: int, path: str) -> list[int]:
    """Positions r (into ``idx``) of photos with a usable download URL; videos (as the reason
    ``"video"``, see ``Yfcc100m._scan``) and bad rows go to ``out``.

    Fast path for the usual batch (markers exactly ``0``/``1``, every URL plainly valid), checked
    with a few C-level scans of the whole batch instead of four tests per row; otherwise the
    row-by-row checks.
    """
    if _PHOTO_VIDEO.issuperset(markers) and _plain_urls(urls):
        if "1" in markers:
            for r, m in enumerate(markers):
                if m == "1":
                    out[idx[r]] = "video"
        return [r for r, m in enumerate(markers) if m == "0"]
    rows: list[int] = []
    for r, (m, url) in enumerate(zip(markers, urls)):
        if m != "0":
            m = m.strip()
            if m == "1":
                out[idx[r]] = "video"
                continue
            if m != "0":
                out[idx[r]] = Failure("bad_marker", f"photo/video marker is {m[:20]!r}", path,
                                      first_line + idx[r], lines[idx[r]])
                continue
        if not url.startswith(("http://", "https://")) or " " in url or len(url) < 12 or \
                ("[" in url and not is_valid_url(url)):
            out[idx[r]] = Failure("bad_url", f"download URL is {url[:200]!r}", path, first_line + idx[r],
                                  lines[idx[r]])
            continue
        rows.append(r)
    return rows


def _plain_urls(urls: Sequence[str]) -> bool:
    """True if every URL passes the per-row test (http(s)://, no space, >= 12 characters) without
    needing ``is_valid_url`` (no ``[``). URLs hold no newline, so each ``\nhttp`` starts one."""
    joined = "\n" + "\n".join(urls)
    return (" " not in joined and "[" not in joined and min(map(len, urls)) >= 12
            and joined.count("\nhttp://") + joined.count("\nhttps://") == len(urls))


_new = object.__new__
_set_reason, _set_file, _set_line, _set_detail = (
    Dropped.__dict__[f].__set__ for f in ("reason", "input_file", "input_line", "detail"))
_set_url, _set_path, _set_crop = (ImageRef.__dict__[f].__set__ for f in ("url", "path", "crop"))


def _dropped(reason: str, path: str, line: int) -> Dropped:
    """``Dropped(reason, path, line)`` without the frozen dataclass's ``__init__`` (four
    ``object.__setattr__`` calls and a non-empty check on what is a constant here): ~2x cheaper,
    and most of 100M YFCC rows are dropped. Equal to the constructed object (tested)."""
    d = _new(Dropped)
    _set_reason(d, reason)
    _set_file(d, path)
    _set_line(d, line)
    _set_detail(d, None)
    return d


def _url_image(url: str) -> ImageRef:
    """``ImageRef(url=url)`` the same way (the URL was checked): one per kept row."""
    im = _new(ImageRef)
    _set_url(im, url)
    _set_path(im, None)
    _set_crop(im, None)
    return im
