"""``python -m bench insert``: ingest rate (rows/s) and seal (flush) bandwidth (MB/s).

Columnar numpy input (Hotset's fast path) is measured on all rows; a list of row dicts
(pymilvus's usual form) on up to ``--dict-rows`` rows, in the same run.
"""
from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np

from engine import DataType, MilvusClient

from .datasets import manifold
from .peers import milvus_lite_insert
from .progress import Progress
from .report import emit


def _schema(dim: int):
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    return schema


def _ingest(client: MilvusClient, name: str, data: np.ndarray, batch: int, as_dicts: bool,
            show: bool) -> dict:
    client.create_collection(name, schema=_schema(data.shape[1]))
    n = len(data)
    payloads = []  # the user's data, built before the clock starts
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        if as_dicts:
            payloads.append([{"id": i, "vector": v}
                             for i, v in zip(range(start, stop), data[start:stop].tolist())])
        else:
            payloads.append({"id": np.arange(start, stop), "vector": data[start:stop]})
    bar = Progress(n, f"insert {'dicts' if as_dicts else 'columns'}", show)
    t0 = time.perf_counter()
    for payload in payloads:
        client.insert(name, payload)
        bar.update(len(payload) if as_dicts else len(payload["id"]))
    client.flush(name)
    elapsed = time.perf_counter() - t0
    bar.close()
    stats = client._db.collections[name].stats  # the bench reads engine internals on purpose
    return {"input": "list of dicts" if as_dicts else "numpy columns", "rows": n,
            "seconds": elapsed, "rows_per_s": n / elapsed,
            "sealed_MB": stats["sealed_bytes"] / 1e6,
            "flush_MB_per_s": stats["sealed_bytes"] / 1e6 / max(stats["seal_seconds"], 1e-9)}


def run(args) -> None:
    data, _ = manifold(args.rows, 0, dim=args.dim)
    root = args.data or tempfile.mkdtemp(prefix="hotset-bench-")
    try:
        client = MilvusClient(root, device=args.device)
        for name in ("bench_cols", "bench_dicts"):
            if client.has_collection(name):
                client.drop_collection(name)
        rows = [_ingest(client, "bench_cols", data, args.batch, False, not args.json)]
        n_dicts = min(args.dict_rows, args.rows)
        if n_dicts:
            rows.append(_ingest(client, "bench_dicts", data[:n_dicts], args.batch, True,
                                not args.json))
        client.close()
        if args.peer_rows:
            peer = milvus_lite_insert(data[: min(args.peer_rows, args.rows)], 5_000)
            if peer is None:
                print("Milvus Lite not installed: pip install '.[bench]' to measure the peer")
            else:
                rows.append(peer)
                for r in rows[:-1]:
                    r["vs_milvus_lite"] = r["rows_per_s"] / peer["rows_per_s"]
    finally:
        if not args.data:
            shutil.rmtree(root, ignore_errors=True)
    emit("insert", rows, args.json, {"dim": args.dim})


def add_parser(sub) -> None:
    p = sub.add_parser("insert", help="ingest rate and flush bandwidth")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=50_000)
    p.add_argument("--dict-rows", type=int, default=100_000,
                   help="rows to ingest again as a list of dicts (0: skip)")
    p.add_argument("--peer-rows", type=int, default=100_000,
                   help="rows to ingest into Milvus Lite in the same run (0: skip)")
    p.add_argument("--device", default="auto")
    p.add_argument("--data", default=None, help="data directory (default: a temp dir)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
