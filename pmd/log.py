"""Logging setup for the CLI (the library itself only logs; it never prints)."""

from __future__ import annotations

import io
import logging
import os
import sys


def setup_logging(verbosity: int = 0) -> None:
    """INFO by default, DEBUG with ``-v``, WARNING with ``-q``; ``PMD_LOG_LEVEL`` overrides."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    env = os.environ.get("PMD_LOG_LEVEL")
    if env:
        level = getattr(logging, env.upper(), level)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("py4j", "urllib3", "PIL", "fsspec", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


class LogLines(io.TextIOBase):
    """A text stream whose non-blank lines become INFO records of ``logger`` (with ``prefix``): for
    third-party code that prints progress, under ``contextlib.redirect_stdout``."""

    def __init__(self, logger: logging.Logger, prefix: str = "") -> None:
        self.logger, self.prefix = logger, prefix

    def write(self, s: str) -> int:
        for line in s.splitlines():
            if line.strip():
                self.logger.info("%s%s", self.prefix, line.strip())
        return len(s)
