"""``python -m bench serve``: a bounded load test of the REST server on 127.0.0.1.

Starts ``python -m engine serve`` on a free loopback port with a fresh data directory,
fills a collection, then runs ``--clients`` threads that each send ``--requests`` searches
while one more thread inserts ``--inserts`` batches; every request is timed. Reports
requests/s, p50/p99 latency and the error count (which must be zero). All traffic stays on
127.0.0.1, and the run stops after a fixed number of requests.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time

import numpy as np

from .datasets import manifold
from .report import emit
from .server_proc import hotset_server


def run(args) -> None:
    import httpx

    root = tempfile.mkdtemp(prefix="hotset-bench-")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, root, True)
        port = stack.enter_context(hotset_server(root, args.device))
        url = f"http://127.0.0.1:{port}/v2/vectordb/"
        data, queries = manifold(args.rows, 256, dim=args.dim)
        with httpx.Client(timeout=120) as http:
            def call(path: str, body: dict) -> dict:
                return http.post(url + path, content=json.dumps(body)).json()

            call("collections/create", {"collectionName": "load", "dimension": args.dim,
                                        "metricType": "L2"})
            for s in range(0, args.rows, 5000):
                call("entities/insert", {"collectionName": "load", "data": [
                    {"id": s + i, "vector": v} for i, v in enumerate(data[s:s + 5000].tolist())]})
        lat: dict[str, list[float]] = {"search": [], "insert": []}
        errors = {"search": 0, "insert": 0}
        lock = threading.Lock()

        def worker(kind: str, n: int, seed: int) -> None:
            rng = np.random.default_rng(seed)
            with httpx.Client(timeout=120) as http:
                for i in range(n):
                    if kind == "search":
                        body = {"collectionName": "load", "limit": 10,
                                "data": queries[rng.integers(0, len(queries), args.nq)].tolist()}
                    else:
                        base = 10_000_000 + seed * 1_000_000 + i * 100
                        body = {"collectionName": "load", "data": [
                            {"id": base + j, "vector": v} for j, v in
                            enumerate(rng.standard_normal((100, args.dim)).tolist())]}
                    t0 = time.perf_counter()
                    r = http.post(url + f"entities/{kind}", content=json.dumps(body))
                    el = time.perf_counter() - t0
                    ok = r.status_code == 200 and r.json().get("code") == 0
                    with lock:
                        lat[kind].append(el)
                        errors[kind] += 0 if ok else 1

        threads = [threading.Thread(target=worker, args=("search", args.requests, i))
                   for i in range(args.clients)]
        threads.append(threading.Thread(target=worker, args=("insert", args.inserts, 99)))
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    rows = []
    for kind, xs in lat.items():
        a = np.array(xs) * 1000
        rows.append({"requests": kind, "count": len(xs), "per_s": len(xs) / wall,
                     "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                     "errors": errors[kind]})
    emit("serve", rows, args.json, {"clients": args.clients, "rows": args.rows, "nq": args.nq,
                                    "wall_s": wall})


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="bounded REST load test on 127.0.0.1")
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=200, help="searches per client")
    p.add_argument("--nq", type=int, default=1, help="query vectors per search request")
    p.add_argument("--inserts", type=int, default=100, help="insert requests of 100 rows")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
