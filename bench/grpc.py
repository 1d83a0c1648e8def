"""``python -m bench grpc``: search QPS through the same pymilvus ``MilvusClient`` against
a Hotset server (gRPC, loopback) and against Milvus Lite, same data, same run."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import shutil
import tempfile
import time

import numpy as np

from .cli import int_list
from .datasets import manifold
from .report import emit
from .server_proc import hotset_server
from .timing import run_batches


def _fill(client, data: np.ndarray, nlist: int) -> float:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=data.shape[1])
    client.create_collection("bench", schema=schema)
    t0 = time.perf_counter()
    for s in range(0, len(data), 10_000):
        client.insert("bench", [{"id": s + i, "vector": v}
                                for i, v in enumerate(data[s:s + 10_000].tolist())])
    client.flush("bench")
    idx = MilvusClient.prepare_index_params()
    idx.add_index("vector", "IVF_FLAT", metric_type="L2", params={"nlist": nlist})
    client.create_index("bench", idx)
    client.load_collection("bench")
    return time.perf_counter() - t0


def _qps(client, queries: np.ndarray, batch: int, nprobe: int) -> float:
    sp = {"metric_type": "L2", "params": {"nprobe": nprobe}}
    _, seconds = run_batches(lambda b: client.search("bench", b.tolist(), limit=10,
                                                     search_params=sp), queries, batch)
    return len(queries) / seconds


def run(args) -> None:
    if importlib.util.find_spec("pymilvus") is None:
        print("bench grpc needs pymilvus (and milvus-lite for the peer): pip install '.[bench]'")
        return
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    data, queries = manifold(args.rows, args.nq, dim=args.dim)
    rows = []
    root = tempfile.mkdtemp(prefix="hotset-bench-")
    try:
        with hotset_server(f"{root}/hotset", args.device) as port:
            rows = _measure(args, root, port, data, queries)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = {r["batch"]: r["qps"] for r in rows if r["server"] == "Milvus Lite"}
    for r in rows:
        r["vs_milvus_lite"] = r["qps"] / base[r["batch"]] if r["batch"] in base else None
    emit("grpc", rows, args.json, {"rows": args.rows, "dim": args.dim, "nlist": args.nlist})


def _measure(args, root: str, port: int, data: np.ndarray, queries: np.ndarray) -> list[dict]:
    from pymilvus import MilvusClient

    rows: list[dict] = []
    peers = [("Hotset (gRPC)", lambda: MilvusClient(uri=f"http://127.0.0.1:{port}"))]
    if not args.no_lite:
        def lite():
            with contextlib.redirect_stderr(io.StringIO()):
                return MilvusClient(f"{root}/lite.db")
        peers.append(("Milvus Lite", lite))
    for name, make in peers:
        try:
            client = make()
        except Exception as e:  # noqa: BLE001 - a missing peer is reported, not fatal
            print(f"{name}: cannot start ({e})")
            continue
        fill_s = _fill(client, data, args.nlist)
        for batch in args.batch:
            rows.append({"server": name, "batch": batch, "nprobe": args.nprobe,
                         "qps": _qps(client, queries, batch, args.nprobe),
                         "ingest_index_load_s": fill_s})
        client.close()
    return rows


def add_parser(sub) -> None:
    p = sub.add_parser("grpc", help="pymilvus search QPS: Hotset server vs Milvus Lite")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--nq", type=int, default=500)
    p.add_argument("--nlist", type=int, default=256)
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--batch", type=int_list, default=[1, 100])
    p.add_argument("--no-lite", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
