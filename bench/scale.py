"""``python -m bench scale``: one collection served by 1, 2 and 4 workers, in one run.

The same data directory (manifold rows, IVF_FLAT, several sealed segments) is opened with
one in-process worker (the baseline) and with 1, 2 and 4 Ray actors (``--kind ray``, a
local Ray cluster this run starts) or in-process workers (``--kind local``: one per
``--device``; on a multi-GPU box, ``--device cuda`` puts each on its own GPU). For each:
the load time (release, then load), the search QPS at batch 1 and at ``--batch``, and the
fan-out and merge overhead a query pays against the in-process baseline (extra seconds
per query: the per-query time with N workers minus the baseline's at the same batch).
On one machine with few cores, several CPU workers share them: the figure that matters
is that the overhead stays bounded (batch-``--batch`` QPS with 4 actors within 0.8x of
one worker on 2 cores), not a speed-up the cores cannot give.
"""
from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np
import torch

from engine import DataType, MilvusClient

from .cli import int_list
from .datasets import manifold
from .report import emit
from .timing import run_batches

NAME = "bench_scale"


def _build(path: str, data: np.ndarray, nlist: int, segments: int) -> None:
    c = MilvusClient(path, device="cpu")
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=data.shape[1])
    c.create_collection(NAME, schema=schema)
    p = MilvusClient.prepare_index_params()
    p.add_index("vector", "IVF_FLAT", metric_type="L2", params={"nlist": nlist})
    c.create_index(NAME, p)
    step = -(-len(data) // segments)
    for s in range(0, len(data), step):  # one sealed segment a flush
        c.insert(NAME, {"id": np.arange(s, min(s + step, len(data))),
                        "vector": data[s:s + step]})
        c.flush(NAME)
    c.close()


def _client(path: str, kind: str, workers: int, device: str) -> MilvusClient:
    if kind == "baseline":
        return MilvusClient(path, device=device)
    if kind == "ray":
        return MilvusClient(path, device=device, ray_workers=workers)
    dev = [f"cuda:{i}" for i in range(workers)] if device == "cuda" else [device] * workers
    return MilvusClient(path, devices=dev)


def _measure(path: str, kind: str, workers: int, args, queries: np.ndarray) -> dict:
    c = _client(path, kind, workers, args.device)
    try:
        c.release_collection(NAME)
        t0 = time.perf_counter()
        c.load_collection(NAME)
        load_s = time.perf_counter() - t0
        params = {"params": {"nprobe": args.nprobe}}
        row = {"workers": "1 (in-process)" if kind == "baseline" else f"{workers} ({kind})",
               "load_s": load_s}
        for batch in (1, args.batch):
            qs = queries[: args.nq1] if batch == 1 else queries
            _, secs = run_batches(lambda b: c.search(NAME, data=b, limit=args.k,
                                                     search_params=params), qs, batch,
                                  min_seconds=0.5, max_passes=3)
            row[f"qps_b{batch}"] = len(qs) / secs
            row[f"s_per_q_b{batch}"] = secs / len(qs)
        row["_ids"] = [h["id"] for h in c.search(NAME, data=queries[:5], limit=args.k,
                                                  search_params=params)[0]]
        return row
    finally:
        c.close()


def run(args) -> None:
    data, queries = manifold(args.rows, args.nq, dim=args.dim)
    tmp = tempfile.mkdtemp(prefix="hotset-scale-")
    path = f"{tmp}/data"
    started_ray = False
    try:
        _build(path, data, args.nlist, args.segments)
        if args.kind == "ray":
            import ray

            if not ray.is_initialized():
                ray.init(num_cpus=max(args.workers) + 1, include_dashboard=False,
                         log_to_driver=False, _node_ip_address="127.0.0.1",
                         object_store_memory=256 << 20)
                started_ray = True
        rows = [_measure(path, "baseline", 1, args, queries)]
        rows += [_measure(path, args.kind, n, args, queries) for n in args.workers]
        base = dict(rows[0])
        for r in rows:
            r["same_hits"] = r.pop("_ids") == base["_ids"]
            for batch in (1, args.batch):
                r[f"overhead_us_b{batch}"] = 1e6 * (r.pop(f"s_per_q_b{batch}") -
                                                    base[f"s_per_q_b{batch}"])
            r[f"qps_b{args.batch}_vs_1"] = r[f"qps_b{args.batch}"] / base[f"qps_b{args.batch}"]
        emit("scale", rows, args.json, {"rows": args.rows, "dim": args.dim,
                                        "segments": args.segments, "nlist": args.nlist,
                                        "nprobe": args.nprobe, "kind": args.kind,
                                        "threads": torch.get_num_threads()})
    finally:
        if started_ray:
            import ray

            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def add_parser(sub) -> None:
    p = sub.add_parser("scale", help="load and search with 1, 2, 4 workers (Ray or local)")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--segments", type=int, default=8)
    p.add_argument("--nlist", type=int, default=256)
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--nq", type=int, default=2000, help="queries at the large batch")
    p.add_argument("--nq1", type=int, default=200, help="queries at batch 1")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--workers", type=int_list, default=[1, 2, 4])
    p.add_argument("--kind", choices=["ray", "local"], default="ray")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
