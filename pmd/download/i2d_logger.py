"""img2dataset's statistics process, with its progress lines logged instead of printed.

img2dataset starts ``LoggerProcess`` (a ``spawn`` child) that prints "worker - success: ... images per
sec ..." lines to stdout, which ends up in the middle of a user's terminal or job output. This
subclass runs the same process with stdout turned into log records of ``pmd.download.img2dataset``
at the level the parent process logs ``pmd`` at, and that dies with its parent (a SIGKILLed build
leaves no statistics process behind, ``pmd.download.process_hygiene``). It lives in its own module
because the child unpickles the process object by importing its class.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any

from img2dataset.logger import LoggerProcess

from pmd.log import LogLines

_NAME = "pmd.download.img2dataset"


class LoggingLoggerProcess(LoggerProcess):
    """``LoggerProcess`` whose printed lines become INFO records (dropped when the parent logs ``pmd``
    above INFO, e.g. ``pmd -q``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pmd_log_level = logging.getLogger("pmd").getEffectiveLevel()
        self.pmd_parent_pid = os.getpid()

    def run(self) -> None:
        from pmd.download.img2dataset_adapter import honour_netguard
        from pmd.download.process_hygiene import die_with_parent

        die_with_parent(self.pmd_parent_pid)
        honour_netguard()
        log = logging.getLogger(_NAME)
        log.propagate = False
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(self.pmd_log_level)
        with contextlib.redirect_stdout(LogLines(log)):
            super().run()
