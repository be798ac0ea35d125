"""Canonical loopback authorities: URLs that name one fixed loopback address and port while the
server behind them listens wherever the OS put it.

The embedded sample's image URLs name ``http://127.0.0.1:8765`` whatever port its server got, so
that no port reaches URLs, keys or shards: two clean builds are byte-identical. While the server
runs it *publishes* "canonical → actual" (``published``); the download workers connect to the
actual address (``remap``, called by ``pmd.download``'s connection hook). The mapping travels as
text: the driver reads it (``current_text``) into what it ships to the executors, and each worker
task ``adopt``s it, so it relies on no executor environment (Spark's python workers may have been
started before the server was). Only loopback authorities are mapped, and only to loopback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

ENV = "PMD_LOOPBACK_MAP"

Authority = tuple[str, int]


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split(authority: str) -> Authority:
    host, sep, port = authority.strip().rpartition(":")
    if not sep or not port.isdigit() or not _loopback(host):
        raise ValueError(f"{ENV}: {authority!r} is not a loopback HOST:PORT")
    return host.strip("[]").lower(), int(port)


@lru_cache(maxsize=64)
def parse(text: str) -> dict[Authority, Authority]:
    """``"127.0.0.1:8765=127.0.0.1:40123,..."`` → ``{("127.0.0.1", 8765): ("127.0.0.1", 40123)}``."""
    out: dict[Authority, Authority] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        canonical, sep, actual = item.partition("=")
        if not sep:
            raise ValueError(f"{ENV}: {item!r} is not CANONICAL=ACTUAL")
        out[_split(canonical)] = _split(actual)
    return out


def _format(mapping: dict[Authority, Authority]) -> str:
    def auth(a: Authority) -> str:
        return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"

    return ",".join(f"{auth(c)}={auth(a)}" for c, a in sorted(mapping.items()))


def current_text() -> str:
    """The mapping of this process as text (what a driver ships to its workers)."""
    return os.environ.get(ENV, "")


def adopt(text: str) -> None:
    """Make ``text`` (from ``current_text`` on the driver) this process's mapping; empty clears it."""
    if text:
        parse(text)  # refuse a malformed mapping here, not at the first connection
        os.environ[ENV] = text
    else:
        os.environ.pop(ENV, None)


def remap(address: Any) -> Any:
    """The address to connect to for ``address`` (a ``(host, port, ...)`` tuple): the actual one
    if ``address`` is a published canonical authority, else ``address`` unchanged."""
    text = os.environ.get(ENV)
    if not text or not isinstance(address, tuple) or len(address) < 2:
        return address
    try:
        key = (str(address[0]).strip("[]").lower(), int(address[1]))
    except (TypeError, ValueError):
        return address
    actual = parse(text).get(key)
    return address if actual is None else (actual[0], actual[1], *address[2:])


@contextlib.contextmanager
def published(canonical: Authority, actual: Authority) -> Iterator[None]:
    """While inside, connections to ``canonical`` (made through ``remap``) go to ``actual``."""
    canonical, actual = _split(f"{canonical[0]}:{canonical[1]}"), _split(f"{actual[0]}:{actual[1]}")
    before = os.environ.get(ENV)
    mapping = dict(parse(before or ""))
    mapping[canonical] = actual
    os.environ[ENV] = _format(mapping)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
