"""Startup hook of every child Python of a guarded process (see ``pmd.netguard.cover_children``).

Python imports ``sitecustomize`` at startup from the first ``sys.path`` entry that has one; this
directory is put first on ``PYTHONPATH``, so a Spark python worker, a spawned multiprocessing child
or any subprocess started while ``PMD_NETGUARD=1`` installs the network guard before its own code
runs. Nothing here does anything when ``PMD_NETGUARD`` is not ``1``.
"""

import os
import sys

if os.environ.get("PMD_NETGUARD") == "1":
    try:
        from pmd import netguard
    except ImportError:  # a Python without pmd installed: import it from the checkout holding this file
        sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        from pmd import netguard
    netguard.install()
