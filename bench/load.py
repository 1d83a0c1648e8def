"""``python -m bench load``: load throughput and release time against the machine's own
limit on the same bytes, in the same run; the full load with every byte checked against its
checksum (the default) and without.

The limit: on the CPU, a plain memory copy of the same number of bytes into fresh memory
(what a load must do at the least); on CUDA, a pinned host-to-device ``copy_``. Reads come
from a warm page cache (the data was just written), as they do for the copy.
"""
from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np
import torch

from engine import DataType, MilvusClient

from .datasets import manifold
from .peers import milvus_lite_load
from .report import emit
from .timing import sync

NAME = "bench_load"


def copy_limit(nbytes: int, dev: torch.device, repeat: int = 3) -> float:
    """Best seconds to copy ``nbytes`` host bytes into fresh memory on ``dev``."""
    src = torch.ones(nbytes, dtype=torch.uint8)
    if dev.type == "cuda":
        src = src.pin_memory()
    best = float("inf")
    for _ in range(repeat):
        sync(dev)
        t0 = time.perf_counter()
        dst = torch.empty(nbytes, dtype=torch.uint8, device=dev)
        dst.copy_(src, non_blocking=dev.type == "cuda")
        sync(dev)
        best = min(best, time.perf_counter() - t0)
        del dst
    return best


def _build(client: MilvusClient, data: np.ndarray, texts: list[str]) -> None:
    schema = MilvusClient.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=data.shape[1])
    schema.add_field("text", DataType.VARCHAR, max_length=64)
    client.create_collection(NAME, schema=schema)
    step = 100_000
    for s in range(0, len(data), step):
        client.insert(NAME, {"id": np.arange(s, min(s + step, len(data))),
                             "vector": data[s:s + step], "text": texts[s:s + step]})
    client.flush(NAME)
    params = MilvusClient.prepare_index_params()
    params.add_index("vector", "FLAT", metric_type="L2")
    client.create_index(NAME, params)


def _timed_load(client: MilvusClient, repeat: int, **kwargs) -> tuple[float, float, int]:
    """Best load seconds, best release seconds and resident bytes."""
    best_load = best_release = float("inf")
    nbytes = 0
    for _ in range(repeat):
        sync(client.device)
        t0 = time.perf_counter()
        client.load_collection(NAME, **kwargs)
        sync(client.device)
        best_load = min(best_load, time.perf_counter() - t0)
        nbytes = client.memory_info(NAME)["bytes"] + client.memory_info(NAME).get("host_bytes", 0)
        t0 = time.perf_counter()
        client.release_collection(NAME)
        best_release = min(best_release, time.perf_counter() - t0)
    return best_load, best_release, nbytes


def run(args) -> None:
    data, _ = manifold(args.rows, 0, dim=args.dim)
    texts = [f"document number {i}" for i in range(args.rows)]
    root = tempfile.mkdtemp(prefix="hotset-bench-")
    try:
        client = MilvusClient(root, device=args.device)
        dev = client.device
        _build(client, data, texts)
        client.release_collection(NAME)
        load_s, release_s, nbytes = _timed_load(client, args.repeat)
        limit_s = copy_limit(nbytes, dev, args.repeat)
        part_s, _, part_bytes = _timed_load(client, args.repeat, load_fields=["id", "vector"],
                                            skip_load_dynamic_field=True)
        client.close()
        client = MilvusClient(root, device=args.device, verify_checksums=False)
        plain_s, _, _ = _timed_load(client, args.repeat)
        client.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    limit_name = "pinned H2D copy_" if dev.type == "cuda" else "memory copy"
    rows = [{"what": "full load", "bytes": nbytes, "seconds": load_s,
             "GB_per_s": nbytes / load_s / 1e9, "limit": limit_name,
             "limit_GB_per_s": nbytes / limit_s / 1e9, "ratio_to_limit": limit_s / load_s},
            {"what": "full load, checksums not verified", "bytes": nbytes, "seconds": plain_s,
             "GB_per_s": nbytes / plain_s / 1e9, "limit": limit_name,
             "limit_GB_per_s": nbytes / limit_s / 1e9, "ratio_to_limit": limit_s / plain_s},
            {"what": "release", "bytes": nbytes, "seconds": release_s, "GB_per_s": None,
             "limit": None, "limit_GB_per_s": None, "ratio_to_limit": None},
            {"what": "partial load (id, vector)", "bytes": part_bytes, "seconds": part_s,
             "GB_per_s": part_bytes / part_s / 1e9, "limit": None, "limit_GB_per_s": None,
             "ratio_to_limit": part_bytes / nbytes}]
    if args.peer:
        peer = milvus_lite_load(data, texts)
        if peer is None:
            print("Milvus Lite not installed: pip install '.[bench]' to measure the peer")
        else:
            rows.append({"what": "Milvus Lite load (same data)", "bytes": None,
                         "seconds": peer["load_s"], "GB_per_s": None, "limit": None,
                         "limit_GB_per_s": None, "ratio_to_limit": None})
            rows.append({"what": "Milvus Lite release", "bytes": None,
                         "seconds": peer["release_s"], "GB_per_s": None, "limit": None,
                         "limit_GB_per_s": None, "ratio_to_limit": None})
    emit("load", rows, args.json, {"rows": args.rows, "dim": args.dim, "device": str(dev)})


def add_parser(sub) -> None:
    p = sub.add_parser("load", help="load throughput and release time vs the copy limit")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--peer", action="store_true", help="also time Milvus Lite on the same data")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
