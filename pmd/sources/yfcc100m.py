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

from itertools import repeat
from typing import Any, Callable, Iterator, Mapping, Sequence

from pmd.errors import UserError
from pmd.records import ImageRef, PairRecord
from pmd.sources.base import InputUnit, ParseResult, Source, is_valid_url, iter_line_blocks
from pmd.text.normalize import clean_yfcc_texts
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
        path = unit.path
        for first, lines in iter_line_blocks(unit):
            for b0 in range(0, len(lines), BATCH_ROWS):
                yield from self.parse_lines(lines[b0:b0 + BATCH_ROWS], first + b0, path, predict, opts)

    def parse_lines(self, lines: Sequence[str], first_line: int, path: str, predict: Callable,
                    opts: Mapping[str, Any]) -> list[ParseResult]:
        """One outcome per line, in order — the hot loop of a 100M-row file.

        Lines are grouped by column count (25 or 23); each group is split in one ``split`` of the
        joined lines and read column-wise (``flat[col::ncols]``), titles and descriptions are
        cleaned as one batch (``clean_yfcc_texts``), and language ID runs as at most two batched
        predictions: descriptions first, then the titles of rows whose description did not qualify.
        """
        out: list[Any] = [None] * len(lines)
        tabs = list(map(str.count, lines, repeat("\t")))
        for ncols in (25, 23):
            idx = [i for i, c in enumerate(tabs) if c == ncols - 1]
            if idx:
                self._columnwise(lines, idx, ncols, out, first_line, path, predict, opts)
        for i, c in enumerate(tabs):
            if c != 24 and c != 22:
                line = lines[i]
                err = "empty_line" if not line.strip() else "wrong_column_count"
                out[i] = Failure(err, f"expected 25 (or 23) tab-separated columns, got {c + 1}",
                                 path, first_line + i, line)
        return out

    def _columnwise(self, lines: Sequence[str], idx: list[int], ncols: int, out: list[Any], first_line: int,
                    path: str, predict: Callable, opts: Mapping[str, Any]) -> None:
        ti, di, ui = _LAYOUT[ncols]
        flat = "\t".join([lines[i] for i in idx]).split("\t")
        markers, urls = flat[ncols - 1::ncols], flat[ui::ncols]
        rows: list[int] = []  # positions r (into idx) of photos with a usable URL
        for r, (m, url) in enumerate(zip(markers, urls)):
            if m != "0":
                m = m.strip()
                if m == "1":
                    out[idx[r]] = Dropped("video", path, first_line + idx[r])
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
        if not rows:
            return
        min_words = opts["min_words"]
        labels = frozenset(opts["lang_labels"])
        min_score = opts["min_lang_score"]
        raw_desc = flat[di::ncols]
        descs = clean_yfcc_texts([raw_desc[r] for r in rows])
        # texts are whitespace-collapsed: words = spaces + 1, cheaper than split()
        long_desc = [k for k, d in enumerate(descs) if d and d.count(" ") + 1 >= min_words]
        chosen: list[Any] = [None] * len(rows)  # None: nothing long enough; False: long, not English
        for k, (lab, score) in zip(long_desc, predict([descs[k] for k in long_desc]) if long_desc else ()):
            chosen[k] = ("description", descs[k], lab, score) if lab in labels and score >= min_score else False
        need = [k for k, c in enumerate(chosen) if not c]
        raw_title = flat[ti::ncols]
        titles = clean_yfcc_texts([raw_title[rows[k]] for k in need])
        long_title = [j for j, t in enumerate(titles) if t and t.count(" ") + 1 >= min_words]
        for j, (lab, score) in zip(long_title, predict([titles[j] for j in long_title]) if long_title else ()):
            k = need[j]
            if lab in labels and score >= min_score:
                chosen[k] = ("title", titles[j], lab, score)
            else:
                chosen[k] = False
        has_title = dict.fromkeys(need[j] for j, t in enumerate(titles) if t)
        name, keys = self.name, _KEYS[ncols]
        for k, r in enumerate(rows):
            i = idx[r]
            c = chosen[k]
            if not c:
                if c is False:
                    reason = "no_english_caption"
                elif descs[k] or k in has_title:
                    reason = "too_short"
                else:
                    reason = "empty_caption"
                out[i] = Dropped(reason, path, first_line + i)
                continue
            meta = dict(zip(keys, flat[r * ncols:(r + 1) * ncols]))
            url = meta.pop("download_url")
            meta["caption_field"] = c[0]
            out[i] = PairRecord(name, c[1], ImageRef(url=url), meta, c[2], c[3], path, first_line + i)
