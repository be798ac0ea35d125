"""`pmd retry-failed`: Re-attempt the failed downloads of a build and merge them in."""

from __future__ import annotations

import argparse

HELP = "Re-attempt the failed downloads of a build and merge them in."


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("retry-failed", help=HELP, description=HELP + " Retries timeouts, 5xx and other "
                       "transient errors; --all also retries 404, not_an_image, noai... (the URL guard still applies). "
                       "Successes are merged in, the build is re-sharded and gets a new manifest.")
    p.add_argument("build_dir", help="a finished `pmd build` directory")
    p.add_argument("--all", action="store_true", help="retry every failed URL, not only transient errors")
    p.add_argument("--timeout", type=int, help="download timeout (s) for this retry (default: the build's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pmd.spark.pairs.retry import retry_failed
    from pmd.errors import UserError

    if not (Path(args.build_dir) / "manifest.json").exists():
        raise UserError(f"{args.build_dir}: no manifest.json (not a finished build)")
    res = retry_failed(args.build_dir, all_errors=args.all, timeout=args.timeout)
    print(f"retried {res['retried']}, recovered {res['recovered']}, still failed {res['still_failed']}")
    return 0
