"""``python -m bench search``: IVF_FLAT (and FLAT) recall@k and QPS, next to faiss-cpu
``IndexIVFFlat`` with the same nlist/nprobe on the same data in the same run (``--index
IVF_SQ8``: next to ``IndexIVFScalarQuantizer`` QT_8bit; ``--index IVF_PQ --m``: next to
``IndexIVFPQ``, with ``--refine-k`` wrapped in ``IndexRefineFlat``; ``--index HNSW``:
next to ``IndexHNSWFlat`` with the same M / efConstruction, swept over ``--ef``), build
times and resident bytes per vector (``memory_info``) reported; on CUDA also
next to plain torch brute force (matmul + topk), the GPU's memory bandwidth, and (with
``--cpu-baseline``) the same engine on this host's CPU, same data, same run.

Ground truth is exact search by plain torch on the same device. The bandwidth fraction
counts the bytes a query-by-query scan must read: each query reads its ``nprobe`` lists,
taken as ``nprobe / nlist`` of the vectors (a lower bound: queries from the data's own
distribution probe the fuller lists more often), divided by the time and by the practical
peak (a device-to-device copy, bytes read + written).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from types import SimpleNamespace

import numpy as np
import torch

from engine import DataType, MilvusClient
from kernels import ref

from .cli import int_list
from .datasets import manifold
from .peers import milvus_lite_search
from .report import emit
from .timing import peak_bandwidth, run_batches, sync

NAME = "bench_search"


def _recall(found: list[list[int]], truth: np.ndarray, k: int) -> float:
    hits = sum(len(set(f[:k]) & set(t[:k].tolist())) for f, t in zip(found, truth))
    return hits / (len(found) * k)


def _faiss_index(data: np.ndarray, nlist: int, sample: np.ndarray, args=None):
    """faiss's index of the same type and parameters as ours, with its IVF part (whose
    nprobe a run sets) and coarse quantiser kept alive beside it; None without
    faiss-cpu."""
    try:
        import faiss
    except ImportError:
        return None
    kind = "IVF_FLAT" if args is None else args.index
    d = data.shape[1]
    if kind == "HNSW":
        index = faiss.IndexHNSWFlat(d, args.M)
        index.hnsw.efConstruction = args.ef_construction
        index.add(data)
        return SimpleNamespace(index=index, ivf=None)
    quant = faiss.IndexFlatL2(d)
    if kind == "IVF_SQ8":  # ours codes the rows themselves: by_residual off
        index = faiss.IndexIVFScalarQuantizer(quant, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_L2, False)
    elif kind == "IVF_PQ":
        index = faiss.IndexIVFPQ(quant, d, nlist, args.m, 8)
    else:
        index = faiss.IndexIVFFlat(quant, d, nlist)
    index.train(sample)
    if kind == "IVF_PQ" and args.refine_k:
        index = faiss.IndexRefineFlat(index)
        index.k_factor = args.refine_k
    index.add(data)
    return SimpleNamespace(index=index, ivf=faiss.extract_index_ivf(index), quant=quant)


def _index_params(args) -> dict:
    """Our index's params for ``args.index``."""
    if args.index == "HNSW":
        return {"M": args.M, "efConstruction": args.ef_construction}
    params = {"nlist": args.nlist}
    if args.index == "IVF_PQ":
        params.update({"m": args.m, **({"refine": True} if args.refine_k else {})})
    return params


def _search_params(args, knob: str, value: int) -> dict | None:
    if not value:
        return None
    params = {knob: value}
    if args.index == "IVF_PQ" and args.refine_k:
        params["refine_k"] = args.refine_k
    return {"params": params}


