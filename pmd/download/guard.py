"""URL guard: refuse URLs that would make the downloader reach internal networks (SSRF).

A corpus build fetches millions of URLs written by strangers; one of them pointing at
``http://169.254.169.254/`` or ``http://10.0.0.5/admin`` must not turn the build into a proxy
into the cluster's own network. The guard allows only ``http``/``https`` URLs with a host, checks
IP literals in every spelling the C resolver accepts (``2130706433``, ``0x7f000001``,
``0177.0.0.1``, ``127.1``, ``[::ffff:127.0.0.1]``) and resolves names with ``getaddrinfo``
(cached per process); a name is refused when ANY of its addresses is refused.

Special-use names (RFC 6761) are answered without a lookup: ``localhost``/``*.localhost`` are
loopback, ``*.invalid`` never resolves. Cloud metadata endpoints are refused even when the policy
allows loopback or private addresses (tests and on-prem mirrors need those; nobody needs metadata).

``guard_partition`` runs the check on Spark executors (a ``mapInArrow`` over the requests, host
verdicts cached per task), so the driver never resolves the hosts of a corpus.

The downloader resolves names again when it connects: ``pmd.download.fetch_hooks``' opener checks
the address each connection actually reached with ``classify_address`` (DNS rebinding between this
check and the fetch) and re-checks redirects with ``check_url``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable, Iterator
from urllib.parse import urlsplit

import pyarrow as pa

from pmd.verdict import Verdict

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Addresses of instance-metadata services (AWS, GCP, Azure, OCI, ECS, Alibaba, AWS IPv6).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "192.0.0.192",
))
#: Host names of metadata services (compared lower-case, without a trailing dot).
METADATA_HOSTS: frozenset[str] = frozenset((
    "metadata", "metadata.google.internal", "metadata.goog", "metadata.azure.com",
    "metadata.azure.internal", "instance-data", "instance-data.ec2.internal",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"^[0-9a-fA-FxX.]+$")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")

Resolver = Callable[[str], "tuple[str, ...]"]


@dataclass(frozen=True)
class UrlPolicy:
    """What the guard lets through. Both flags default to off (production); tests and benchmarks
    serving images on ``127.0.0.1`` set ``allow_loopback``. Metadata endpoints are never allowed."""

    allow_loopback: bool = False
    allow_private: bool = False


class _Unresolvable(Exception):
    pass


@lru_cache(maxsize=65536)
def _resolve_cached(host: str) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError) as e:
        raise _Unresolvable(str(e)) from None
    return tuple(sorted({info[4][0] for info in infos}))


def resolve_host(host: str) -> tuple[str, ...]:
    """All addresses ``host`` resolves to (cached per process); raises if it does not resolve."""
    return _resolve_cached(host)


def clear_cache() -> None:
    _resolve_cached.cache_clear()


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form the C resolver accepts, or None for a name.

    Raises ``ValueError`` for a bracketed or colon-holding host that is no valid IPv6 address. A
    dotted host the C resolver does not take as a number (``999.1.1.1``, ``1.cafe``) is a name.
    """
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h.split("%")[0])
    except ValueError:
        pass
    if ":" in h:
        raise ValueError(f"bad IPv6 literal {host!r}")
    if _NUMERIC_HOST.match(h) and (h[0].isdigit()):
        # decimal (2130706433), hex (0x7f000001), octal (0177.0.0.1) and short (127.1) forms
        try:
            return ipaddress.IPv4Address(socket.inet_aton(h))
        except OSError:
            return None
    return None


