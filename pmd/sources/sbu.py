"""SBU Captions, in any of its three layouts:

* ``sbu-captions-all.json``: one object of parallel lists ``image_urls``, ``user_ids``, ``captions``;
* the legacy ``SBU_captioned_photo_dataset_urls.txt`` + ``..._captions.txt`` (line-aligned);
* the Hugging Face parquet export (columns ``image_url``, ``user_id``, ``caption``).

For the list and parquet layouts ``input_line`` is the 1-based position of the item.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping, Sequence

from pmd.errors import UserError
from pmd.records import ImageRef
from pmd.sources.base import (DEFAULT_TARGET_BYTES, InputUnit, ParseResult, Source, expand_paths, is_valid_url,
                              iter_lines, json_failure, load_json)
from pmd.verdict import Failure

_URLS, _CAPS = "_urls.txt", "_captions.txt"


class SbuCaptions(Source):
    name = "sbu_captions"
    paper_row = "SBU Captions"
    paper_pairs_m, paper_avg_words = 1.0, 12.1
    file_pattern = ("*.json", "*.json.gz", "*.parquet", "*" + _URLS, "*" + _CAPS)
    description = "SBU Captions (sbu-captions-all.json, legacy urls/captions .txt pair, or HF parquet)"

    def units(self, paths: Sequence[str], options: Mapping[str, Any] | None = None,
              target_bytes: int = DEFAULT_TARGET_BYTES) -> list[InputUnit]:
        self.resolve_options(options)
        files = expand_paths(paths, self.file_pattern)
        units, used = [], set()
        for p in files:
            if p.endswith(_URLS):
                cap = p[: -len(_URLS)] + _CAPS
                if cap not in files and not os.path.exists(cap):
                    raise UserError(f"{p}: the matching captions file {cap} is missing")
                units.append(InputUnit(self.name, (p, cap)))
                used.update((p, cap))
        for p in files:
            if p in used:
                continue
            if p.endswith(_CAPS):
                raise UserError(f"{p}: the matching URL file {p[:-len(_CAPS)] + _URLS} is missing")
            if p.endswith((".json", ".json.gz", ".parquet")):
                units.append(InputUnit(self.name, (p,)))
            else:
                raise UserError(f"{p}: not an SBU file (.json, .parquet or the *_urls.txt/*_captions.txt pair)")
        return units

    def parse(self, unit: InputUnit, options: Mapping[str, Any] | None = None) -> Iterator[ParseResult]:
        self.resolve_options(options)
        if len(unit.paths) == 2:
            yield from self._parse_txt_pair(unit)
        elif unit.path.endswith(".parquet"):
            yield from self._parse_parquet(unit.path)
        else:
            yield from self._parse_json(unit.path)

    def _one(self, url: Any, caption: Any, user_id: Any, path: str, ln: int) -> ParseResult:
        if not isinstance(url, str) or not is_valid_url(url.strip()):
            return Failure("bad_url", f"not an http(s) URL: {str(url)[:200]!r}", path, ln)
        meta = {} if user_id is None else {"user_id": user_id}
        return self.make_pair(caption, ImageRef(url=url.strip()), meta, path, ln)

    def _parse_json(self, path: str) -> Iterator[ParseResult]:
        try:
            data = load_json(path)
        except ValueError as e:
            yield json_failure(path, e)
            return
        if not isinstance(data, dict) or not isinstance(data.get("image_urls"), list) \
                or not isinstance(data.get("captions"), list):
            yield Failure("bad_layout", "expected an object with lists image_urls, captions (, user_ids)", path, 1)
            return
        urls, caps = data["image_urls"], data["captions"]
        users = data.get("user_ids") if isinstance(data.get("user_ids"), list) else []
        for i in range(max(len(urls), len(caps))):
            if i >= len(urls) or i >= len(caps):
                yield Failure("misaligned", f"item {i + 1}: image_urls has {len(urls)} items, captions {len(caps)}",
                              path, i + 1)
                continue
            yield self._one(urls[i], caps[i], users[i] if i < len(users) else None, path, i + 1)

    def _parse_txt_pair(self, unit: InputUnit) -> Iterator[ParseResult]:
        url_path, cap_path = unit.paths
        url_lines = iter_lines(InputUnit(self.name, (url_path,)))
        cap_lines = iter_lines(InputUnit(self.name, (cap_path,)))
        while True:
            u = next(url_lines, None)
            c = next(cap_lines, None)
            if u is None and c is None:
                return
            if u is None or c is None:
                ln = (u or c)[0]  # type: ignore[index]
                yield Failure("misaligned", f"line {ln} exists in only one of the URL and caption files",
                              url_path if u else cap_path, ln)
                continue
            yield self._one(u[1], c[1], None, url_path, u[0])

    def _parse_parquet(self, path: str) -> Iterator[ParseResult]:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        missing = {"image_url", "caption"} - set(table.column_names)
        if missing:
            yield Failure("bad_layout", f"parquet lacks columns {sorted(missing)}", path, 1)
            return
        rows = table.to_pylist()
        for i, row in enumerate(rows):
            url, cap = row.pop("image_url"), row.pop("caption")
            pair = self._one(url, cap, None, path, i + 1)
            if hasattr(pair, "meta"):
                pair.meta.update({k: v for k, v in row.items() if v is not None})  # type: ignore[union-attr]
            yield pair