def run(args) -> None:
    k = args.k
    data, queries = manifold(args.rows, args.nq, dim=args.dim)
    root = tempfile.mkdtemp(prefix="hotset-bench-")
    rows: list[dict] = []
    try:
        client = MilvusClient(root, device=args.device)
        dev = client.device
        schema = MilvusClient.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=args.dim)
        client.create_collection(NAME, schema=schema)
        for s in range(0, args.rows, 200_000):
            client.insert(NAME, {"id": np.arange(s, min(s + 200_000, args.rows)),
                                 "vector": data[s:s + 200_000]})
        client.flush(NAME)
        params = MilvusClient.prepare_index_params()
        hnsw = args.index == "HNSW"
        if hnsw or args.nlist:
            params.add_index("vector", args.index, metric_type="L2",
                             params=_index_params(args))
        else:
            params.add_index("vector", "FLAT", metric_type="L2")
        t0 = time.perf_counter()
        client.create_index(NAME, params)
        build_s = time.perf_counter() - t0
        client.load_collection(NAME)
        held = client.memory_info(NAME)
        per_vector = {"resident_bytes_per_vector": held["bytes"] / args.rows,
                      "vector_bytes_per_vector": sum(
                          b for part, b in held["parts"].items()
                          if part == "vector" or part in ("vector/codes", "vector/graph"))
                      / args.rows}
        x = torch.from_numpy(data).to(dev)
        q = torch.from_numpy(queries).to(dev)
        sync(dev)
        t0 = time.perf_counter()
        truth = ref.flat_search(q, x, k, "L2", chunk=1 << 18)[1]
        sync(dev)
        brute_s = time.perf_counter() - t0
        truth = truth.cpu().numpy()
        sample = data[np.random.default_rng(0).permutation(args.rows)[: 64 * args.nlist]] \
            if args.nlist else None
        t0 = time.perf_counter()
        fidx = _faiss_index(data, args.nlist, sample, args) \
            if (args.nlist or hnsw) and args.faiss else None
        faiss_build_s = time.perf_counter() - t0
        peak = peak_bandwidth(dev) if dev.type == "cuda" else None
        nprobes = args.ef if hnsw else args.nprobe if args.nlist else [0]
        knob = "ef" if hnsw else "nprobe"
        for batch in args.batch:
            nq = min(args.nq, args.single_nq) if batch == 1 else args.nq
            qs = queries[:nq]
            for nprobe in nprobes:
                sp = _search_params(args, knob, nprobe)

                def ours(b: np.ndarray) -> list[list[int]]:
                    return [[h["id"] for h in hits] for hits in
                            client.search(NAME, b, limit=k, search_params=sp)]

                found, el = run_batches(ours, qs, batch)
                row = {"index": args.index if nprobe else "FLAT", "nlist": args.nlist,
                       "nprobe": nprobe, "batch": batch, "recall@10": _recall(found, truth, k),
                       "qps": nq / el}
                if hnsw:
                    row = {"index": "HNSW", "M": args.M, "efC": args.ef_construction,
                           "ef": nprobe, "nprobe": nprobe, "batch": batch,
                           "recall@10": row["recall@10"], "qps": row["qps"]}
                if fidx is not None:
                    if hnsw:
                        fidx.index.hnsw.efSearch = nprobe
                    else:
                        fidx.ivf.nprobe = nprobe

                    def theirs(b: np.ndarray) -> list[list[int]]:
                        return fidx.index.search(b, k)[1].tolist()

                    ffound, fel = run_batches(theirs, qs, batch)
                    row.update({"faiss_recall": _recall(ffound, truth, k), "faiss_qps": nq / fel,
                                "qps_vs_faiss": fel / el})
                if dev.type == "cuda" and not hnsw:
                    scanned = (nprobe / args.nlist if nprobe else 1.0) * data.nbytes * nq
                    row.update({"torch_brute_qps": args.nq / brute_s,
                                "bandwidth_fraction": scanned / el / peak})
                rows.append(row)
        client.close()
        if args.milvus_lite and args.nlist and not hnsw:
            _milvus_lite(data, queries, args, truth, rows)
        if args.cpu_baseline and dev.type == "cuda":
            _cpu_baseline(root, queries, nprobes, max(args.batch), k, rows, knob)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    emit("search", rows, args.json, {"rows": args.rows, "dim": args.dim, "device": str(dev),
                                     "build_s": build_s, "faiss_build_s": faiss_build_s,
                                     **per_vector})
    if not args.json:
        print(f"index build {build_s:.1f} s (faiss {faiss_build_s:.1f} s); device {dev}; "
              f"resident {per_vector['resident_bytes_per_vector']:.1f} bytes a vector, "
              f"{per_vector['vector_bytes_per_vector']:.1f} of them the vector's "
              "(rows, codes or graph)")
    if args.plot:
        _plot(rows, args.plot)


