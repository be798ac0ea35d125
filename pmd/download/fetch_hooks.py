"""The urllib opener every download worker fetches with: guarded, honest, and bounded.

img2dataset fetches with ``urllib.request.urlopen`` and reads each body whole with ``r.read()``;
``install_worker_hooks`` makes ``urlopen`` in the worker process use ``build_guarded_opener``, which

* re-checks every redirect with the URL guard (urllib follows redirects anywhere);
* refuses a connection right after the TCP connect (before TLS or any byte of the request) when the
  address it actually reached is one the guard refuses - the guard checked the name earlier, on an
  executor, and the name may point elsewhere by now (DNS rebinding);
* sends an honest User-Agent;
* bounds each fetch attempt: a body larger than ``max_bytes`` (by ``Content-Length`` or counted
  while reading) stops being read at the cap (``response_too_large``), and a fetch - connect,
  redirects, headers and body - that runs past ``deadline_s`` is cut off (``download_deadline``).
  ``timeout`` bounds one socket operation only: a server sending one byte per read never trips it,
  so one watchdog thread per process shuts the sockets of overdue fetches down.
"""

from __future__ import annotations

import heapq
import http.client
import ipaddress
import itertools
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from pmd.download.config import FetchBudget
from pmd.download.guard import UrlPolicy, check_url, classify_address
from pmd.loopback import remap

_CHUNK = 64 * 1024


class ResponseTooLarge(OSError):
    """The body of one response exceeds the byte budget; its message names the class."""


class DeadlineExceeded(OSError):
    """One fetch attempt ran past its deadline; its message names the class."""


class _Fetch:
    """One fetch attempt (its redirects included): deadline, sockets, and whether it was cut off."""

    __slots__ = ("deadline", "budget", "sockets", "expired", "done", "read_bytes")

    def __init__(self, budget: FetchBudget) -> None:
        self.budget = budget
        self.deadline = time.monotonic() + budget.deadline_s
        self.sockets: list[socket.socket] = []
        self.expired = False
        self.done = False
        self.read_bytes = 0

    def expire(self) -> None:
        if self.done:
            return
        self.expired = True
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)  # a blocked recv returns at once
            except OSError:
                pass

    def overdue(self) -> bool:
        return self.expired or time.monotonic() > self.deadline

    def deadline_error(self) -> DeadlineExceeded:
        self.done = True
        return DeadlineExceeded(f"download_deadline: the fetch took longer than {self.budget.deadline_s:g} s")


class _Watchdog:
    """One daemon thread per process that cuts off fetches still running at their deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Fetch]] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, fetch: _Fetch) -> None:
        with self._cv:
            heapq.heappush(self._heap, (fetch.deadline, next(self._seq), fetch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="pmd-fetch-deadlines", daemon=True)
                self._thread.start()
            self._cv.notify()

    def _run(self) -> None:
        with self._cv:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cv.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                heapq.heappop(self._heap)[2].expire()


_WATCHDOG = _Watchdog()
_local = threading.local()


def _current_fetch() -> _Fetch | None:
    return getattr(_local, "fetch", None)


class _GuardedRedirectHandler(urllib.request.HTTPRedirectHandler):
    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        verdict = check_url(newurl, self.policy)
        if not verdict:
            raise urllib.error.URLError(f"{verdict.reason}: redirect to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _UserAgentHandler(urllib.request.BaseHandler):
    handler_order = 100

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent

    def http_request(self, req: urllib.request.Request) -> urllib.request.Request:
        req.add_header("User-agent", self.user_agent)
        return req

    https_request = http_request


def _checked_connections(http_class: Any, policy: UrlPolicy, req: urllib.request.Request) -> Any:
    """``http_class`` whose sockets join the current fetch (so its deadline can cut them off) and,
    unless proxied, are refused right after the TCP connect when the peer address is one the guard
    refuses. Through a proxy the peer is the proxy, so the address check is left to it."""
    check_peer = not (req.has_proxy() or getattr(req, "_tunnel_host", None))

    def make(host: str, **kw: Any) -> Any:
        conn = http_class(host, **kw)
        create = conn._create_connection

        def create_checked(address: Any, *args: Any, **kwargs: Any) -> Any:
            sock = create(remap(address), *args, **kwargs)  # a canonical loopback authority → its real port
            fetch = _current_fetch()
            if fetch is not None:
                fetch.sockets.append(sock)
                if fetch.overdue():
                    sock.close()
                    raise fetch.deadline_error()
            if check_peer:
                try:
                    peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
                except (OSError, ValueError, IndexError):
                    peer = None  # not an IP socket: nothing a guard on addresses can say
                reason = classify_address(peer, policy) if peer is not None else None
                if reason:
                    sock.close()
                    raise OSError(f"{reason}: {address[0]} connected to {peer}")
            return sock

        conn._create_connection = create_checked
        return conn

    return make


class _PeerChecked:
    """Mixin for urllib's HTTP(S) handlers: every connection goes through ``_checked_connections``."""

    def __init__(self, policy: UrlPolicy) -> None:
        super().__init__()  # type: ignore[call-arg]
        self.policy = policy

    def do_open(self, http_class, req, **kw):  # type: ignore[no-untyped-def]
        return super().do_open(_checked_connections(http_class, self.policy, req), req, **kw)  # type: ignore[misc]


