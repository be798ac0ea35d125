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
        path = unit.path
        for first, lines in iter_line_blocks(unit):
            for b0 in range(0, len(lines), BATCH_ROWS):
                yield from self.parse_lines(lines[b0:b0 + BATCH_ROWS], first + b0, path, predict, opts)

    def parse_lines(self, lines: Sequence[str], first_line: int, path: str, predict: Callable,
                    opts: Mapping[str, Any]) -> list[ParseResult]:
        """One outcome per line, in order. The hot loop of a 100M-row file: per-row work is a split,
        two cheap checks and the text decode; language ID runs as (at most) two batched predictions,
        descriptions first, then the titles of rows whose description did not qualify."""
        min_words = opts["min_words"]
        labels = frozenset(opts["lang_labels"])
        min_score = opts["min_lang_score"]
        clean = clean_yfcc_text
        out: list[Any] = []
        rows: list[int] = []           # positions in ``out`` waiting for the language rule
        descs: list[str] = []
        desc_at: list[int] = []        # row index of each description sent to language ID
        for i, line in enumerate(lines):
            cols = line.split("\t")
            layout = _LAYOUT.get(len(cols))
            if layout is None:
                err = "empty_line" if not line.strip() else "wrong_column_count"
                out.append(Failure(err, f"expected 25 (or 23) tab-separated columns, got {len(cols)}",
                                   path, first_line + i, line))
                continue
            marker = cols[-1]
            if marker != "0":
                marker = marker.strip()
                if marker == "1":
                    out.append(Dropped("video", path, first_line + i))
                    continue
                if marker != "0":
                    out.append(Failure("bad_marker", f"photo/video marker is {marker[:20]!r}", path,
                                       first_line + i, line))
                    continue
            url = cols[layout[2]]
            if not url.startswith(("http://", "https://")) or " " in url or len(url) < 12 or \
                    ("[" in url and not is_valid_url(url)):
                out.append(Failure("bad_url", f"download URL is {url[:200]!r}", path, first_line + i, line))
                continue
            desc = clean(cols[layout[1]])
            # texts are whitespace-collapsed: words = spaces + 1, cheaper than split()
            if desc and desc.count(" ") + 1 >= min_words:
                desc_at.append(len(rows))
                descs.append(desc)
            rows.append(len(out))
            out.append((i, cols, desc))
        if not rows:
            return out
        # 1) descriptions
        chosen: list[Any] = [None] * len(rows)
        for r, d, (lab, score) in zip(desc_at, descs, predict(descs) if descs else ()):
            if lab in labels and score >= min_score:
                chosen[r] = ("description", d, lab, score)
            else:
                chosen[r] = False  # long enough, not English
        # 2) titles of the rest
        titles: list[str] = []
        title_at: list[int] = []
        title_seen = [False] * len(rows)
        for r, pos in enumerate(rows):
            if chosen[r]:
                continue
            _, cols, _ = out[pos]
            title = clean(cols[_LAYOUT[len(cols)][0]])
            if title and title.count(" ") + 1 >= min_words:
                title_at.append(r)
                titles.append(title)
            elif title:
                title_seen[r] = True
        for r, t, (lab, score) in zip(title_at, titles, predict(titles) if titles else ()):
            if lab in labels and score >= min_score:
                chosen[r] = ("title", t, lab, score)
            elif chosen[r] is None:
                chosen[r] = False
        name, keys = self.name, _KEYS
        for r, pos in enumerate(rows):
            i, cols, desc = out[pos]
            c = chosen[r]
            if not c:
                if c is False:
                    reason = "no_english_caption"
                elif desc or title_seen[r]:
                    reason = "too_short"
                else:
                    reason = "empty_caption"
                out[pos] = Dropped(reason, path, first_line + i)
                continue
            meta = dict(zip(keys[len(cols)], cols))
            url = meta.pop("download_url")
            meta["caption_field"] = c[0]
            out[pos] = PairRecord(name, c[1], ImageRef(url=url), meta, c[2], c[3], path, first_line + i)
        return out
