"""Helper processes die with the process that started them.

img2dataset starts a statistics process (``spawn``: a fresh interpreter, ~400 MB once pandas and
friends are imported) and multiprocessing a resource tracker; when a build is SIGKILLed - the OOM
killer, a cluster manager, ``kill -9`` - nothing tells them, and they stay alive forever. A child
calls ``die_with_parent`` first thing: on Linux the kernel sends it SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), and everywhere a daemon thread watches the parent's pid as a fallback.
The resource tracker exits by itself once every process holding its pipe is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _set_pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, interval: float) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != parent_pid:
            os._exit(1)  # orphaned: nobody is left to read what this process would produce


def die_with_parent(parent_pid: int, interval: float = 1.0) -> None:
    """Make this process end when ``parent_pid`` (the process that started it) ends."""
    _set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid, interval), name="pmd-parent-watch",
                     daemon=True).start()