class _PeerCheckedHTTPHandler(_PeerChecked, urllib.request.HTTPHandler):
    pass


class _PeerCheckedHTTPSHandler(_PeerChecked, urllib.request.HTTPSHandler):
    pass


def _bounded(resp: Any, fetch: _Fetch) -> Any:
    """``resp`` whose ``read`` stops at the byte budget and the deadline (img2dataset calls ``read()``)."""
    limit = fetch.budget.max_bytes
    length = resp.headers.get("Content-Length") if getattr(resp, "headers", None) is not None else None
    if length is not None and length.strip().isdigit() and int(length) > limit:
        fetch.done = True
        resp.close()
        raise ResponseTooLarge(f"response_too_large: Content-Length {int(length)} exceeds max_response_bytes {limit}")
    if not hasattr(resp, "read1"):  # not an HTTP response (the guard lets only http(s) through)
        fetch.done = True
        return resp
    read1, close = resp.read1, resp.close

    def read(amt: int | None = None) -> bytes:
        want = None if amt is None or amt < 0 else amt
        chunks: list[bytes] = []
        got = 0
        while want is None or got < want:
            if fetch.overdue():
                resp.close()
                raise fetch.deadline_error()
            try:
                chunk = read1(_CHUNK if want is None else min(_CHUNK, want - got))
            except Exception:
                if fetch.overdue():
                    raise fetch.deadline_error() from None
                raise
            if fetch.overdue():  # the watchdog cut the socket: what came is not the body
                resp.close()
                raise fetch.deadline_error()
            if not chunk:
                remaining = getattr(resp, "length", None)
                if remaining:  # the server closed early: a truncated body, as ``read()`` says it
                    raise http.client.IncompleteRead(b"".join(chunks), remaining)
                fetch.done = True
                break
            got += len(chunk)
            fetch.read_bytes += len(chunk)
            if fetch.read_bytes > limit:
                fetch.done = True
                resp.close()
                raise ResponseTooLarge(f"response_too_large: body exceeds max_response_bytes {limit}")
            chunks.append(chunk)
        return b"".join(chunks)

    def close_and_finish() -> None:
        fetch.done = True
        close()

    resp.read, resp.close = read, close_and_finish
    return resp


class _BudgetedOpener(urllib.request.OpenerDirector):
    """An opener whose every outermost ``open`` is one fetch attempt under ``budget``; redirects
    (nested ``open`` calls from the redirect handler) share their fetch's deadline."""

    budget: FetchBudget

    def open(self, fullurl, data=None, timeout=socket._GLOBAL_DEFAULT_TIMEOUT):  # type: ignore[no-untyped-def,override]
        if _current_fetch() is not None:  # a redirect of the fetch in progress
            return super().open(fullurl, data, timeout)
        fetch = _Fetch(self.budget)
        _WATCHDOG.watch(fetch)
        _local.fetch = fetch
        try:
            resp = super().open(fullurl, data, timeout)
        except (ResponseTooLarge, DeadlineExceeded):
            fetch.done = True
            raise
        except Exception:
            if fetch.overdue():
                raise fetch.deadline_error() from None
            fetch.done = True
            raise
        finally:
            _local.fetch = None
        return _bounded(resp, fetch)


def build_guarded_opener(policy: UrlPolicy, user_agent: str,
                         budget: FetchBudget = FetchBudget()) -> urllib.request.OpenerDirector:
    """A urllib opener that re-checks redirects with the guard, refuses connections that reach a refused
    address (whatever the name resolved to when the guard checked it), sends ``user_agent``, and bounds
    each fetch by ``budget`` (body bytes, whole-fetch deadline)."""
    opener = urllib.request.build_opener(_GuardedRedirectHandler(policy), _PeerCheckedHTTPHandler(policy),
                                         _PeerCheckedHTTPSHandler(policy), _UserAgentHandler(user_agent))
    opener.__class__ = _BudgetedOpener  # build_opener always makes a plain OpenerDirector
    opener.budget = budget  # type: ignore[attr-defined]
    return opener


_hooks_installed: dict[str, Any] = {}


def install_worker_hooks(policy: UrlPolicy, user_agent: str, budget: FetchBudget = FetchBudget()) -> None:
    """Make ``urllib.request.urlopen`` in this process use ``build_guarded_opener(policy, user_agent,
    budget)`` (img2dataset fetches with ``urlopen``)."""
    key = (policy, user_agent, budget)
    if _hooks_installed.get("key") == key:
        return
    urllib.request.install_opener(build_guarded_opener(policy, user_agent, budget))
    _hooks_installed["key"] = key
