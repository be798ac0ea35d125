"""A loopback HTTP server for the sample's images, with injectable faults.

Downloads in tests and in ``pmd build`` of the sample hit this server instead of the internet.
``/fault/<kind>/<rest>`` serves ``<rest>`` with a fault (404, 500, slow, truncated, notimage, noai);
``FaultConfig`` injects the same faults into a deterministic fraction of ordinary paths (chosen by
a hash of the path, so a retry of the same URL meets the same fault).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mimetypes
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

FAULT_KINDS = ("404", "500", "slow", "truncated", "notimage", "noai")
NOT_IMAGE_BODY = b"<!DOCTYPE html><html><head><title>Photo unavailable</title></head>" \
                 b"<body><p>This photo is no longer available.</p></body></html>\n"


@dataclass(frozen=True)
class FaultConfig:
    """Fractions of ordinary (non-``/fault/``) paths that get each fault; they must sum to <= 1."""

    rate_404: float = 0.0
    rate_500: float = 0.0
    rate_slow: float = 0.0
    rate_truncated: float = 0.0
    rate_notimage: float = 0.0
    rate_noai: float = 0.0
    slow_seconds: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        rates = self.rates()
        if any(r < 0 for r in rates.values()) or sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to <= 1, got {rates}")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must be >= 0")

    def rates(self) -> dict[str, float]:
        return {"404": self.rate_404, "500": self.rate_500, "slow": self.rate_slow,
                "truncated": self.rate_truncated, "notimage": self.rate_notimage, "noai": self.rate_noai}

    def fault_for(self, path: str) -> str | None:
        """The fault injected for ``path`` (stable for a given seed), or None."""
        rates = self.rates()
        if not any(rates.values()):
            return None
        digest = hashlib.blake2b(f"{self.seed}\x1f{path}".encode("utf-8"), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        edge = 0.0
        for kind, rate in rates.items():
            edge += rate
            if u < edge:
                return kind
        return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default 5 drops connections when hundreds of downloads start at once

    def __init__(self, address, root: Path, faults: FaultConfig | None) -> None:
        self.root = root
        self.faults = faults
        self.slow_seconds = faults.slow_seconds if faults else 3.0
        self.hits = 0
        self.hits_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        """Clients that hang up early (timeouts, truncation tests) are normal here: log, never print."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address, exc)
        else:
            log.warning("error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "pmd-sample/1"

    def log_message(self, fmt: str, *args) -> None:  # quiet: debug-level only
        log.debug("%s %s", self.address_string(), fmt % args)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)

    def _handle(self, head: bool) -> None:
        with self.server.hits_lock:
            self.server.hits += 1
        path = unquote(urlsplit(self.path).path)
        kind = None
        parts = path.lstrip("/").split("/", 2)
        if len(parts) == 3 and parts[0] == "fault":
            if parts[1] not in FAULT_KINDS:
                return self._error(400, f"unknown fault kind {parts[1]!r}", head)
            kind, path = parts[1], "/" + parts[2]
        elif self.server.faults is not None:
            kind = self.server.faults.fault_for(path)
        if kind == "404":
            return self._error(404, "not found (injected)", head)
        if kind == "500":
            return self._error(500, "internal server error (injected)", head)
        if kind == "notimage":
            return self._send(200, NOT_IMAGE_BODY, "image/jpeg", head)
        file = self._resolve(path)
        if file is None:
            return self._error(404, "not found", head)
        if kind == "slow":
            time.sleep(self.server.slow_seconds)
        data = file.read_bytes()
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if kind == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
            self.close_connection = True
            return
        extra = {"X-Robots-Tag": "noai"} if kind == "noai" else {}
        self._send(200, data, ctype, head, extra)

    def _resolve(self, path: str) -> Path | None:
        root = self.server.root
        candidate = (root / path.lstrip("/")).resolve()
        if candidate != root and root not in candidate.parents:
            return None  # path traversal outside root
        return candidate if candidate.is_file() else None

    def _send(self, status: int, body: bytes, ctype: str, head: bool, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, message: str, head: bool) -> None:
        body = f"{status} {message}\n".encode()
        self._send(status, body, "text/plain; charset=utf-8", head)


class ImageServer:
    """Serve ``root`` over HTTP on ``host:port`` (port 0 = any free port) in a background thread.

    Use as a context manager, or call ``start()``/``stop()``; ``serve_forever()`` blocks (for the CLI).
    ``serves_as``: the loopback base URL its clients name (the sample's canonical
    ``http://127.0.0.1:8765``); while running, connections the downloader makes there reach this
    server's real port (``pmd.loopback``), so the port never reaches URLs, keys or shards.
    """

    def __init__(self, root: str | os.PathLike, host: str = "127.0.0.1", port: int = 0,
                 faults: FaultConfig | None = None, serves_as: str | None = None) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"image server root {self.root} is not a directory")
        self.canonical = _authority(serves_as) if serves_as else None
        self._httpd = _Server((host, port), self.root, faults)
        self.host, self.port = self._httpd.server_address[0], self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._published = contextlib.ExitStack()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def hits(self) -> int:
        """Requests handled so far (for tests of retries and politeness)."""
        return self._httpd.hits

    def start(self) -> "ImageServer":
        if self._thread is None:
            if self.canonical is not None and self.canonical != (self.host, self.port):
                from pmd.loopback import published

                self._published.enter_context(published(self.canonical, (self.host, self.port)))
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"pmd-image-server-{self.port}", daemon=True)
            self._thread.start()
            log.debug("image server for %s at %s", self.root, self.base_url)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._published.close()
        self._httpd.server_close()

    def serve_forever(self) -> None:
        """Block serving requests until interrupted (Ctrl-C)."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    def __enter__(self) -> "ImageServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _authority(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname is None or parts.port is None:
        raise ValueError(f"serves_as must be http://HOST:PORT, got {base_url!r}")
    return parts.hostname, parts.port


def serve_sample(sample_dir: str | os.PathLike, faults: FaultConfig | None = None) -> ImageServer:
    """An ``ImageServer`` for a generated sample on a free loopback port, serving as the base URL its
    ``sample.json`` names (so any number of builds can serve samples at once, all with the same URLs)."""
    import json

    meta = json.loads((Path(sample_dir) / "sample.json").read_text(encoding="utf-8"))
    host = _authority(meta["base_url"])[0]
    return ImageServer(sample_dir, host=host, port=0, faults=faults, serves_as=meta["base_url"])
