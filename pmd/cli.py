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
    "pmd.commands.score",
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
    """Run one command. A user error (``UserError``, ``ConfigError``, or an ``OSError`` about a path
    the user gave) is one line on stderr and exit status 2; ``-v`` adds its traceback. Anything else
    is a bug and keeps its traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(-1 if args.quiet else args.verbose)
    from pmd.errors import UserError

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except BrokenPipeError:  # `pmd ... | head`: the reader left; not an error of ours
        _silence_stdout()
        return 0
    except UserError as exc:
        log.error("%s", exc)
        log.debug("traceback", exc_info=True)
        return 2
    except OSError as exc:
        if exc.filename is None:  # no path of the user's involved: a bug or the machine, keep the traceback
            raise
        log.error("%s", _os_error_line(exc))
        log.debug("traceback", exc_info=True)
        return 2


def _os_error_line(exc: OSError) -> str:
    """``cannot write /x/y: Permission denied`` from an OSError about a path."""
    names = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    return f"{names}: {exc.strerror or exc}"


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
