"""RedCaps: per-subreddit-year annotation files ``annotations/<subreddit>_<year>.json`` =
``{"info": {...}, "annotations": [{image_id, author, url, raw_caption, caption, subreddit, ...}]}``.

PMD (m4's loader) used ``raw_caption``; option ``caption_field`` picks another (``caption`` is the
lower-cased, cleaned one). ``input_line`` = 1-based position in ``annotations``.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from pmd.records import ImageRef
from pmd.sources.base import InputUnit, ParseResult, Source, is_valid_url, json_failure, load_json
from pmd.verdict import Failure


class RedCaps(Source):
    name = "red_caps"
    paper_row = "RedCaps"
    paper_pairs_m, paper_avg_words = 11.6, 9.5
    file_pattern = "*.json"
    description = "RedCaps annotation JSONs (text = raw_caption)"
    defaults: Mapping[str, Any] = {"caption_field": "raw_caption"}

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        opts = self.resolve_options(options)
        field = opts["caption_field"]
        path = unit.path
        try:
            data = load_json(path)
        except ValueError as e:
            yield json_failure(path, e)
            return
        anns = data.get("annotations") if isinstance(data, dict) else None
        if not isinstance(anns, list):
            yield Failure("bad_layout", "expected an object with an 'annotations' list", path, 1)
            return
        info = data.get("info")
        for i, ann in enumerate(anns):
            ln = i + 1
            if not isinstance(ann, dict):
                yield Failure("bad_record", "annotation is not an object", path, ln)
                continue
            url = ann.get("url")
            if not isinstance(url, str) or not is_valid_url(url.strip()):
                yield Failure("bad_url", f"not an http(s) URL: {str(url)[:200]!r}", path, ln)
                continue
            if field not in ann:
                yield Failure("missing_field", f"annotation has no {field!r}", path, ln)
                continue
            meta = {k: v for k, v in ann.items() if k not in ("url", field)}
            if info is not None:
                meta["info"] = info
            yield self.make_pair(ann[field], ImageRef(url=url.strip()), meta, path, ln)
