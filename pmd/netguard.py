"""A process-wide guard that refuses non-loopback connections (cc_net-style no-network tests).

Tests install it from ``tests/conftest.py`` so that no test can reach the web by accident;
``PMD_NETGUARD=1`` makes child processes started by the pipeline install it too.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_installed: dict[str, Any] = {}


class NetworkAccessError(RuntimeError):
    """A connection to a non-loopback address was attempted while the guard is on."""


def _is_loopback(address: Any, family: int) -> bool:
    if family == getattr(socket, "AF_UNIX", object()):
        return True
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost: refuse, resolution alone is a network use


def install() -> None:
    """Patch ``socket`` so connect/connect_ex/sendto to anything but loopback raise ``NetworkAccessError``."""
    if _installed:
        return
    orig_connect, orig_connect_ex, orig_sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto

    def check(sock: socket.socket, address: Any) -> None:
        if not _is_loopback(address, sock.family):
            raise NetworkAccessError(f"network access to {address!r} refused: tests may only use loopback")

    def connect(self: socket.socket, address: Any) -> Any:
        check(self, address)
        return orig_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        check(self, address)
        return orig_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> Any:
        check(self, args[-1])
        return orig_sendto(self, data, *args)

    _installed.update(connect=orig_connect, connect_ex=orig_connect_ex, sendto=orig_sendto)
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign]


def uninstall() -> None:
    if not _installed:
        return
    socket.socket.connect = _installed["connect"]  # type: ignore[method-assign]
    socket.socket.connect_ex = _installed["connect_ex"]  # type: ignore[method-assign]
    socket.socket.sendto = _installed["sendto"]  # type: ignore[method-assign]
    _installed.clear()
