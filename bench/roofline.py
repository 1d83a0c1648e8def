"""``python -m bench roofline``: on paper, what the per-pair and the list-grouped IVF scans
read and compute for a collection, a probe count and a batch, and the QPS a device could
reach by its memory bandwidth and by its arithmetic, so each GPU figure has a limit to be
compared with. Nothing is run.

Model (float32 rows of ``dim``, ``nlist`` equal lists of ``rows / nlist``, queries spread
evenly over the lists): a batch makes ``P = batch * nprobe`` (query, list) pairs, and
``2 * P * (rows / nlist) * dim`` FLOPs either way.
- per-pair (``kernels/triton_ivf.py``): every pair reads its list, ``P * (rows / nlist) *
  dim * 4`` bytes; the products run on the CUDA cores (``--fp32-tflops``).
- grouped (``kernels/triton_grouped.py``): each probed list is read once per tile of up to
  ``BQ`` of its queries: ``L * ceil(c / BQ) * (rows / nlist) * dim * 4`` bytes, with ``L``
  the lists the batch probes (``nlist * (1 - (1 - 1/nlist)^P)``) and ``c = P / L``; the
  products run on the tensor cores in TF32 (``--tf32-tflops``).
Defaults: an H100 SXM, 3.35 TB/s and ~495 dense TF32 / 67 FP32 TFLOPS.
"""
from __future__ import annotations

import math

from .cli import int_list
from .report import emit
from kernels.triton_grouped import BQ


def bounds(rows: int, dim: int, nlist: int, nprobe: int, batch: int, bw: float,
           tf32: float, fp32: float, bq: int = BQ) -> dict:
    """Bytes, FLOPs and QPS bounds of both scans for one shape (``bw`` in bytes/s, the
    peaks in FLOP/s)."""
    per_list = rows / nlist
    pairs = batch * nprobe
    flops = 2.0 * pairs * per_list * dim
    pair_bytes = pairs * per_list * dim * 4
    lists = nlist * (1 - (1 - 1 / nlist) ** pairs)
    per_probed = pairs / lists
    grouped_bytes = lists * math.ceil(per_probed / bq) * per_list * dim * 4
    pair_time = max(pair_bytes / bw, flops / fp32)
    grouped_time = max(grouped_bytes / bw, flops / tf32)
    return {"rows": rows, "dim": dim, "nprobe": nprobe, "batch": batch,
            "GFLOP": flops / 1e9, "per-pair GB": pair_bytes / 1e9,
            "per-pair QPS bound": batch / pair_time,
            "per-pair bound by": "memory" if pair_bytes / bw >= flops / fp32 else "compute",
            "grouped GB": grouped_bytes / 1e9, "grouped QPS bound": batch / grouped_time,
            "grouped bound by": "memory" if grouped_bytes / bw >= flops / tf32
            else "compute"}


def run(args) -> None:
    rows = [bounds(n, d, args.nlist, p, b, args.bandwidth * 1e12, args.tf32_tflops * 1e12,
                   args.fp32_tflops * 1e12)
            for n, d in ((1_000_000, 128), (10_000_000, 768))
            for p in args.nprobe for b in args.batch]
    emit("roofline", rows, args.json, {"nlist": args.nlist, "bandwidth_TBps": args.bandwidth,
                                       "tf32_TFLOPS": args.tf32_tflops,
                                       "fp32_TFLOPS": args.fp32_tflops})


def add_parser(sub) -> None:
    p = sub.add_parser("roofline", help="IVF scan bounds on paper (bytes, FLOPs, QPS)")
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--nprobe", type=int_list, default=[8, 32, 128])
    p.add_argument("--batch", type=int_list, default=[1, 100, 10_000])
    p.add_argument("--bandwidth", type=float, default=3.35, help="TB/s")
    p.add_argument("--tf32-tflops", type=float, default=495.0)
    p.add_argument("--fp32-tflops", type=float, default=67.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
