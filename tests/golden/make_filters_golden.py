"""Write tests/golden/filters_web.json and filters_sample_warc.json: what the interleaved filters decide.

Made once with the filters as they were before the rules split (commit ed999f8) and compared by
tests/test_interleaved_filters_golden.py with today's rules, so "filters as named rules" provably
keeps every reason and every kept document. Regenerate only on purpose (a filter change that is
meant), from the repository root::

    .venv/bin/python tests/golden/make_filters_golden.py [--note WHY] [SAMPLE_WARC]

with the code to record first on ``PYTHONPATH`` (the old tree: ``PYTHONPATH=/path/to/old/checkout``).
``--note`` is stored as the files' ``"note"``: why they were re-made (a difference must be a documented
fix; the filters themselves must decide as before on every page whose extraction did not change).

* ``filters_web.json``: the real pages of ``../shared/data/web`` (extracted with ``main_content=True``,
  url ``https://<relative path>/``): per document a hash of the filter input and, per case, the
  outcome (``kept`` + a hash of the kept document, or the drop reason) and a hash of its node rejects.
  Inputs are not stored (the pages are); a page whose extraction has changed since is not compared.
* ``filters_sample_warc.json``: the documents of the embedded sample's WARC (seed 0, images at
  ``http://127.0.0.1:8765``), inputs stored in full, so the comparison does not depend on the sample
  generator, the WARC reader or the extractor.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from pmd.counters import CounterBook
from pmd.interleaved.config import resolve_filters
from pmd.interleaved.filters import filter_documents
from pmd.records import InterleavedDocument

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT.parent / "shared" / "data" / "web"
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "obelics": ("obelics", {}),
    "m3w": ("m3w", {}),
    # every document reaches the text rules (real pages often have no image passing the image rules)
    "obelics_no_image_minimum": ("obelics", {"min_images": 0}),
    "m3w_no_image_minimum": ("m3w", {"min_images": 0}),
}


def digest(x: Any) -> str:
    return hashlib.sha256(json.dumps(x, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


def doc_dict(d: InterleavedDocument) -> dict[str, Any]:
    return {"url": d.url, "texts": d.texts, "images": d.images, "metadata": d.metadata,
            "general_metadata": d.general_metadata}


def from_dict(d: dict[str, Any]) -> InterleavedDocument:
    return InterleavedDocument(d["url"], d["texts"], d["images"], d["metadata"], d["general_metadata"])


def web_documents(web: Path = WEB) -> list[InterleavedDocument]:
    """The filter inputs of the real pages, as the build's extract stage makes them."""
    from pmd.interleaved.extract import extract_document

    out = []
    for p in sorted(web.rglob("*")):
        if p.is_file() and p.suffix in (".gz", ".html", ".htm"):
            data = p.read_bytes()
            html = gzip.decompress(data) if p.suffix == ".gz" else data
            doc = extract_document(html, f"https://{p.relative_to(web).as_posix()}/", main_content=True)
            if doc.texts:
                out.append(doc)
    return out


def outcomes(docs: list[InterleavedDocument], profile: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Per document id: ``kept:<hash of the kept document>`` or the drop reason; node rejects per url; counters."""
    cfg = resolve_filters(profile, overrides)
    book, sink = CounterBook(), []
    res: dict[str, str] = {}
    for out in filter_documents(docs, cfg, book.get("filter"), book.get("filter_nodes"), sink=sink):
        if isinstance(out, InterleavedDocument):
            res[out.id] = "kept:" + digest(doc_dict(out))
        else:
            res[out.input_file] = out.reason
    rejects: dict[str, list] = {}
    for r in sink:
        rejects.setdefault(r["url"], []).append([r["stage"], r["reason"], r["image_url"], r["message"]])
    return {"docs": res, "node_rejects": {u: digest(v) for u, v in rejects.items()}, "counters": book.to_list()}


def golden(docs: list[InterleavedDocument], store_inputs: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"input_digests": {d.id: digest(doc_dict(d)) for d in docs},
                           "cases": {name: outcomes(docs, *case) for name, case in CASES.items()}}
    if store_inputs:
        out["inputs"] = [doc_dict(d) for d in docs]
    return out


def sample_warc_documents(warc: str) -> list[InterleavedDocument]:
    from pmd.interleaved.stages import extract_pages
    from pmd.interleaved.warc import read_warc

    return list(extract_pages(read_warc(warc), CounterBook(), [], True))


def code_version() -> str:
    """Which code made the golden, the same on every machine: the git commit of the checkout ``pmd`` is
    imported from (``+ uncommitted changes`` when its tree differs), else the package version. Never a
    local path: a golden is compared on other machines and must not hold this one's layout."""
    import subprocess

    import pmd

    src = Path(pmd.__file__).resolve().parent
    try:
        git = ["git", "-C", str(src)]
        head = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True, text=True,
                               check=True).stdout.strip()
        return f"pmd at commit {head}" + (" + uncommitted changes to pmd/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return f"pmd {getattr(pmd, '__version__', 'unknown version')} (not a git checkout)"


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    made_by = f"tests/golden/make_filters_golden.py with {code_version()}"
    note = None
    if argv[:1] == ["--note"]:
        note, argv = argv[1], argv[2:]
    sets = {"web": (web_documents(), False)}
    if argv:
        sets["sample_warc"] = (sample_warc_documents(argv[0]), True)
    for name, (docs, store) in sets.items():
        data = {"made_by": made_by, **({"note": note} if note else {}), **golden(docs, store)}
        (here / f"filters_{name}.json").write_text(json.dumps(data, ensure_ascii=False, sort_keys=True, indent=0) + "\n",
                                                   encoding="utf-8")
        print(name, len(docs), {c: sum(v.startswith("kept") for v in g["docs"].values()) for c, g in data["cases"].items()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
