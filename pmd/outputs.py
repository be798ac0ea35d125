"""Up-front checks of a command's ``--out``: refused with one clear line before any work starts.

A build that runs for an hour and then fails to write its output, writes into a file, or replaces
its own input, loses the hour (or the input). ``check_out`` catches these while nothing has been
read yet: an output that is a file where a directory is meant (or the reverse), one that cannot
be written (read-only directory or file system, probed by creating a file, which also holds for
root), and one that is one of the command's inputs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pmd.errors import UserError


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe_writable(directory: Path) -> str | None:
    """None if a file can be created in ``directory``, else why not."""
    try:
        fd, name = tempfile.mkstemp(prefix=".pmd-write-probe-", dir=directory)
    except OSError as e:
        return e.strerror or str(e)
    os.close(fd)
    os.unlink(name)
    return None


def check_out(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), want: Literal["dir", "file"] = "dir",
              flag: str = "--out") -> Path:
    """Return ``path`` as a ``Path`` if a command can write its output there, else raise ``UserError``.

    ``want="dir"``: the output is a directory (created if missing; an existing one is reused, so a
    rerun resumes). ``want="file"``: the output is a file (replaced if it exists). ``inputs`` are
    the paths the command reads: the output may not be one of them. Nothing is created here.
    """
    if want not in ("dir", "file"):
        raise ValueError(f"want must be 'dir' or 'file', not {want!r}")
    out = Path(path)
    if not str(path):
        raise UserError(f"{flag}: an empty path")
    for inp in inputs:
        if inp is not None and str(inp) and _same(out, Path(inp)):
            raise UserError(f"{flag} {out} is also an input of this command; choose another output path")
    if out.exists():
        if want == "dir" and not out.is_dir():
            raise UserError(f"{flag} {out} is a file; expected a directory (remove it or choose another path)")
        if want == "file" and out.is_dir():
            raise UserError(f"{flag} {out} is a directory; expected a file path, e.g. {out / 'out'}")
    # the directory written in: the output itself (a directory) or the one the file lands in, or
    # the nearest ancestor that exists when they are still to be created
    target = _nearest_existing(out if want == "dir" else out.absolute().parent)
    if not target.is_dir():
        raise UserError(f"{flag} {out}: {target} is a file, so nothing can be created under it")
    why = _probe_writable(target)
    if why is not None:
        raise UserError(f"{flag} {out}: {target} is not writable (creating a file there failed: {why})")
    if want == "file" and out.exists() and not os.access(out, os.W_OK):
        raise UserError(f"{flag} {out}: the file is read-only")
    return out
