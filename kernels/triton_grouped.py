"""The list-grouped IVF scan for large batches, in Triton, on the tensor cores.

``triton_ivf`` gives every (query, probed list) pair its own program, so a list probed by
``c`` queries is read ``c`` times. Here the pairs are grouped by list (``ref.probe_pairs``)
and cut into tiles of up to ``BQ`` pairs of one list; one program takes a tile and walks
its list in blocks of ``BR`` rows, each block's (BQ, BR) distances one ``tl.dot`` of the
tile's queries and the rows (TF32 for float32 rows unless ``precision="ieee"``; float16
rows natively), so a list is read once per tile instead of once per query. Each pair
keeps a running top-``K`` of (distance, row) keys in registers, folded as
``triton_ivf._fold`` does, row by row of the tile (masks and range bounds inside); the
programs write each pair's ``K`` keys where the per-pair kernel would, and the host merge
is the same (``triton_ivf.Launch``'s). Twin: ``ref.ivf_search``
(``tests/kernels/test_triton_grouped.py``, under ``TRITON_INTERPRET=1`` in CI).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .ref import probe_pairs
from .triton_ivf import MAX_K, _distance, _ordered, decode_keys

BQ = 32     # pairs (queries of one list) a program takes
BR = 64     # rows of the list a block multiplies
BD = 32     # dimensions a tl.dot step takes
NUM_WARPS = 8  # a (BQ, BR) block of keys and a (BQ, K) running top-k across 256 threads
_METRIC = {"L2": 0, "IP": 1, "COSINE": 2}


@triton.jit
def _grouped_scan_topk(q_ptr, x_ptr, xsq_ptr, qsq_ptr, off_ptr, tile_list_ptr,
                       tile_start_ptr, tile_count_ptr, pair_q_ptr, pair_id_ptr, mask_ptr,
                       out_ptr, d, lo, hi,
                       METRIC: tl.constexpr, HAS_MASK: tl.constexpr, K: tl.constexpr,
                       BQ: tl.constexpr, BR: tl.constexpr, BD: tl.constexpr,
                       HALF: tl.constexpr, IEEE: tl.constexpr):
    t = tl.program_id(0)
    lst = tl.load(tile_list_ptr + t)
    p0 = tl.load(tile_start_ptr + t)
    cnt = tl.load(tile_count_ptr + t)
    row_q = tl.arange(0, BQ)
    q_ok = row_q < cnt
    qi = tl.load(pair_q_ptr + p0 + row_q, mask=q_ok, other=0)
    r0 = tl.load(off_ptr + lst)
    r1 = tl.load(off_ptr + lst + 1)
    q_sq = tl.load(qsq_ptr + qi, mask=q_ok, other=0.0) if METRIC == 0 else 0.0
    lane = tl.arange(0, BR)
    best = tl.full((BQ, K), 0x7F8000007FFFFFFF, tl.int64)
    for start in range(r0, r1, BR):
        rows = start + lane
        inside = rows < r1
        acc = tl.zeros((BQ, BR), dtype=tl.float32)
        for d0 in range(0, d, BD):
            cols = d0 + tl.arange(0, BD)
            cm = cols < d
            qv = tl.load(q_ptr + qi[:, None] * d + cols[None, :],
                         mask=q_ok[:, None] & cm[None, :], other=0.0)        # (BQ, BD)
            xv = tl.load(x_ptr + rows[None, :] * d + cols[:, None],
                         mask=cm[:, None] & inside[None, :], other=0.0)      # (BD, BR)
            if HALF:
                acc = tl.dot(qv.to(xv.dtype), xv, acc)
            elif IEEE:
                acc = tl.dot(qv, xv, acc, input_precision="ieee")
            else:
                acc = tl.dot(qv, xv, acc, input_precision="tf32")
        if METRIC == 1:
            dist = -acc
        else:
            xsq = tl.load(xsq_ptr + rows, mask=inside, other=1.0)
            dist = _distance(acc, xsq[None, :], q_sq[:, None] if METRIC == 0 else 0.0,
                             METRIC)
        keep = inside[None, :] & (dist >= lo) & (dist < hi)
        if HAS_MASK:
            keep = keep & (tl.load(mask_ptr + rows, mask=inside, other=0) != 0)[None, :]
        high = _ordered(dist.to(tl.int32, bitcast=True)).to(tl.int64) << 32
        key = tl.where(keep, high | rows[None, :].to(tl.int64), 0x7F8000007FFFFFFF)
        top = ~tl.topk(~key, K)                                  # (BQ, K) ascending
        best = tl.sort(tl.minimum(best, tl.flip(top, 1)), 1)
    pid = tl.load(pair_id_ptr + p0 + row_q, mask=q_ok, other=0)
    tl.store(out_ptr + pid[:, None] * K + tl.arange(0, K)[None, :], best, mask=q_ok[:, None])


def tiles(probes: torch.Tensor, bq: int) -> tuple[torch.Tensor, ...]:
    """The (query, probed list) pairs grouped by list and cut into tiles of at most ``bq``
    pairs of one list: each tile's list, first pair and pair count, and each pair's query
    and flat id (query * nprobe + slot), pairs in list order."""
    nprobe = probes.shape[1]
    order, lists, counts = probe_pairs(probes)
    per = (counts + bq - 1) // bq                                       # tiles a list
    tile_list = torch.repeat_interleave(lists, per)
    first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, per)
    tile_no = torch.arange(tile_list.numel(), device=probes.device) - \
        torch.repeat_interleave(torch.cumsum(per, 0) - per, per)
    start = first + tile_no * bq
    count = torch.minimum(torch.repeat_interleave(counts, per) - tile_no * bq,
                          torch.full_like(start, bq))
    return tile_list, start, count, order // nprobe, order


def ivf_search(q: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
               k: int, metric: str, mask: torch.Tensor | None = None,
               lo: float | None = None, hi: float | None = None,
               x_sq: torch.Tensor | None = None, *, bq: int = BQ, br: int = BR,
               bd: int = BD, precision: str = "tf32", num_warps: int = NUM_WARPS
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``ref.ivf_search``; ``k`` <= ``MAX_K``. ``precision`` "tf32" (the
    default on float32 rows) or "ieee" (exact float32 products)."""
    assert k <= MAX_K, "larger k goes through ref.ivf_search"
    nq, nprobe = probes.shape
    n, d = x.shape
    assert n < 2**31 - 1, "row numbers travel in 31 bits"
    qf = q.float()
    if metric == "COSINE":
        qf = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-30)
    qf = qf.contiguous()
    if metric != "IP" and x_sq is None:
        x_sq = (x.float() ** 2).sum(1)
    kk = max(1 << max(0, (k - 1).bit_length()), 2)
    tile_list, start, count, pair_q, pair_id = tiles(probes, bq)
    out = torch.full((nq * nprobe, kk), 0x7F8000007FFFFFFF, dtype=torch.int64,
                     device=x.device)                 # pairs a repeated probe dropped: none
    half = x.dtype in (torch.float16, torch.bfloat16)
    if tile_list.numel():
        _grouped_scan_topk[(tile_list.numel(),)](
            qf, x.contiguous(), (x_sq if x_sq is not None else qf).float().contiguous(),
            (qf * qf).sum(1).contiguous(), offsets.contiguous(), tile_list, start, count,
            pair_q, pair_id, mask.to(torch.int8).contiguous() if mask is not None else out,
            out, d, float("-inf") if lo is None else float(lo),
            float("inf") if hi is None else float(hi), METRIC=_METRIC[metric],
            HAS_MASK=mask is not None, K=kk, BQ=bq, BR=max(br, kk), BD=bd, HALF=half,
            IEEE=precision == "ieee", num_warps=num_warps)
    keys, _ = torch.topk(out.reshape(nq, nprobe * kk), min(k, nprobe * kk), dim=1,
                         largest=False, sorted=True)
    return decode_keys(keys)
