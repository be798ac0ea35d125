"""What the interleaved golden test compares: a build directory reduced to port-free facts.

``summarise(build_dir)`` gives the counters, every reject row (stage, outcome, reason, page and
image URL, WARC pointer) with its multiplicity, one entry per kept document (its URL, WARC record
id, the sha256 of its shard JSON without the id, the sha256 of each image member) and the shard
sha256s. The embedded sample's URLs hold the loopback port it was served on, and document ids
hash the URL, so URLs are normalised (``127.0.0.1:<port>`` → ``127.0.0.1:PORT``) and documents are
identified by URL + record id; shard bytes are compared only when the two builds used the same
port. ``python tests/golden/interleaved_summary.py BUILD_DIR OUT.json`` writes a golden file (run
on the reference outputs of the old code in /tmp/golden).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

_PORT = re.compile(r"127\.0\.0\.1:\d+")
_HEXID = re.compile(r"^[0-9a-f]{16}$")


def norm(x: Any) -> Any:
    if isinstance(x, str):
        return _PORT.sub("127.0.0.1:PORT", x)
    if isinstance(x, list):
        return [norm(v) for v in x]
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items()}
    return x


def _docs(build: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    from pmd.shard import read_tar_shard

    out = []
    for shard in manifest["shards"]:
        for key, members in read_tar_shard(build / shard["path"]):
            body = json.loads(members["json"])
            assert body["id"] == key
            body.pop("id")
            nb = norm(body)
            out.append({"url": nb["url"], "record": nb["general_metadata"].get("warc_record_id"),
                        "json_sha256": hashlib.sha256(json.dumps(nb, sort_keys=True).encode()).hexdigest(),
                        "images": [hashlib.sha256(members[m]).hexdigest() for m in body["images"] if m]})
    return sorted(out, key=lambda d: (d["url"], d["record"] or ""))


def _rejects(build: Path) -> list[list[Any]]:
    rows = pq.read_table(build / "stats" / "rejects.parquet").to_pylist()
    c: Counter = Counter()
    for r in rows:
        inp = r.get("input_file")
        inp = "<doc-id>" if isinstance(inp, str) and _HEXID.match(inp) else norm(inp)
        c[(r["stage"], r["outcome"], r["reason"], norm(r.get("url")), norm(r.get("image_url")), inp,
           r.get("input_line"))] += 1
    return sorted([list(k) + [n] for k, n in c.items()], key=lambda x: json.dumps(x))


def summarise(build_dir: str | Path) -> dict[str, Any]:
    build = Path(build_dir)
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    counters = json.loads((build / "stats" / "counters.json").read_text(encoding="utf-8"))
    ports = sorted(set(_PORT.findall(json.dumps(_docs_raw_urls(build)))))
    return {
        "ports": ports,
        "counters": sorted(counters, key=lambda c: (c["stage"], c["source"])),
        "total_samples": manifest["total_samples"],
        "shards": [{"path": s["path"], "samples": s["samples"], "sha256": s["sha256"]} for s in manifest["shards"]],
        "documents": _docs(build, manifest),
        "rejects": _rejects(build),
    }


def _docs_raw_urls(build: Path) -> list[str]:
    rows = pq.read_table(build / "stats" / "rejects.parquet", columns=["url"]).column("url").to_pylist()
    return [u for u in rows if u][:50]


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(summarise(sys.argv[1]), indent=1, sort_keys=True) + "\n")
