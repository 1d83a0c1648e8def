"""``python -m bench kernels``: the scan kernels alone, on CUDA, for tuning and figures.

On list-ordered manifold data (k-means lists, as an index build makes them), for each
nprobe: the fused per-pair Triton scan at several (block, block_d, num_warps) settings,
the list-grouped tensor-core scan (TF32 and exact float32), the plain-torch path
(``ref.ivf_search``), and two FLAT scans of the same rows for the batch: torch matmul +
topk (cuBLAS, the same-run baseline) and the grouped kernel. Each row gives QPS, the bytes
it reads per second as a fraction of the device's practical peak (a device-to-device copy,
measured in the same run) and its QPS as a fraction of its roofline bound
(``bench.roofline.bounds`` at that measured bandwidth and ``--tf32-tflops`` /
``--fp32-tflops``); every Triton setting's results are checked against the plain-torch
path (recall of its top-k).

``--latency N``: batch-1 latency p50/p99 over N single queries of the search path the
engine takes (coarse probe, scan, merge), launched and from CUDA graphs, for IVF_FLAT
(nprobe the first of ``--nprobe``) and FLAT. ``--crossover``: times the per-pair and
grouped scans (and cuBLAS against the grouped FLAT scan) over a ladder of batches and
writes where the grouped kernel starts to win to the dispatch's table
(``kernels/crossover.py``), under the device's name.

``--device cpu`` runs under ``TRITON_INTERPRET=1`` only, as a smoke test of this script
(its timings mean nothing).
"""
from __future__ import annotations

import datetime
import os
import time

import numpy as np
import torch

import kernels
from engine.index import ivf
from kernels import crossover, dispatch, ref

from .cli import int_list
from .datasets import manifold
from .report import emit
from .timing import best_seconds, peak_bandwidth, sync

SETTINGS = [(128, 32, 4), (128, 32, 8), (64, 32, 4), (256, 32, 8), (128, 64, 8)]


def _layout(args, dev: torch.device):
    data, queries = manifold(args.rows, args.nq, dim=args.dim)
    x = torch.from_numpy(data).to(dev)
    q = torch.from_numpy(queries).to(dev)
    sample = x[torch.randperm(args.rows, device=dev)[: 64 * args.nlist]]
    cent = ivf.train(sample, args.nlist, "L2", dev).to(dev)
    order, offsets = ivf.list_order(x, cent, "L2", dev)  # what an index build does
    x = x[order.to(dev)].contiguous()
    return x, (x * x).sum(1), offsets.to(dev), cent, q


def _recall(got: torch.Tensor, want: torch.Tensor) -> float:
    hits = sum(len(set(a) & set(b)) for a, b in zip(got.tolist(), want.tolist()))
    return hits / max(want.numel(), 1)


def _sweep(args, dev, x, x_sq, offsets, cent, q, peak) -> list[dict]:
    from kernels import triton_grouped, triton_ivf

    from .roofline import bounds
    sizes = offsets[1:] - offsets[:-1]
    rows = []
    for nprobe in args.nprobe:
        probes = ref.coarse_probe(q, cent, nprobe, "L2")
        scanned = int(sizes[probes].sum()) * x.shape[1] * x.element_size()
        _, want = ref.ivf_search(q, x, offsets, probes, args.k, "L2", x_sq=x_sq)
        roof = bounds(x.shape[0], x.shape[1], offsets.numel() - 1, nprobe, q.shape[0], peak,
                      args.tf32_tflops * 1e12, args.fp32_tflops * 1e12, args.grouped_tile[0])
        cases = [("torch (ref)", "per-pair", lambda: ref.ivf_search(
            q, x, offsets, probes, args.k, "L2", x_sq=x_sq))]
        for block, block_d, warps in SETTINGS:
            cases.append((f"triton {block}x{block_d} w{warps}", "per-pair",
                          lambda b=block, bd=block_d, w=warps: triton_ivf.ivf_search(
                              q, x, offsets, probes, args.k, "L2", x_sq=x_sq, block=b,
                              block_d=bd, num_warps=w)))
        bq, br = args.grouped_tile
        # the list-grouped kernel on the tensor cores (the interpreter has one precision)
        for precision in ("tf32", "ieee") if dev.type == "cuda" else ("ieee",):
            cases.append((f"triton grouped {precision}", "grouped",
                          lambda p=precision: triton_grouped.ivf_search(
                              q, x, offsets, probes, args.k, "L2", x_sq=x_sq, precision=p,
                              bq=bq, br=br)))
        for label, kind, fn in cases:
            agree = _recall(fn()[1], want)
            s = best_seconds(fn, args.repeat, dev)
            rows.append({"kernel": label, "nprobe": nprobe, "ms": s * 1e3,
                         "qps": args.nq / s, "GB_per_s": scanned / s / 1e9,
                         "of_peak": scanned / s / peak,
                         "of_bound": args.nq / s / roof[f"{kind} QPS bound"],
                         "agrees_with_ref": agree})
    # FLAT over the same rows: cuBLAS matmul + topk (the baseline) and the grouped kernel
    _, want = ref.flat_search(q, x, args.k, "L2", x_sq=x_sq)
    flat_bytes = x.numel() * x.element_size()
    flat_bound = min(peak / flat_bytes, args.tf32_tflops * 1e12 /
                     (2.0 * x.shape[0] * x.shape[1])) * args.nq
    for label, fn in (("torch matmul+topk (FLAT)", lambda: dispatch.matmul_flat_search(
                          q, x, args.k, "L2", x_sq=x_sq)),
                      ("triton grouped (FLAT)", lambda: triton_grouped.flat_search(
                          q, x, args.k, "L2", x_sq=x_sq, bq=bq, br=br,
                          precision="ieee"))):
        agree = _recall(fn()[1], want)
        s = best_seconds(fn, args.repeat, dev)
        rows.append({"kernel": label, "nprobe": None, "ms": s * 1e3, "qps": args.nq / s,
                     "GB_per_s": flat_bytes / s / 1e9, "of_peak": flat_bytes / s / peak,
                     "of_bound": args.nq / s / flat_bound, "agrees_with_ref": agree})
    return rows


