"""The ``pmd`` command: one entry point, one module per subcommand under ``pmd.commands``.

Each command module exposes ``register(subparsers)``; it imports its heavy dependencies inside
its handler so that ``pmd --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pmd import __version__
from pmd.log import setup_logging

COMMAND_MODULES = [
    "pmd.commands.sample",
    "pmd.commands.sources",
    "pmd.commands.build",
    "pmd.commands.retry_failed",
    "pmd.commands.export",
    "pmd.commands.interleaved",
    "pmd.commands.stats",
    "pmd.commands.train",
    "pmd.commands.demo",
]

log = logging.getLogger("pmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pmd",
        description="Build multimodal pretraining corpora (PMD pairs, M3W-style interleaved documents), "
        "inspect them, and validate them with a reference FLAVA trainer.",
    )
    parser.add_argument("--version", action="version", version=f"pmd {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(-1 if args.quiet else args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line for users; -v shows the traceback
        from pmd.errors import UserError

        if isinstance(exc, UserError):
            log.error("%s", exc)
            log.debug("traceback", exc_info=True)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
