"""YFCC100M metadata → PMD's English subset.

Reads the 25-column single-file ``yfcc100m_dataset`` TSV (line number and photo hash first) and
the 23-column original Webscope shards (``yfcc100m_dataset-N.bz2``); the layout is told per row by
its column count. Photos only (marker ``0``; ``1`` = video → ``video``); image = download URL.

FLAVA's rule: title and description are URL-form-encoded; each is decoded, stripped of HTML tags,
unescaped and whitespace-collapsed (``clean_yfcc_text``); the description is used if it has more
than two words and is English, else the title under the same test, else the row is dropped:
``empty_caption`` (both empty), ``too_short`` (neither has > 2 words), ``no_english_caption``
(some field was long enough but none is English). ``meta['caption_field']`` says which was used.

Language: fastText lid.176 in batches (``langid=fasttext``, default) — thousands of texts per
call — or the first public PMD script's row-at-a-time ``langdetect`` (``langid=langdetect``,
seeded), kept as the baseline. ``lang_labels``/``min_lang_score`` set the English test.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Sequence

from pmd.errors import UserError
from pmd.records import ImageRef, PairRecord
from pmd.sources.base import InputUnit, ParseResult, Source, is_valid_url, iter_line_blocks
from pmd.text.normalize import clean_yfcc_text
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
_KEYS = {25: COLUMNS_25, 23: COLUMNS_23}
#: rows gathered before one batched language prediction
BATCH_ROWS = 8192


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

    def predictor(self, opts: Mapping[str, Any]) -> Callable[[Sequence[str]], list[tuple[str, float]]]:
        if opts["langid"] == "fasttext":
            from pmd.text.langid import get_identifier

            return get_identifier(opts["lid_model"]).predict
        if opts["langid"] == "langdetect":
            return langdetect_predict
        raise UserError(f"yfcc100m: langid must be 'fasttext' or 'langdetect', got {opts['langid']!r}")

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        opts = self.resolve_options(options)
        predict = self.predictor(opts)
        path, row = unit.path, self._row
        for first, lines in iter_line_blocks(unit):
            for b0 in range(0, len(lines), BATCH_ROWS):
                # rows needing the language rule are decided together; output keeps input order
                out = [row(line, first + b0 + i, path) for i, line in enumerate(lines[b0:b0 + BATCH_ROWS])]
                todo = [j for j, r in enumerate(out) if type(r) is tuple]
                if todo:
                    for j, res in zip(todo, self._decide([out[j] for j in todo], predict, opts, path)):
                        out[j] = res
                yield from out

    def _row(self, line: str, ln: int, path: str) -> tuple | Dropped | Failure:
        """Split, check and decode one row; a tuple means 'needs the language rule'."""
        cols = line.split("\t")
        n = len(cols)
        layout = _LAYOUT.get(n)
        if layout is None:
            err = "empty_line" if not line.strip() else "wrong_column_count"
            return Failure(err, f"expected 25 (or 23) tab-separated columns, got {n}", path, ln, line)
        marker = cols[-1]
        if marker != "0":
            marker = marker.strip()
            if marker == "1":
                return Dropped("video", path, ln)
            if marker != "0":
                return Failure("bad_marker", f"photo/video marker is {marker[:20]!r}", path, ln, line)
        ti, di, ui = layout
        url = cols[ui]
        if not url.startswith(("http://", "https://")) or " " in url or len(url) < 12 or \
                ("[" in url and not is_valid_url(url)):
            return Failure("bad_url", f"download URL is {url[:200]!r}", path, ln, line)
        return (ln, cols, clean_yfcc_text(cols[di]), clean_yfcc_text(cols[ti]))

    def _decide(self, rows: list[tuple], predict: Callable, opts: Mapping[str, Any],
                path: str) -> Iterator[ParseResult]:
        """FLAVA's rule over a batch: at most two batched predictions (descriptions, then titles)."""
        min_words = opts["min_words"]
        labels = set(opts["lang_labels"])
        min_score = opts["min_lang_score"]
        name = self.name
        # texts are whitespace-collapsed: words = spaces + 1, cheaper than split()
        desc_idx = [j for j, r in enumerate(rows) if r[2] and r[2].count(" ") + 1 >= min_words]
        desc_lang: dict[int, tuple[str, float]] = dict(zip(desc_idx, predict([rows[j][2] for j in desc_idx])))
        title_idx = []
        for j, r in enumerate(rows):
            d = desc_lang.get(j)
            if d is not None and d[0] in labels and d[1] >= min_score:
                continue
            if r[3] and r[3].count(" ") + 1 >= min_words:
                title_idx.append(j)
        title_lang = dict(zip(title_idx, predict([rows[j][3] for j in title_idx])))
        for j, (ln, cols, desc, title) in enumerate(rows):
            d = desc_lang.get(j)
            if d is not None and d[0] in labels and d[1] >= min_score:
                field, text, lang = "description", desc, d
            else:
                t = title_lang.get(j)
                if t is not None and t[0] in labels and t[1] >= min_score:
                    field, text, lang = "title", title, t
                else:
                    if d is None and t is None:
                        reason = "too_short" if (desc or title) else "empty_caption"
                    else:
                        reason = "no_english_caption"
                    yield Dropped(reason, path, ln)
                    continue
            n = len(cols)
            meta = dict(zip(_KEYS[n], cols))
            url = meta.pop("download_url")
            meta["caption_field"] = field
            yield PairRecord(name, text, ImageRef(url=url), meta, lang[0], lang[1], path, ln)
