"""`pmd interleaved`: Build M3W-style interleaved documents from WARC files (Spark); `extract` one page."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Build M3W-style interleaved documents from WARC files (Spark); `extract` one page.

  pmd interleaved --out DIR [--config C] [--set KEY=VALUE ...]
      read WARC files (default: the embedded sample's WARCs, generated and served on loopback),
      extract text and images in page order, filter (profile obelics or m3w), dedup, download
      the images and write shards/docs-NNNNNN.tar + .parquet, stats/ and manifest.json.

  pmd interleaved --list-filters [--config C] [--set KEY=VALUE ...]
      print the filter rules of the profile: each rule's config key (set it to null under
      filter_overrides to disable the rule), setting, drop reason and what passes.

  pmd interleaved extract FILE.html --url URL [--charset C] [--all]
      extract one saved page and print the document as JSON (--all: whole page, no main-content
      selection).

  pmd interleaved read FILE... [--json]
      read WARC files (no network): records, HTML pages, failures by reason (damaged stretches
      resynced past, digest mismatches) and bytes skipped, one line per file.
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
    p.add_argument("--list-filters", action="store_true",
                   help="print the filter rules of the profile (with --config/--set applied; without a config: "
                        "every profile) and exit")
    p.set_defaults(func=run, interleaved_command=None)
    actions = p.add_subparsers(dest="interleaved_command", metavar="{extract,read}")
    e = actions.add_parser("extract", help="extract one HTML page and print it as JSON",
                           description="Extract one saved HTML page as an interleaved document (JSON on stdout).")
    e.add_argument("file", type=Path, help="an HTML file (.html or .html.gz)")
    e.add_argument("--url", required=True, help="the page's URL (resolves relative image URLs)")
    e.add_argument("--charset", help="the HTTP header's charset, if known")
    e.add_argument("--all", action="store_true", help="keep the whole page (no main-content selection)")
    e.set_defaults(func=run)
    r = actions.add_parser("read", help="read WARC files and print what each holds (records, HTML pages, damage)",
                           description="Read WARC files (no network, no extraction) and print per file: records, "
                                       "HTML pages, drops and failures by reason, bytes skipped as unreadable. "
                                       "Exit status 1 if some file has no readable record.")
    r.add_argument("files", nargs="+", type=Path, metavar="FILE", help=".warc or .warc.gz files")
    r.add_argument("--json", action="store_true", help="one JSON line per file")
    r.set_defaults(func=_run_read)


def _run_read(args: argparse.Namespace) -> int:
    """`pmd interleaved read` (pmd.interleaved.warc.read_summary per file)."""
    from pmd.interleaved.warc import read_summary

    status = 0
    for f in args.files:
        s = read_summary(f)
        if s["records"] == sum(s["failed"].values()):  # nothing readable in it
            status = 1
        if args.json:
            sys.stdout.write(json.dumps(s, sort_keys=False) + "\n")
        else:
            failed = ", ".join(f"{k} {v}" for k, v in s["failed"].items()) or "none"
            sys.stdout.write(f"{s['path']}: {s['records']} records, {s['html_pages']} HTML pages, "
                             f"failed: {failed}, skipped {s['skipped_bytes']} bytes\n")
    return status


def load_request(config: str | None, set_items: list[str]) -> tuple[Any, dict[str, Any], Path | None]:
    """What ``pmd interleaved`` (and ``pipelines/interleaved_build.py``) is asked to build, checked
    completely before any work: ``(config, data, root)``. ``data`` is the config file's mapping with
    the ``--set`` items applied (what ``build_embedded_sample`` takes when the config names no
    inputs); ``root`` resolves relative inputs (the config file's folder)."""
    from pmd.config import apply_overrides, load, parse_overrides, read_yaml_mapping, resolve_config_path
    from pmd.interleaved.config import InterleavedConfig

    overrides = parse_overrides(set_items)
    root = None
    data: dict[str, Any] = {}
    if config:
        path = resolve_config_path(config)
        data, root = read_yaml_mapping(path), path.parent
    data = apply_overrides(data, overrides)
    cfg = load(InterleavedConfig, data)
    cfg.filters()  # the profile and its filter_overrides, strictly
    return cfg, data, root


def run(args: argparse.Namespace) -> int:
    from pmd.errors import UserError

    if args.interleaved_command == "extract":
        import gzip

        from pmd.interleaved.extract import extract_document

        import codecs
        import zlib

        if args.charset:
            try:
                codecs.lookup(args.charset)
            except LookupError:
                raise UserError(f"--charset {args.charset!r}: not a charset Python knows") from None
        try:
            data = args.file.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {args.file}: {e.strerror or e}") from None
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as e:
                raise UserError(f"{args.file}: damaged gzip data ({e or 'cut short'})") from None
        doc = extract_document(data, args.url, charset=args.charset, main_content=not args.all)
        json.dump({"id": doc.id, "url": doc.url, "texts": doc.texts, "images": doc.images, "metadata": doc.metadata,
                   "general_metadata": doc.general_metadata}, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return 0
    if getattr(args, "list_filters", False):
        return _list_filters(args)
    if args.out is None:
        raise UserError("pmd interleaved needs --out DIR (or the `extract` action)")
    from pmd.outputs import check_out

    cfg, data, root = load_request(args.config, args.set)
    check_out(args.out, inputs=[args.config] if args.config else [], want="dir")
    from pmd.interleaved.run import build, build_embedded_sample
    from pmd.shard.manifest import read_manifest

    if cfg.inputs:
        build(cfg, args.out, root=root)
    else:
        build_embedded_sample(args.out, seed=args.seed, overrides=data)
    manifest = read_manifest(args.out)
    log.info("manifest: %s", args.out / "manifest.json")
    if not manifest.get("total_samples"):
        log.error("the build kept no document (see %s and `pmd stats %s`)", args.out / "stats", args.out)
        return 1
    return 0


def _list_filters(args: argparse.Namespace) -> int:
    """``--list-filters``: each rule of the profile (level, config key, setting, drop reason, what passes)."""
    from pmd.interleaved.config import PROFILES
    from pmd.interleaved.rules import format_rules, rules_for

    if args.config or args.set:
        cfg = load_request(args.config, args.set)[0]
        sys.stdout.write(format_rules(rules_for(cfg.filters()), f"profile {cfg.profile}") + "\n")
        return 0
    from pmd.interleaved.rules import profile_rules

    sys.stdout.write("\n\n".join(format_rules(profile_rules(name), f"profile {name}") for name in PROFILES) + "\n")
    return 0
