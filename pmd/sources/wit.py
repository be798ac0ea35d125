"""WIT (Wikipedia-based Image Text): ``wit_v1.train.all-*.tsv.gz`` — 17 tab-separated columns with a
header; quoted fields may hold newlines (so a row is read with ``csv``, one unit per file).

Caption rule (m4's WIT loader, the issue's wording): English rows only (``not_english_row``);
the reference description if it has >= 2 tokens, else the English part of the attribution
description if >= 3 tokens, else the alt text if >= 3 tokens (``no_caption`` otherwise);
non-ASCII characters removed; empty after that → ``empty_caption``. ``meta`` keeps the other
columns and ``caption_field`` (which one was used). ``input_line`` = the row's first physical line.
"""

from __future__ import annotations

import csv
import sys
from typing import Any, Iterator, Mapping

from pmd.records import ImageRef, PairRecord
from pmd.sources.base import InputUnit, ParseResult, Source, is_valid_url, open_text
from pmd.text.normalize import ascii_only, collapse_whitespace
from pmd.verdict import Dropped, Failure

WIT_COLUMNS = (
    "language", "page_url", "image_url", "page_title", "section_title", "hierarchical_section_title",
    "caption_reference_description", "caption_attribution_description", "caption_alt_text_description",
    "mime_type", "original_height", "original_width", "is_main_image", "attribution_passes_lang_id",
    "page_changed_recently", "context_page_description", "context_section_description",
)
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _tokens(text: str) -> int:
    return len(text.split(" "))


def english_attribution(attribution: str) -> str | None:
    """The English text of a multilingual attribution (``Deutsch: ... English: ... Français: ...``)."""
    if "english:" not in attribution.lower():
        return None
    parts = attribution.split(": ")
    for i, piece in enumerate(parts[:-1]):
        p = piece.strip().lower()
        if p.startswith("english") or p.endswith("english"):
            text = parts[i + 1]
            if i + 2 < len(parts):  # another language follows: its label is this piece's last word
                text = text.rstrip().rsplit(" ", 1)[0] if " " in text.rstrip() else ""
            return text
    return None


def choose_caption(row: Mapping[str, str]) -> tuple[str, str] | None:
    """``(field, text)`` by WIT's priority, or None."""
    ref = row.get("caption_reference_description") or ""
    if ref and _tokens(ref) >= 2:
        return "caption_reference_description", ref
    eng = english_attribution(row.get("caption_attribution_description") or "")
    if eng is not None and _tokens(eng) >= 3:
        return "caption_attribution_description", eng
    alt = row.get("caption_alt_text_description") or ""
    if alt and _tokens(alt) >= 3:
        return "caption_alt_text_description", alt
    return None


class Wit(Source):
    name = "wit"
    paper_row = "Wikipedia Image Text (WIT)"
    paper_pairs_m, paper_avg_words = 4.8, 12.8
    file_pattern = "*.tsv*"
    description = "WIT v1 train TSVs (English rows; reference > attribution > alt-text caption)"
    defaults: Mapping[str, Any] = {"languages": ("en",)}

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        opts = self.resolve_options(options)
        languages = set(opts["languages"])
        path = unit.path
        with open_text(path) as f:
            reader = csv.reader(f, delimiter="\t")
            prev_line = 0
            header: tuple[str, ...] | None = None
            while True:
                start = prev_line + 1
                try:
                    cols = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    prev_line = reader.line_num
                    yield Failure("bad_tsv", str(e), path, start)
                    continue
                prev_line = reader.line_num
                if header is None:
                    if cols and cols[0] == "language":
                        header = tuple(cols)
                        continue
                    header = WIT_COLUMNS  # headerless file: the release's column order
                if len(cols) != len(header):
                    yield Failure("wrong_column_count", f"expected {len(header)} columns, got {len(cols)}",
                                  path, start, "\t".join(cols)[:2000])
                    continue
                row = dict(zip(header, cols))
                if row.get("language") not in languages:
                    yield Dropped("not_english_row", path, start, row.get("language"))
                    continue
                url = row.get("image_url", "").strip()
                if not is_valid_url(url):
                    yield Failure("bad_url", f"not an http(s) URL: {url[:200]!r}", path, start)
                    continue
                chosen = choose_caption(row)
                if chosen is None:
                    yield Dropped("no_caption", path, start)
                    continue
                field, raw = chosen
                text = collapse_whitespace(ascii_only(raw))
                if not text:
                    yield Dropped("empty_caption", path, start)
                    continue
                meta: dict[str, Any] = {k: v for k, v in row.items() if k != "image_url"}
                meta["caption_field"] = field
                yield PairRecord(self.name, text, ImageRef(url=url), meta, input_file=path, input_line=start)
