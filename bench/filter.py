"""``python -m bench filter``: query throughput of selective and broad filters on numbers,
VARCHAR ``like`` and a JSON path, filtered search QPS against unfiltered search, and the
same filters without and with the scalar and JSON-path indexes that serve them, in the same
run on the same collection."""
from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np

from engine import DataType, MilvusClient

from .datasets import manifold
from .report import emit

NAME = "bench_filter"
FILTERS = [
    ("number, selective", "age == 7"),
    ("number, broad", "age >= 10"),
    ("VARCHAR like, selective", "title like 'doc_7%'"),
    ("VARCHAR like, broad", "title like 'doc_%'"),
    ("JSON path, selective", 'meta["cat"] == 7'),
    ("JSON path, broad", 'meta["cat"] >= 10 and meta["tag"] != "t3"'),
]


def _build(client: MilvusClient, rows: int, dim: int) -> np.ndarray:
    data, queries = manifold(rows, 1000, dim=dim)
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("age", DataType.INT32)
    schema.add_field("title", DataType.VARCHAR, max_length=32)
    schema.add_field("meta", DataType.JSON)
    params = MilvusClient.prepare_index_params()
    params.add_index("vector", "FLAT", metric_type="L2")
    client.create_collection(NAME, schema=schema, index_params=params)
    ids = np.arange(rows)
    ages = (ids * 7919) % 100
    step = 200_000
    for s in range(0, rows, step):
        part = ids[s:s + step]
        client.insert(NAME, {
            "id": part, "vector": data[s:s + step], "age": ages[s:s + step],
            "title": [f"doc_{i % 1000}" for i in part.tolist()],
            "meta": [{"cat": int(a), "tag": f"t{i % 10}"} for i, a in
                     zip(part.tolist(), ages[s:s + step].tolist())]})
    client.flush(NAME)
    client.release_collection(NAME)
    client.load_collection(NAME)
    return queries


# Filters timed on the same loaded collection without, then with, the index that serves
# them (a JSON-path index on meta["cat"] and meta["tag"], STL_SORT on age, INVERTED on title).
INDEXED = [
    ("JSON path ==, selective", 'meta["cat"] == 7'),
    ("JSON path range, broad", 'meta["cat"] >= 10'),
    ("JSON path string !=", 'meta["tag"] != "t3"'),
    ("range, selective (3%)", "age < 3"),
    ("range, broad (90%)", "age >= 10"),
    ("VARCHAR ==", "title == 'doc_7'"),
    ("VARCHAR like", "title like 'doc_7%'"),
]


def _indexes(client: MilvusClient) -> None:
    p = client.prepare_index_params()
    p.add_index("age", "STL_SORT")
    p.add_index("title", "INVERTED")
    p.add_index("meta", "INVERTED", params={"json_path": 'meta["cat"]',
                                             "json_cast_type": "double"})
    p.add_index("meta", "INVERTED", params={"json_path": 'meta["tag"]',
                                             "json_cast_type": "varchar"})
    client.create_index(NAME, p)


def _with_and_without(client: MilvusClient, args) -> list[dict]:
    """Each INDEXED filter's first and repeated count(*) query on a fresh load, without
    indexes and then with them, and what the indexes add to the load."""
    def measure() -> tuple[float, dict]:
        client.release_collection(NAME)
        t0 = time.perf_counter()
        client.load_collection(NAME)
        load_s = time.perf_counter() - t0
        out = {}
        for _, expr in INDEXED:
            t0 = time.perf_counter()
            client.query(NAME, expr, output_fields=["count(*)"])
            first = time.perf_counter() - t0
            out[expr] = (first, _time(lambda: client.query(NAME, expr,
                                                           output_fields=["count(*)"]),
                                      args.repeat))
        return load_s, out

    plain_load, plain = measure()
    _indexes(client)
    indexed_load, indexed = measure()
    parts = client.memory_info(NAME)["parts"]
    rows = []
    for label, expr in INDEXED:
        (f0, r0), (f1, r1) = plain[expr], indexed[expr]
        rows.append({"filter": label, "expr": expr, "first_ms": 1e3 * f0,
                     "first_indexed_ms": 1e3 * f1, "repeat_ms": 1e3 * r0,
                     "repeat_indexed_ms": 1e3 * r1, "repeat_speedup": r0 / r1})
    rows.append({"filter": "load (release, load)", "expr": "", "first_ms": 1e3 * plain_load,
                 "first_indexed_ms": 1e3 * indexed_load, "repeat_ms": None,
                 "repeat_indexed_ms": None, "repeat_speedup": None,
                 "index_bytes": sum(b for k, b in parts.items() if k.startswith("index/"))})
    return rows


def _time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(args) -> None:
    root = tempfile.mkdtemp(prefix="hotset-bench-")
    try:
        client = MilvusClient(root, device=args.device)
        queries = _build(client, args.rows, args.dim)
        rows = []
        for label, expr in FILTERS:
            t0 = time.perf_counter()
            n = client.query(NAME, expr, output_fields=["count(*)"])[0]["count(*)"]
            first = time.perf_counter() - t0
            count_s = _time(lambda: client.query(NAME, expr, output_fields=["count(*)"]),
                            args.repeat)
            ids_s = _time(lambda: client.query(NAME, expr, output_fields=["id"], limit=1000),
                          args.repeat)
            rows.append({"filter": label, "expr": expr, "matches": n,
                         "first_query_s": first, "count_qps": 1 / count_s,
                         "rows_scanned_per_s": args.rows / count_s,
                         "ids_limit_1000_qps": 1 / ids_s})
        if not args.json:
            emit("filter-query", rows, False)
        q = queries[: args.batch]
        base_s = _time(lambda: client.search(NAME, q, limit=10), args.repeat)
        srows = [{"search": "unfiltered", "filter": "", "qps": len(q) / base_s, "vs_unfiltered": 1.0}]
        for label, expr in (("selective (1%)", "age == 7"), ("broad (90%)", "age >= 10"),
                            ("JSON, broad", 'meta["cat"] >= 10')):
            s = _time(lambda: client.search(NAME, q, limit=10, filter=expr), args.repeat)
            srows.append({"search": label, "filter": expr, "qps": len(q) / s,
                          "vs_unfiltered": base_s / s})
        irows = _with_and_without(client, args) if args.indexes else []
        if args.json:
            emit("filter", rows, True, {"rows": args.rows, "search": srows, "indexed": irows})
        else:
            emit("filter-search", srows, False)
            if irows:
                emit("filter-indexed", irows, False)
        client.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def add_parser(sub) -> None:
    p = sub.add_parser("filter", help="filtered query and search throughput")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=100, help="queries per search call")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-indexes", dest="indexes", action="store_false",
                   help="skip the same filters with scalar and JSON-path indexes")
    p.set_defaults(func=run)
