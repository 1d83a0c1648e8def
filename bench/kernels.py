"""``python -m bench kernels``: the IVF list-scan kernels alone, on CUDA, for tuning.

On list-ordered manifold data (k-means lists, as an index build makes them), times the fused
per-pair Triton scan at several (block, block_d, num_warps) settings, the list-grouped
tensor-core scan (TF32 and exact float32), and the plain-torch path
(``ref.ivf_search``, grouped by list) for each nprobe, and reports the bytes each query-by-
query scan reads (exact: the probed lists' sizes) per second as a fraction of the device's
practical peak (a device-to-device copy, bytes read + written), measured in the same run.
Every Triton setting's results are checked against the plain-torch path (recall of its
top-k). One device session gets the whole table, so the defaults in ``kernels/triton_ivf.py``
can be chosen from figures. ``--device cpu`` runs under ``TRITON_INTERPRET=1`` only, as a
smoke test of this script (its timings mean nothing).
"""
from __future__ import annotations

import os

import torch

from engine.index import ivf
from kernels import ref

from .cli import int_list
from .datasets import manifold
from .report import emit
from .timing import best_seconds, peak_bandwidth

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


def run(args) -> None:
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench kernels times CUDA kernels: this machine's torch sees no GPU")
    if dev.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("--device cpu is a smoke test: set TRITON_INTERPRET=1")
    from kernels import triton_grouped, triton_ivf

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu (interpreter)"
    x, x_sq, offsets, cent, q = _layout(args, dev)
    sizes = offsets[1:] - offsets[:-1]
    peak = peak_bandwidth(dev, 1 << (28 if dev.type == "cuda" else 20))
    rows = []
    for nprobe in args.nprobe:
        probes = ref.coarse_probe(q, cent, nprobe, "L2")
        scanned = int(sizes[probes].sum()) * x.shape[1] * x.element_size()
        _, want = ref.ivf_search(q, x, offsets, probes, args.k, "L2", x_sq=x_sq)
        cases = [("torch (ref)", lambda: ref.ivf_search(q, x, offsets, probes, args.k, "L2",
                                                       x_sq=x_sq))]
        for block, block_d, warps in SETTINGS:
            cases.append((f"triton {block}x{block_d} w{warps}",
                          lambda b=block, bd=block_d, w=warps: triton_ivf.ivf_search(
                              q, x, offsets, probes, args.k, "L2", x_sq=x_sq, block=b,
                              block_d=bd, num_warps=w)))
        bq, br = args.grouped_tile
        # the list-grouped kernel on the tensor cores (the interpreter has one precision)
        for precision in ("tf32", "ieee") if dev.type == "cuda" else ("ieee",):
            cases.append((f"triton grouped {precision}",
                          lambda p=precision: triton_grouped.ivf_search(
                              q, x, offsets, probes, args.k, "L2", x_sq=x_sq, precision=p,
                              bq=bq, br=br)))
        for label, fn in cases:
            got = fn()[1]
            hits = sum(len(set(a) & set(b)) for a, b in zip(got.tolist(), want.tolist()))
            s = best_seconds(fn, args.repeat, dev)
            rows.append({"kernel": label, "nprobe": nprobe, "ms": s * 1e3,
                         "qps": args.nq / s, "GB_per_s": scanned / s / 1e9,
                         "of_peak": scanned / s / peak,
                         "agrees_with_ref": hits / want.numel()})
    emit("kernels", rows, args.json, {"rows": args.rows, "dim": args.dim, "nq": args.nq,
                                      "nlist": args.nlist, "peak_GB_per_s": peak / 1e9,
                                      "device": name})
    if not args.json:
        print(f"device {name}; practical peak {peak / 1e9:,.0f} GB/s")


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
    p.add_argument("--device", default="cuda")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