def _percentiles(fn, queries: torch.Tensor, dev: torch.device) -> tuple[float, float]:
    """p50 and p99 microseconds of ``fn(one query)`` over ``queries``, each synced."""
    fn(queries[:1])
    sync(dev)
    times = []
    for i in range(queries.shape[0]):
        t0 = time.perf_counter()
        fn(queries[i:i + 1])
        sync(dev)
        times.append(time.perf_counter() - t0)
    p50, p99 = np.percentile(np.array(times) * 1e6, [50, 99])
    return float(p50), float(p99)


def _latency(args, dev, x, x_sq, offsets, cent) -> list[dict]:
    """Batch-1 p50/p99 of the engine's search path, launched and from CUDA graphs."""
    q = torch.from_numpy(manifold(args.rows, args.latency, dim=x.shape[1])[1]).to(dev)
    nprobe = args.nprobe[0]
    c_sq = (cent * cent).sum(1)

    def ivf(one):
        probes = kernels.coarse_probe(one, cent, nprobe, "L2", c_sq)
        return kernels.ivf_search(one, x, offsets, probes, args.k, "L2", x_sq=x_sq)

    def flat(one):
        return kernels.flat_search(one, x, args.k, "L2", x_sq=x_sq)

    def cublas(one):
        return dispatch.matmul_flat_search(one, x, args.k, "L2", x_sq=x_sq)

    rows = []
    for label, fn, graphs in ((f"IVF_FLAT nprobe {nprobe}", ivf, "0"),
                              (f"IVF_FLAT nprobe {nprobe}", ivf, "1"),
                              ("FLAT", flat, "0"), ("FLAT", flat, "1"),
                              ("FLAT matmul+topk", cublas, "0")):
        os.environ["HOTSET_CUDA_GRAPHS"] = graphs
        try:
            p50, p99 = _percentiles(fn, q, dev)
        finally:
            os.environ.pop("HOTSET_CUDA_GRAPHS")
        rows.append({"search": label, "cuda_graphs": graphs == "1" and dev.type == "cuda",
                     "p50_us": p50, "p99_us": p99})
    return rows


# batches the crossover is measured at (each kind's queries a list follow from them)
LADDER = [16, 64, 256, 1024, 4096, 16384]


def _first_win(points: list[tuple[float, float, float]]) -> float:
    """The smallest x from which the grouped time stays at or under the other's
    (``points``: (x, grouped s, other s), by x); past the last point when it never wins."""
    win = None
    for x_, grouped, other in reversed(points):
        if grouped > other:
            break
        win = x_
    return win if win is not None else 2 * points[-1][0]


