"""`pmd sample`: Generate the embedded sample (raw metadata of all 9 sources, images, WARC) and serve its images."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

DESCRIPTION = """\
Generate the embedded sample (raw metadata of all 9 sources, images, WARC) and serve its images.

  pmd sample --out DIR [--seed N] [--base-url URL] [--scale X]
      write every PMD source's raw files in its real upstream format, rendered images with true
      captions, warc/sample.warc.gz and DIR/sample.json (the planted facts). Image URLs in the
      metadata point at --base-url, so serve DIR there before downloading.

  pmd sample serve DIR [--host 127.0.0.1] [--port N] [--rate-404 F ...] [--slow-seconds S]
      serve DIR's images over HTTP until Ctrl-C (port default: the one DIR's sample.json names).
      Paths /fault/<kind>/<path> inject a fault (404, 500, slow, truncated, notimage, noai);
      --rate-* inject the same faults into that fraction of ordinary paths.
"""
log = logging.getLogger("pmd.sample")


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("sample", help="Generate the embedded sample (raw metadata of all 9 sources, images, WARC) "
                       "and serve its images.", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="directory to write the sample into (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed + base URL = identical files)")
    p.add_argument("--base-url", default="http://127.0.0.1:8765", help="where the images will be served")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the number of rows per source")
    p.set_defaults(func=run, sample_command=None)
    actions = p.add_subparsers(dest="sample_command", metavar="{serve}")
    s = actions.add_parser("serve", help="serve a generated sample's images over HTTP until Ctrl-C",
                           description="Serve a generated sample's images (and fault paths) over HTTP until Ctrl-C.")
    s.add_argument("dir", type=Path, help="a directory written by `pmd sample --out`")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=None, help="default: the port in DIR/sample.json's base_url")
    for kind in ("404", "500", "slow", "truncated", "notimage", "noai"):
        s.add_argument(f"--rate-{kind}", type=float, default=0.0, metavar="F",
                       help=f"fraction of ordinary paths answered with the {kind} fault")
    s.add_argument("--slow-seconds", type=float, default=3.0, help="delay of the slow fault")
    s.add_argument("--fault-seed", type=int, default=0, help="which paths get injected faults")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pmd.errors import UserError

    if args.sample_command == "serve":
        return _serve(args)
    if args.out is None:
        raise UserError("pmd sample needs --out DIR (or `pmd sample serve DIR`); see `pmd sample --help`")
    if args.scale <= 0:
        raise UserError(f"--scale must be > 0, got {args.scale}")
    from pmd.outputs import check_out

    check_out(args.out, want="dir")
    from pmd.sample.generate import generate_sample

    path = generate_sample(args.out, seed=args.seed, base_url=args.base_url, scale=args.scale)
    meta = json.loads(path.read_text(encoding="utf-8"))
    rows = meta["expected"]["rows"]
    print(f"wrote {path} ({len(meta['sources'])} sources, {sum(rows.values())} raw rows, "
          f"{len(meta['expected']['warc']['pages'])} WARC pages)")
    print(f"serve its images with: pmd sample serve {args.out}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from pmd.errors import UserError
    from pmd.sample.server import FaultConfig, ImageServer

    root: Path = args.dir
    if not root.is_dir():
        raise UserError(f"{root} is not a directory (generate one with `pmd sample --out {root}`)")
    port = args.port
    meta_path = root / "sample.json"
    if port is None and meta_path.exists():
        base_url = json.loads(meta_path.read_text(encoding="utf-8")).get("base_url", "")
        tail = base_url.rsplit(":", 1)[-1].split("/")[0]
        port = int(tail) if tail.isdigit() else None
    rates = {f"rate_{k}": getattr(args, f"rate_{k}") for k in ("404", "500", "slow", "truncated", "notimage", "noai")}
    try:
        faults = FaultConfig(**rates, slow_seconds=args.slow_seconds, seed=args.fault_seed)
        server = ImageServer(root, host=args.host, port=port if port is not None else 8765, faults=faults)
    except (ValueError, OSError) as e:
        raise UserError(f"cannot serve {root}: {e}") from e
    log.info("serving %s at %s (Ctrl-C to stop)", root, server.base_url)
    print(server.base_url, flush=True)
    server.serve_forever()
    return 0