def _embedded_ipv4(addr: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address tunnelled in an IPv6 one (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def classify_address(addr: IPAddress, policy: UrlPolicy = UrlPolicy()) -> str | None:
    """None when ``policy`` allows fetching from ``addr``, else the refusal reason."""
    if addr in METADATA_ADDRESSES:
        return "url_refused_metadata"
    inner = _embedded_ipv4(addr)
    if inner is not None:  # the tunnelled IPv4 address is where the packets end up
        return classify_address(inner, policy)
    if addr.is_unspecified:
        return "url_refused_unspecified"
    if addr.is_loopback:
        return None if policy.allow_loopback else "url_refused_loopback"
    if addr.is_link_local:
        return "url_refused_link_local"
    if addr.is_multicast:
        return "url_refused_multicast"
    if addr.is_reserved or (isinstance(addr, ipaddress.IPv4Address) and addr == ipaddress.IPv4Address("255.255.255.255")):
        return "url_refused_reserved"
    if addr.is_private or not addr.is_global:
        return None if policy.allow_private else "url_refused_private"
    return None


def _split(url: object) -> tuple[str | None, str | None]:
    """(host, error) of ``url``: host lower-cased without trailing dot."""
    if not isinstance(url, str) or not url or _BAD_CHARS.search(url):
        return None, "bad_url"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None, "bad_url"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None, "bad_url"
    host = host.rstrip(".").lower()
    if not host:
        return None, "bad_url"
    return host, None


def _check_host(host: str, policy: UrlPolicy, resolve: Resolver) -> Verdict:
    if host in METADATA_HOSTS:
        return Verdict.drop("url_refused_metadata")
    try:
        literal = parse_ip_literal(host)
    except ValueError:
        return Verdict.drop("bad_url")
    if literal is not None:
        reason = classify_address(literal, policy)
        return Verdict.drop(reason) if reason else Verdict.ok()
    if host == "localhost" or host.endswith(".localhost"):
        return Verdict.ok() if policy.allow_loopback else Verdict.drop("url_refused_loopback")
    if host.endswith(".invalid") or host == "invalid":
        return Verdict.drop("unresolvable_host")
    try:
        host.encode("idna")
    except UnicodeError:
        return Verdict.drop("bad_url")
    try:
        addresses = resolve(host)
    except _Unresolvable:
        return Verdict.drop("unresolvable_host")
    if not addresses:
        return Verdict.drop("unresolvable_host")
    for a in addresses:
        try:
            reason = classify_address(ipaddress.ip_address(a.split("%")[0]), policy)
        except ValueError:
            return Verdict.drop("unresolvable_host")
        if reason is not None:
            return Verdict.drop(reason)
    return Verdict.ok()


def check_url(url: str, policy: UrlPolicy = UrlPolicy(), resolve: Resolver | None = None) -> Verdict:
    """Keep, or drop with a reason: ``bad_url``, ``unresolvable_host``, ``url_refused_metadata``,
    ``url_refused_loopback``, ``url_refused_private``, ``url_refused_link_local``,
    ``url_refused_multicast``, ``url_refused_reserved``, ``url_refused_unspecified``.

    ``resolve`` (host → addresses, raising for unknown hosts) defaults to cached ``getaddrinfo``.
    """
    host, error = _split(url)
    if error:
        return Verdict.drop(error)
    return _check_host(host, policy, resolve or resolve_host)  # type: ignore[arg-type]


def check_urls(urls: Iterable[str], policy: UrlPolicy = UrlPolicy(), resolve: Resolver | None = None,
               threads: int = 16, cache: dict[str, Verdict] | None = None) -> list[Verdict]:
    """``check_url`` for many URLs: each distinct host is checked once, lookups run in a thread pool.
    ``cache`` (host → verdict) carries verdicts across calls, e.g. over the batches of one Spark task."""
    urls = list(urls)
    hosts: dict[int, str] = {}
    verdicts: list[Verdict | None] = [None] * len(urls)
    for i, u in enumerate(urls):
        host, error = _split(u)
        if error:
            verdicts[i] = Verdict.drop(error)
        else:
            hosts[i] = host  # type: ignore[assignment]
    results = {} if cache is None else cache
    todo = sorted(set(hosts.values()) - results.keys())
    fn = resolve or resolve_host
    if len(todo) > 1 and threads > 1:
        with ThreadPoolExecutor(min(threads, len(todo))) as pool:
            results.update(zip(todo, pool.map(lambda h: _check_host(h, policy, fn), todo)))
    else:
        results.update((h, _check_host(h, policy, fn)) for h in todo)
    for i, h in hosts.items():
        verdicts[i] = results[h]
    return verdicts  # type: ignore[return-value]


#: Output of ``guard_partition``: each request with the guard's refusal reason (null: allowed).
CHECKED_SCHEMA = pa.schema([pa.field("image_key", pa.string(), nullable=False), pa.field("url", pa.string()),
                            pa.field("refused", pa.string())])


def guard_partition(policy: UrlPolicy = UrlPolicy(), threads: int = 16, resolve: Resolver | None = None
                    ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A ``mapInArrow`` function: ``image_key, url`` batches → ``CHECKED_SCHEMA`` batches, checked where
    the task runs (the executors resolve the names, never the driver). Host verdicts are cached for
    the whole task; a null URL is ``bad_url``."""

    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        cache: dict[str, Verdict] = {}
        for batch in batches:
            urls = batch.column("url").to_pylist()
            verdicts = check_urls(urls, policy, resolve, threads, cache)
            refused = [None if v else v.reason for v in verdicts]
            yield pa.RecordBatch.from_arrays([batch.column("image_key"), batch.column("url"),
                                              pa.array(refused, pa.string())], schema=CHECKED_SCHEMA)

    return fn