def _crossover(args, dev, x, x_sq, offsets, cent) -> dict:
    from kernels import quant, triton_grouped, triton_ivf, triton_quant

    nlist = offsets.numel() - 1
    nprobe = args.nprobe[0]
    sizes = offsets[1:] - offsets[:-1]
    lab = torch.repeat_interleave(torch.arange(nlist, device=dev), sizes)
    t = quant.sq8_train(x)
    sq8 = quant.sq8_encode(x, t["vmin"], t["vdiff"])
    res = quant.residuals(x, cent, lab)
    cb = quant.pq_train(res, max(1, x.shape[1] // 8))
    pq = quant.pq_encode(res, cb)
    bq, br = args.grouped_tile
    tile = {"bq": bq, "br": br}
    scans = {
        "ivf_flat": (lambda q, p: triton_grouped.ivf_search(q, x, offsets, p, args.k, "L2",
                                                            x_sq=x_sq, **tile),
                     lambda q, p: triton_ivf.ivf_search(q, x, offsets, p, args.k, "L2",
                                                        x_sq=x_sq)),
        "ivf_sq8": (lambda q, p: triton_grouped.ivf_sq8_search(
                        q, sq8, t["scale"], t["base"], offsets, p, args.k, "L2", **tile),
                    lambda q, p: triton_quant.ivf_sq8_search(
                        q, sq8, t["scale"], t["base"], offsets, p, args.k, "L2")),
        "ivf_pq": (lambda q, p: triton_grouped.ivf_pq_search(q, pq, cent, cb, offsets, p,
                                                             args.k, "L2", **tile),
                   lambda q, p: triton_quant.ivf_pq_search(q, pq, cent, cb, offsets, p,
                                                           args.k, "L2"))}
    ladder = [b for b in LADDER if b <= args.crossover_max]
    queries = torch.from_numpy(manifold(args.rows, max(ladder), dim=x.shape[1])[1]).to(dev)
    found = {}
    for kind, (grouped, per_pair) in scans.items():
        points = []
        for b in ladder:
            q = queries[:b]
            probes = ref.coarse_probe(q, cent, nprobe, "L2")
            points.append((b * nprobe / nlist,
                           best_seconds(lambda: grouped(q, probes), args.repeat, dev),
                           best_seconds(lambda: per_pair(q, probes), args.repeat, dev)))
        found[kind] = _first_win(points)
    points = []
    for b in [1, *ladder]:
        q = queries[:b]
        points.append((b, best_seconds(lambda: triton_grouped.flat_search(
                           q, x, args.k, "L2", x_sq=x_sq, precision="ieee", **tile),
                           args.repeat, dev),
                       best_seconds(lambda: dispatch.matmul_flat_search(
                           q, x, args.k, "L2", x_sq=x_sq), args.repeat, dev)))
    found["flat"] = _first_win(points)
    return found


def run(args) -> None:
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench kernels times CUDA kernels: this machine's torch sees no GPU")
    if dev.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("--device cpu is a smoke test: set TRITON_INTERPRET=1")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    x, x_sq, offsets, cent, q = _layout(args, dev)
    peak = peak_bandwidth(dev, 1 << (28 if dev.type == "cuda" else 20))
    rows = _sweep(args, dev, x, x_sq, offsets, cent, q, peak)
    extra = {"rows": args.rows, "dim": args.dim, "nq": args.nq,
             "nlist": args.nlist, "peak_GB_per_s": peak / 1e9, "device": name}
    if args.latency:
        extra["latency"] = _latency(args, dev, x, x_sq, offsets, cent)
    if args.crossover:
        found = _crossover(args, dev, x, x_sq, offsets, cent)
        path = crossover.save(name, found, {
            "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "shape": f"{args.rows}x{args.dim} nlist {args.nlist} nprobe {args.nprobe[0]}",
            "torch": torch.__version__})
        extra["crossover"] = {"table": str(path), **found}
    emit("kernels", rows, args.json, extra)
    if not args.json:
        print(f"device {name}; practical peak {peak / 1e9:,.0f} GB/s")
        if args.latency:
            emit("latency", extra["latency"], False)
        if args.crossover:
            print("crossover (grouped from):", extra["crossover"])


def add_parser(sub) -> None:
    p = sub.add_parser("kernels", help="IVF scan kernels alone on CUDA (tuning sweep)")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--nq", type=int, default=1000)
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--nprobe", type=int_list, default=[8, 32, 128])
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--grouped-tile", type=int_list, default=[32, 64],
                   help="the grouped kernel's queries and rows a block (BQ,BR)")
    p.add_argument("--latency", type=int, default=0,
                   help="batch-1 p50/p99 over this many single queries (0: none)")
    p.add_argument("--crossover", action="store_true",
                   help="measure where the grouped kernel wins and write the dispatch table")
    p.add_argument("--crossover-max", type=int, default=LADDER[-1],
                   help="the largest batch of the crossover ladder")
    p.add_argument("--tf32-tflops", type=float, default=495.0,
                   help="the device's dense TF32 peak for the roofline (H100 SXM)")
    p.add_argument("--fp32-tflops", type=float, default=67.0)
    p.add_argument("--device", default="cuda")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