def _milvus_lite(data: np.ndarray, queries: np.ndarray, args, truth: np.ndarray,
                 rows: list[dict]) -> None:
    """Milvus Lite with the same nlist/nprobe on the same data: recall and QPS written into
    the rows of the largest batch."""
    batch = max(args.batch)
    peer = milvus_lite_search(data, queries, args.nlist, args.nprobe, batch, args.k)
    if peer is None:
        print("Milvus Lite not installed: pip install '.[bench]' to measure the peer")
        return
    for row in rows:
        got = peer.get(row["nprobe"])
        if got is not None and row["batch"] == batch:
            row.update({"lite_recall": _recall(got["found"], truth, args.k),
                        "lite_qps": got["qps"], "qps_vs_lite": row["qps"] / got["qps"]})


def _cpu_baseline(root: str, queries: np.ndarray, nprobes: list[int], batch: int, k: int,
                  rows: list[dict], knob: str = "nprobe") -> None:
    """The same collection opened on this host's CPU: QPS at ``batch`` for each nprobe,
    written into the matching rows as ``cpu_qps`` and ``vs_cpu``."""
    client = MilvusClient(root, device="cpu")
    client.load_collection(NAME)
    try:
        for nprobe in nprobes:
            sp = {"params": {knob: nprobe}} if nprobe else None
            _, el = run_batches(lambda b: client.search(NAME, b, limit=k, search_params=sp),
                                 queries, batch)
            for row in rows:
                if row["nprobe"] == nprobe and row["batch"] == batch:
                    row.update({"cpu_qps": len(queries) / el,
                                "vs_cpu": row["qps"] / (len(queries) / el)})
    finally:
        client.close()


def _plot(rows: list[dict], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install '.[bench]'")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for batch in sorted({r["batch"] for r in rows}):
        rs = [r for r in rows if r["batch"] == batch and r["nprobe"]]
        ax.plot([r["recall@10"] for r in rs], [r["qps"] for r in rs], "o-",
                label=f"Hotset, batch {batch}")
        if rs and "faiss_qps" in rs[0]:
            ax.plot([r["faiss_recall"] for r in rs], [r["faiss_qps"] for r in rs], "s--",
                    label=f"faiss-cpu, batch {batch}")
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per second")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="IVF/FLAT recall and QPS vs faiss-cpu")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--nq", type=int, default=1000)
    p.add_argument("--single-nq", type=int, default=200, help="queries timed at batch 1")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--nlist", type=int, default=1024, help="0: FLAT")
    p.add_argument("--nprobe", type=int_list, default=[8, 32, 128])
    p.add_argument("--index", choices=["IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW"],
                   default="IVF_FLAT")
    p.add_argument("--m", type=int, default=16, help="IVF_PQ sub-vectors")
    p.add_argument("--refine-k", type=float, default=0,
                   help="IVF_PQ: refine=True and this refine_k (faiss: IndexRefineFlat "
                        "with this k_factor); 0: no refine")
    p.add_argument("--M", type=int, default=16, help="HNSW M")
    p.add_argument("--ef-construction", type=int, default=200, help="HNSW efConstruction")
    p.add_argument("--ef", type=int_list, default=[16, 64, 256], help="HNSW search ef")
    p.add_argument("--batch", type=int_list, default=[1000])
    p.add_argument("--no-faiss", dest="faiss", action="store_false")
    p.add_argument("--milvus-lite", action="store_true",
                   help="also time Milvus Lite's IVF_FLAT on the same data (largest batch)")
    p.add_argument("--cpu-baseline", action="store_true",
                   help="on CUDA, also time the same engine on this host's CPU")
    p.add_argument("--device", default="auto")
    p.add_argument("--plot", default=None, help="write a recall-QPS PNG here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
