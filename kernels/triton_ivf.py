"""Fused IVF list scan + top-k in Triton: the full distance matrix is never written out.

Grid (nq, nprobe, blocks): each program takes one query, one of its probed lists and one
block of ``BLOCK`` rows of that list; it computes the block's distances in registers (dot
products over ``BLOCK_D``-wide slices of the dimension), masks rows outside the list, rows
the ``mask`` removes and distances outside ``[lo, hi)``, then extracts its best ``K``
(value, row) pairs by K rounds of min-reduction and writes only those. The host merges the
(nq, nprobe * blocks * K) candidates with one ``torch.topk``. ``K`` is a power of two >= k,
at most ``MAX_K``; larger k goes through ``ref.ivf_search``.

Runs on CUDA, and on the CPU under ``TRITON_INTERPRET=1`` (how CI holds it equal to its
plain-torch twin ``ref.ivf_search``).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_K = 64
BLOCK = 128
_METRIC = {"L2": 0, "IP": 1, "COSINE": 2}


@triton.jit
def _ivf_block_topk(q_ptr, x_ptr, xsq_ptr, off_ptr, probe_ptr, mask_ptr, out_d_ptr, out_i_ptr,
                    nprobe, nblocks, d, lo, hi, q_sq_ptr,
                    METRIC: tl.constexpr, HAS_MASK: tl.constexpr, K: tl.constexpr,
                    BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    qi = tl.program_id(0)
    pj = tl.program_id(1)
    b = tl.program_id(2)
    lst = tl.load(probe_ptr + qi * nprobe + pj)
    r0 = tl.load(off_ptr + lst)
    r1 = tl.load(off_ptr + lst + 1)
    rows = r0 + b * BLOCK + tl.arange(0, BLOCK)
    inside = rows < r1
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for d0 in range(0, d, BLOCK_D):
        cols = d0 + tl.arange(0, BLOCK_D)
        cm = cols < d
        qv = tl.load(q_ptr + qi * d + cols, mask=cm, other=0.0).to(tl.float32)
        xv = tl.load(x_ptr + rows[:, None] * d + cols[None, :],
                     mask=inside[:, None] & cm[None, :], other=0.0).to(tl.float32)
        acc += tl.sum(xv * qv[None, :], axis=1)
    if METRIC == 1:
        dist = -acc
    else:
        xsq = tl.load(xsq_ptr + rows, mask=inside, other=1.0)
        if METRIC == 0:
            dist = tl.maximum(tl.load(q_sq_ptr + qi) + xsq - 2.0 * acc, 0.0)
        else:
            dist = -acc / tl.maximum(tl.sqrt(xsq), 1e-30)
    keep = inside & (dist >= lo) & (dist < hi)
    if HAS_MASK:
        keep = keep & (tl.load(mask_ptr + rows, mask=inside, other=0) != 0)
    dist = tl.where(keep, dist, float("inf"))
    lane = tl.arange(0, BLOCK)
    base = ((qi * nprobe + pj) * nblocks + b) * K
    for i in tl.static_range(K):
        m = tl.min(dist, axis=0)
        at = tl.argmin(dist, axis=0)
        row = tl.sum(tl.where(lane == at, rows, 0), axis=0)
        tl.store(out_d_ptr + base + i, m)
        tl.store(out_i_ptr + base + i, tl.where(m < float("inf"), row, -1))
        dist = tl.where(lane == at, float("inf"), dist)


def ivf_search(q: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
               k: int, metric: str, mask: torch.Tensor | None = None,
               lo: float | None = None, hi: float | None = None,
               x_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``ref.ivf_search``; ``k`` <= ``MAX_K``."""
    assert k <= MAX_K, "larger k goes through ref.ivf_search"
    nq, nprobe = probes.shape
    n, d = x.shape
    qf = q.float().contiguous()
    if metric == "COSINE":
        qf = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-30)
    if metric != "IP" and x_sq is None:
        x_sq = (x.float() ** 2).sum(1)
    if x_sq is None:
        x_sq = torch.empty(1, device=x.device)
    q_sq = (qf * qf).sum(1).contiguous()
    sizes = offsets[1:] - offsets[:-1]
    longest = int(sizes.max()) if sizes.numel() else 0
    nblocks = max(1, triton.cdiv(longest, BLOCK))
    kk = 1 << max(0, (k - 1).bit_length())
    out_d = torch.empty((nq, nprobe, nblocks, kk), dtype=torch.float32, device=x.device)
    out_i = torch.empty((nq, nprobe, nblocks, kk), dtype=torch.int64, device=x.device)
    mask_arg = mask.to(torch.int8).contiguous() if mask is not None else out_i
    _ivf_block_topk[(nq, nprobe, nblocks)](
        qf, x.contiguous(), x_sq.float().contiguous(), offsets.contiguous(),
        probes.contiguous(), mask_arg, out_d, out_i, nprobe, nblocks, d,
        float("-inf") if lo is None else float(lo), float("inf") if hi is None else float(hi),
        q_sq, METRIC=_METRIC[metric], HAS_MASK=mask is not None, K=kk, BLOCK=BLOCK,
        BLOCK_D=min(64, triton.next_power_of_2(d)))
    cand_d = out_d.reshape(nq, -1)
    best, pos = torch.topk(cand_d, min(k, cand_d.shape[1]), dim=1, largest=False)
    idx = torch.gather(out_i.reshape(nq, -1), 1, pos)
    idx = torch.where(torch.isinf(best), torch.full_like(idx, -1), idx)
    return best, idx
