"""A process-wide guard that refuses the network beyond loopback (cc_net-style no-network tests).

Tests install it from ``tests/conftest.py`` so that no test can reach the web by accident, DNS
included: a host name other than ``localhost`` is refused *before* it is resolved (resolving a
public name is already network use), and connections or datagrams to a non-loopback address are
refused before any packet leaves.

Child processes are covered too: ``install(children=True)`` sets ``PMD_NETGUARD=1`` and puts
``pmd/_netguard_site`` (a ``sitecustomize`` module) first on ``PYTHONPATH``, so every Python
started from this process or from its children (Spark's python workers, which the JVM launches
with its inherited environment; img2dataset's and multiprocessing's spawned interpreters; plain
subprocesses) installs the guard at startup, before any of its own code runs.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

ENV = "PMD_NETGUARD"
#: the directory whose ``sitecustomize.py`` installs the guard in every child Python
SITE_DIR = Path(__file__).resolve().parent / "_netguard_site"

_MARK = "_pmd_netguard"
_installed: dict[str, Any] = {}


class NetworkAccessError(RuntimeError):
    """A connection to a non-loopback address (or a lookup of a non-loopback name) was attempted
    while the guard is on."""


class NameResolutionRefused(socket.gaierror, NetworkAccessError):
    """A name lookup refused by the guard. Also a ``socket.gaierror``: code that handles a name
    that does not resolve (an offline machine) handles this the same way."""


def _host_text(host: Any) -> str:
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    return str(host).strip().strip("[]").split("%", 1)[0].rstrip(".").lower()


def _is_loopback_name(host: Any) -> bool:
    h = _host_text(host)
    return h in ("", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback") or h.endswith(".localhost")


def _is_loopback(address: Any, family: int) -> bool:
    if family == getattr(socket, "AF_UNIX", object()):
        return True
    host = address[0] if isinstance(address, tuple) else address
    if _is_loopback_name(host):
        return True
    try:
        return ipaddress.ip_address(_host_text(host)).is_loopback
    except ValueError:
        return False  # a host name other than localhost: refuse, resolution alone is a network use


def _needs_no_lookup(host: Any) -> bool:
    """True for what the resolver answers without asking anyone: no host, loopback names and
    numeric addresses (any spelling ``inet_aton`` takes, ``127.1`` included). ``connect`` then
    judges the address itself."""
    if host is None or _is_loopback_name(host):
        return True
    h = _host_text(host)
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(h)
        return True
    except (OSError, ValueError):
        return False


def _refuse_name(host: Any) -> NameResolutionRefused:
    return NameResolutionRefused(socket.EAI_NONAME, f"name lookup of {host!r} refused by pmd.netguard: "
                                 "tests may only use loopback (no DNS)")


def install(children: bool = False) -> None:
    """Patch ``socket`` so that connect/connect_ex/sendto to anything but loopback raise
    ``NetworkAccessError`` and name lookups of anything but loopback names and numeric addresses
    raise ``NameResolutionRefused``. ``children=True`` also makes every child Python install it."""
    if children:
        cover_children()
    if _installed or getattr(socket.socket.connect, _MARK, False):
        return
    orig = {name: getattr(socket.socket, name) for name in ("connect", "connect_ex", "sendto")}
    lookups = {name: getattr(socket, name) for name in
               ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")}

    def check(sock: socket.socket, address: Any) -> None:
        if not _is_loopback(address, sock.family):
            raise NetworkAccessError(f"network access to {address!r} refused: tests may only use loopback")

    def connect(self: socket.socket, address: Any) -> Any:
        check(self, address)
        return orig["connect"](self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        check(self, address)
        return orig["connect_ex"](self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> Any:
        check(self, args[-1])
        return orig["sendto"](self, data, *args)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _needs_no_lookup(host):
            raise _refuse_name(host)
        return lookups["getaddrinfo"](host, *args, **kwargs)

    def gethostbyname(host: Any) -> Any:
        if not _needs_no_lookup(host):
            raise _refuse_name(host)
        return lookups["gethostbyname"](host)

    def gethostbyname_ex(host: Any) -> Any:
        if not _needs_no_lookup(host):
            raise _refuse_name(host)
        return lookups["gethostbyname_ex"](host)

    def gethostbyaddr(host: Any) -> Any:  # a reverse lookup asks DNS about any address but loopback
        if not _is_loopback(host, socket.AF_INET):
            raise _refuse_name(host)
        return lookups["gethostbyaddr"](host)

    def getnameinfo(sockaddr: Any, flags: int) -> Any:
        numeric = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        if flags & numeric != numeric and not _is_loopback(sockaddr, socket.AF_INET):
            raise _refuse_name(sockaddr[0] if isinstance(sockaddr, tuple) else sockaddr)
        return lookups["getnameinfo"](sockaddr, flags)

    patched = {"connect": connect, "connect_ex": connect_ex, "sendto": sendto}
    for name, fn in patched.items():
        setattr(fn, _MARK, True)
        setattr(socket.socket, name, fn)
    for fn in (getaddrinfo, gethostbyname, gethostbyname_ex, gethostbyaddr, getnameinfo):
        setattr(fn, _MARK, True)
        setattr(socket, fn.__name__, fn)
    _installed.update(methods=orig, lookups=lookups)


def installed() -> bool:
    """Whether the guard is on in this process (whoever installed it)."""
    return bool(getattr(socket.socket.connect, _MARK, False) and getattr(socket.getaddrinfo, _MARK, False))


def cover_children() -> None:
    """Make every Python started from now on by this process (and by its children) install the
    guard at startup: ``PMD_NETGUARD=1`` plus ``SITE_DIR`` first on ``PYTHONPATH``. Set this before
    the first SparkSession starts: its JVM, and so every python worker, inherits the environment."""
    if not (SITE_DIR / "sitecustomize.py").is_file():
        raise RuntimeError(f"{SITE_DIR}/sitecustomize.py is missing: child processes cannot be guarded")
    os.environ[ENV] = "1"
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(SITE_DIR)]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(SITE_DIR), *parts])


def uninstall() -> None:
    """Undo ``install`` in this process (children already started keep their guard)."""
    if not _installed:
        return
    for name, fn in _installed["methods"].items():
        setattr(socket.socket, name, fn)
    for name, fn in _installed["lookups"].items():
        setattr(socket, name, fn)
    _installed.clear()
