"""Benchmark: the embedded sample — generation time, and the image server under a burst of downloads.

Generation: ``generate_sample`` at scale 1.0 (and 0.25), wall and CPU seconds, median of ``--runs``.
Server: ``--burst`` clients connect at the same moment (a barrier) and each fetch one image, as
img2dataset's thread pool does at the start of a shard; ``ImageServer`` (listen backlog 1024) side by
side with the standard library's ``ThreadingHTTPServer`` + ``SimpleHTTPRequestHandler`` (backlog 5).
Then ``--requests`` sequential-per-thread GETs over ``--threads`` threads for throughput.

    .venv/bin/python bench/sample.py
"""

from __future__ import annotations

import argparse
import functools
import http.client
import http.server
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pmd.sample import ImageServer, generate_sample  # noqa: E402


def time_generation(scale: float, runs: int) -> dict:
    walls, cpus = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            t, c = time.perf_counter(), time.process_time()
            generate_sample(d, seed=0, scale=scale)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
    return {"scale": scale, "runs": runs, "wall_s_median": round(statistics.median(walls), 2),
            "cpu_s_median": round(statistics.median(cpus), 2)}


def fetch(host: str, port: int, path: str, timeout: float = 10.0) -> tuple[bool, float]:
    t = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.request("GET", path)
        resp = conn.getresponse()
        ok = resp.status == 200 and len(resp.read()) > 0
        conn.close()
    except OSError:
        ok = False
    return ok, time.perf_counter() - t


def burst(host: str, port: int, paths: list[str], n: int) -> dict:
    barrier = threading.Barrier(n)
    results: list[tuple[bool, float]] = [(False, 0.0)] * n

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = fetch(host, port, paths[i % len(paths)])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    lat = sorted(r[1] for r in results)
    return {"clients": n, "ok": sum(r[0] for r in results), "wall_s": round(wall, 2),
            "p50_ms": round(1000 * lat[n // 2], 1), "p99_ms": round(1000 * lat[int(n * 0.99) - 1], 1)}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def stdlib_server(root: str) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_QuietHandler, directory=root)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--burst", type=int, default=500)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=32)
    args = ap.parse_args()
    out: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}",
                 "load_avg": os.getloadavg()}
    out["generate"] = [time_generation(1.0, args.runs), time_generation(0.25, args.runs)]
    with tempfile.TemporaryDirectory() as d:
        generate_sample(d, seed=0)
        paths = sorted("/" + p.relative_to(d).as_posix() for p in Path(d, "images", "cc3m").glob("*.jpg"))
        with ImageServer(d) as srv:
            out["burst_image_server"] = burst(srv.host, srv.port, paths, args.burst)
            t = time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                oks = list(pool.map(lambda i: fetch(srv.host, srv.port, paths[i % len(paths)])[0],
                                    range(args.requests)))
            wall = time.perf_counter() - t
            out["throughput_image_server"] = {"requests": args.requests, "threads": args.threads, "ok": sum(oks),
                                              "req_per_s": round(args.requests / wall, 1)}
        std = stdlib_server(d)
        try:
            out["burst_stdlib_threading_server"] = burst("127.0.0.1", std.server_address[1], paths, args.burst)
        finally:
            std.shutdown()
            std.server_close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
