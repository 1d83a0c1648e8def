"""Milvus Lite through pymilvus, measured in the same run as Hotset (``pip install
'.[bench]'``). Each function returns None when the peer is not installed."""
from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import time

import numpy as np

from .timing import run_batches


@contextlib.contextmanager
def _peer_collection(dim: int, with_text: bool):
    """A fresh Milvus Lite database with collection "peer" (None if not installed)."""
    try:
        from pymilvus import DataType, MilvusClient
    except ImportError:
        yield None
        return
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    root = tempfile.mkdtemp(prefix="hotset-peer-")
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            client = MilvusClient(f"{root}/lite.db")
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        if with_text:
            schema.add_field("text", DataType.VARCHAR, max_length=64)
        client.create_collection("peer", schema=schema)
        yield client
        client.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def milvus_lite_insert(data: np.ndarray, batch: int) -> dict | None:
    """Ingest ``data`` as lists of row dicts (pymilvus's form); rows/s."""
    with _peer_collection(data.shape[1], False) as client:
        if client is None:
            return None
        payloads = [[{"id": i, "vector": v} for i, v in
                     zip(range(s, min(s + batch, len(data))), data[s:s + batch].tolist())]
                    for s in range(0, len(data), batch)]
        t0 = time.perf_counter()
        for p in payloads:
            client.insert("peer", p)
        client.flush("peer")
        elapsed = time.perf_counter() - t0
    return {"input": "Milvus Lite (pymilvus dicts)", "rows": len(data), "seconds": elapsed,
            "rows_per_s": len(data) / elapsed}


def milvus_lite_load(data: np.ndarray, texts: list[str], batch: int = 20_000) -> dict | None:
    """Load / release of the same collection in Milvus Lite (FLAT index), seconds."""
    with _peer_collection(data.shape[1], True) as client:
        if client is None:
            return None
        for s in range(0, len(data), batch):
            rows = [{"id": i, "vector": v, "text": t} for i, v, t in
                    zip(range(s, s + batch), data[s:s + batch].tolist(), texts[s:s + batch])]
            client.insert("peer", rows)
        client.flush("peer")
        params = client.prepare_index_params()
        params.add_index("vector", index_type="FLAT", metric_type="L2")
        client.create_index("peer", params)
        client.release_collection("peer")
        t0 = time.perf_counter()
        client.load_collection("peer")
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        client.release_collection("peer")
        release_s = time.perf_counter() - t0
    return {"load_s": load_s, "release_s": release_s}


def milvus_lite_search(data: np.ndarray, queries: np.ndarray, nlist: int, nprobes: list[int],
                       batch: int, k: int, insert_batch: int = 20_000) -> dict | None:
    """IVF_FLAT (same nlist) in Milvus Lite on the same data: for each nprobe, the ids it
    returns for ``queries`` searched ``batch`` at a time, and queries per second."""
    with _peer_collection(data.shape[1], False) as client:
        if client is None:
            return None
        for s in range(0, len(data), insert_batch):
            client.insert("peer", [{"id": i, "vector": v} for i, v in zip(
                range(s, s + insert_batch), data[s:s + insert_batch].tolist())])
        client.flush("peer")
        params = client.prepare_index_params()
        params.add_index("vector", index_type="IVF_FLAT", metric_type="L2",
                         params={"nlist": nlist})
        client.create_index("peer", params)
        client.load_collection("peer")
        out = {}
        for nprobe in nprobes:
            sp = {"metric_type": "L2", "params": {"nprobe": nprobe}}

            def ids(b: np.ndarray) -> list[list[int]]:
                hits = client.search("peer", b.tolist(), limit=k, search_params=sp)
                return [[h["id"] for h in q] for q in hits]

            found, seconds = run_batches(ids, queries, batch)
            out[nprobe] = {"found": found, "qps": len(queries) / seconds}
    return out
