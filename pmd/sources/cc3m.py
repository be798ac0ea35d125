"""Conceptual Captions 3M: ``Train_GCC-training.tsv`` — ``caption<TAB>url``, no header.

Also reads the image-labels release (``Image_Labels_Subset_Train_GCC-Labels-training.tsv``:
caption, url, labels, MIDs, confidences); its extra columns go to ``meta``.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from pmd.records import ImageRef, PairRecord
from pmd.sources.base import InputUnit, ParseResult, Source, is_valid_url, iter_line_blocks
from pmd.text.normalize import clean_caption
from pmd.verdict import Dropped, Failure


class TwoColumnTsvSource(Source):
    """A headerless caption/URL TSV; ``url_first`` picks the column order; extra columns by name."""

    splittable = True
    url_first = False
    file_pattern = "*.tsv*"
    #: names of the columns after the first two, per accepted column count
    extra_layouts: Mapping[int, tuple[str, ...]] = {}
    defaults: Mapping[str, Any] = {}

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        self.resolve_options(options)
        path, name, url_first, layouts = unit.path, self.name, self.url_first, self.extra_layouts
        for first, lines in iter_line_blocks(unit):
            for i, line in enumerate(lines):
                ln = first + i
                cols = line.split("\t")
                n = len(cols)
                if n == 2:
                    meta: dict[str, Any] = {}
                elif n in layouts:
                    meta = dict(zip(layouts[n], cols[2:]))
                elif not line.strip():
                    yield Failure("empty_line", "blank line", path, ln)
                    continue
                else:
                    yield Failure("wrong_column_count", f"expected 2 tab-separated columns, got {n}",
                                  path, ln, line)
                    continue
                url, caption = (cols[0], cols[1]) if url_first else (cols[1], cols[0])
                url = url.strip()
                if not is_valid_url(url):
                    yield Failure("bad_url", f"not an http(s) URL: {url[:200]!r}", path, ln, line)
                    continue
                text = clean_caption(caption)
                if not text:
                    yield Dropped("empty_caption", path, ln)
                    continue
                yield PairRecord(name, text, ImageRef(url=url), meta, input_file=path, input_line=ln)


class ConceptualCaptions(TwoColumnTsvSource):
    name = "conceptual_captions"
    paper_row = "Conceptual Captions"
    paper_pairs_m, paper_avg_words = 3.1, 10.3
    description = "Conceptual Captions 3M (Train_GCC-training.tsv: caption TAB url)"
    url_first = False
    extra_layouts = {5: ("labels", "mids", "confidences")}
