"""`pmd interleaved`: Build M3W-style interleaved documents from WARC files (Spark); `extract` one page."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

DESCRIPTION = """\
Build M3W-style interleaved documents from WARC files (Spark); `extract` one page.

  pmd interleaved --out DIR [--config C] [--set KEY=VALUE ...]
      read WARC files (default: the embedded sample's WARCs, generated and served on loopback),
      extract text and images in page order, filter (profile obelics or m3w), dedup, download
      the images and write shards/docs-NNNNNN.tar + .parquet, stats/ and manifest.json.

  pmd interleaved extract FILE.html --url URL [--charset C] [--all]
      extract one saved page and print the document as JSON (--all: whole page, no main-content
      selection).
"""
log = logging.getLogger("pmd.interleaved")


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("interleaved", help="Build M3W-style interleaved documents from WARC files (Spark); "
                       "`extract` one page.", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="interleaved config YAML (path or bundled name); default: embedded sample")
    p.add_argument("--out", type=Path, help="build directory")
    p.add_argument("--seed", type=int, default=0, help="embedded sample seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override (YAML value), e.g. --set profile=m3w")
    p.set_defaults(func=run, interleaved_command=None)
    actions = p.add_subparsers(dest="interleaved_command", metavar="{extract}")
    e = actions.add_parser("extract", help="extract one HTML page and print it as JSON",
                           description="Extract one saved HTML page as an interleaved document (JSON on stdout).")
    e.add_argument("file", type=Path, help="an HTML file (.html or .html.gz)")
    e.add_argument("--url", required=True, help="the page's URL (resolves relative image URLs)")
    e.add_argument("--charset", help="the HTTP header's charset, if known")
    e.add_argument("--all", action="store_true", help="keep the whole page (no main-content selection)")
    e.set_defaults(func=run)


def _overrides(items: list[str]) -> dict:
    import yaml

    from pmd.errors import UserError

    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    from pmd.errors import UserError

    if args.interleaved_command == "extract":
        import gzip

        from pmd.interleaved.extract import extract_document

        try:
            data = args.file.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {args.file}: {e.strerror or e}") from None
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        doc = extract_document(data, args.url, charset=args.charset, main_content=not args.all)
        json.dump({"id": doc.id, "url": doc.url, "texts": doc.texts, "images": doc.images, "metadata": doc.metadata,
                   "general_metadata": doc.general_metadata}, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return 0
    if args.out is None:
        raise UserError("pmd interleaved needs --out DIR (or the `extract` action)")
    from pmd.config import ConfigError, load

    overrides = _overrides(args.set)
    from pmd.interleaved.config import InterleavedConfig
    from pmd.interleaved.run import build, build_embedded_sample

    try:
        if args.config:
            from pmd.config import resolve_config_path

            path = resolve_config_path(args.config)
            import yaml

            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            data.update(overrides)
            cfg = load(InterleavedConfig, data)
            manifest = build(cfg, args.out, root=path.parent if cfg.inputs else None) if cfg.inputs else None
            if manifest is None:
                build_embedded_sample(args.out, seed=args.seed, overrides=data)
        else:
            build_embedded_sample(args.out, seed=args.seed, overrides=overrides)
    except ConfigError as e:
        raise UserError(str(e)) from None
    log.info("manifest: %s", args.out / "manifest.json")
    return 0
