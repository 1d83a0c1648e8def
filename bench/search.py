"""``python -m bench search``: FLAT search QPS and recall@k against exact ground truth
computed by plain torch (matmul + topk) on the same device, in the same run."""
from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np
import torch

from engine import DataType, MilvusClient

from .datasets import manifold
from .report import emit


def _recall(found: list[list[int]], truth: np.ndarray, k: int) -> float:
    hits = sum(len(set(f[:k]) & set(t[:k].tolist())) for f, t in zip(found, truth))
    return hits / (len(truth) * k)


def run(args) -> None:
    data, queries = manifold(args.rows, args.nq, dim=args.dim)
    root = tempfile.mkdtemp(prefix="hotset-bench-")
    k = args.k
    try:
        client = MilvusClient(root, device=args.device)
        schema = MilvusClient.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=args.dim)
        index = MilvusClient.prepare_index_params()
        index.add_index("vector", "FLAT", metric_type="L2")
        client.create_collection("bench_search", schema=schema, index_params=index)
        for s in range(0, args.rows, 100_000):
            client.insert("bench_search", {"id": np.arange(s, min(s + 100_000, args.rows)),
                                           "vector": data[s:s + 100_000]})
        client.flush("bench_search")
        dev = client.device
        x = torch.from_numpy(data).to(dev)
        q = torch.from_numpy(queries).to(dev)
        # peer: plain torch brute force on the same device (exact ground truth)
        def brute() -> torch.Tensor:
            d = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2 * q @ x.T
            return torch.topk(d, k, dim=1, largest=False).indices
        brute()
        _sync(dev)
        t0 = time.perf_counter()
        truth = brute()
        _sync(dev)
        t_brute = time.perf_counter() - t0
        truth = truth.cpu().numpy()
        rows = []
        for batch in args.batch:
            client.search("bench_search", queries[:batch], limit=k)  # warm-up
            t0 = time.perf_counter()
            found = []
            for s in range(0, args.nq, batch):
                res = client.search("bench_search", queries[s:s + batch], limit=k)
                found += [[h["id"] for h in hits] for hits in res]
            el = time.perf_counter() - t0
            rows.append({"index": "FLAT", "batch": batch, "recall@10": _recall(found, truth, k),
                         "qps": args.nq / el, "torch_bruteforce_qps": args.nq / t_brute,
                         "ratio_vs_torch": t_brute / el})
        client.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    emit("search", rows, args.json, {"rows": args.rows, "dim": args.dim, "device": str(dev)})


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="search QPS and recall vs a plain torch brute force")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--nq", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch", type=lambda s: [int(x) for x in s.split(",")], default=[1000])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
