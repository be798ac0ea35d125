"""What the interleaved golden test compares: a build directory reduced to port-free facts.

``summarise(build_dir)`` gives the counters, every reject row (stage, outcome, reason, page and
image URL, WARC pointer) with its multiplicity, one entry per kept document (its URL, WARC record
id, the sha256 of its shard JSON without the id, the sha256 of each image member) and the shard
sha256s. The embedded sample's URLs hold the loopback port it was served on, and document ids
hash the URL, so URLs are normalised (``127.0.0.1:<port>`` → ``127.0.0.1:PORT``) and documents are
identified by URL + record id; shard bytes are compared only when the two builds used the same
port. ``python tests/golden/interleaved_summary.py BUILD_DIR OUT.json`` writes a golden file (run
on the reference outputs of the old code in /tmp/golden).

``python tests/golden/interleaved_summary.py --warc-stages GOLDEN.json NOTE`` re-makes, in
``interleaved_warc.json``, what test_interleaved_build compares of the real WARCs: the counters and
reject rows of stages read..dedup_nodes, from the code on ``sys.path`` (``run_stages`` until dedup,
as the test runs it: no downloads, so no address is resolved); the download and shard entries stay
as they are, and NOTE (why it was re-made) becomes the file's ``"note"``.
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


WARC_STAGES = ("read", "extract", "filter", "filter_nodes", "dedup", "dedup_nodes")


def warc_stages(golden_path: str | Path, note: str, shared_data: Path | None = None) -> None:
    """Re-make the read..dedup_nodes counters and rejects of the real-WARC golden (see the module doc)."""
    import tempfile

    from pmd.config import load
    from pmd.interleaved.config import InterleavedConfig
    from pmd.interleaved.stages import expand_inputs
    from pmd.spark.interleaved import run_stages
    from pmd.spark.session import spark_session

    shared_data = shared_data or Path(__file__).resolve().parents[2].parent / "shared" / "data"
    inputs = sorted(str(p) for p in (shared_data / "warc").glob("*.warc.gz") if ".wat" not in p.name
                    and ".wet" not in p.name)
    cfg = load(InterleavedConfig, {"inputs": inputs, "partitions": 2})
    golden_path = Path(golden_path)
    golden = json.loads(golden_path.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        r = run_stages(spark_session(), cfg, expand_inputs(cfg.inputs), tmp, until="dedup")
        counters = [c for c in r.book.to_list() if c["stage"] in WARC_STAGES]
        c: Counter = Counter()
        for stage in ("extract", "dedup"):
            for x in (r.read(stage).where("kind = 'reject'")
                      .select("stage", "outcome", "reason", "url", "image_url", "input_file", "input_line").collect()):
                inp = x["input_file"]
                inp = "<doc-id>" if isinstance(inp, str) and _HEXID.match(inp) else norm(inp)
                c[(x["stage"], x["outcome"], x["reason"], norm(x["url"]), norm(x["image_url"]), inp,
                   x["input_line"])] += 1
    golden["counters"] = sorted([g for g in golden["counters"] if g["stage"] not in WARC_STAGES] + counters,
                                key=lambda g: (g["stage"], g["source"]))
    golden["rejects"] = sorted([g for g in golden["rejects"] if g[0] not in WARC_STAGES]
                               + [list(k) + [n] for k, n in c.items()], key=lambda x: json.dumps(x))
    golden["note"] = note
    golden_path.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "--warc-stages":
        warc_stages(sys.argv[2], sys.argv[3])
    else:
        Path(sys.argv[2]).write_text(json.dumps(summarise(sys.argv[1]), indent=1, sort_keys=True) + "\n")
