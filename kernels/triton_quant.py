"""Fused IVF_SQ8 and IVF_PQ list scans + top-k in Triton, on ``triton_ivf``'s scheme: grid
(query, probed list, split), a running top-``K`` of (distance, row) keys in registers
(``triton_ivf._fold``), one host merge (``triton_ivf.Launch``).

- ``_sq8_scan_topk``: a block of rows is loaded as uint8 codes and decoded in registers
  (``code * scale + base`` per dimension), its squared norms summed in the same pass; the
  distance as in the float scan. Reads ``d`` bytes a row instead of ``4 d``.
- ``_pq_scan_topk``: the program first builds its (query, list) pair's lookup table in
  registers, ``(M, 256)`` entries (L2: ``||cb||^2 - 2 (q - c_l).cb`` per subspace, from
  the codebooks; IP: ``-q.cb``), then per block gathers each row's ``M`` entries from it
  (``tl.gather``) and adds the pair's base (L2 ``||q - c_l||^2``, IP ``-q.c_l``). Reads
  ``m`` bytes a row. ``M`` is ``m`` rounded up to a power of two (the extra subspaces
  contribute zero).
COSINE rows were normalised when they were coded: both scan COSINE as IP on unit queries.
Twins: ``ref.ivf_sq8_search`` and ``ref.ivf_pq_search`` (``tests/kernels/
test_triton_quant.py`` holds them equal, under ``TRITON_INTERPRET=1`` in CI).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_ivf import BLOCK, BLOCK_D, MAX_K, NUM_WARPS, Launch, _fold, _probed_list

KSUB = 256
PQ_WARPS = 8  # the (M, 256) table in registers: 16 a thread at M = 16 (4 warps: 137 in all)


@triton.jit
def _sq8_scan_topk(q_ptr, codes_ptr, scale_ptr, base_ptr, off_ptr, probe_ptr, mask_ptr,
                   out_ptr, nprobe, d, lo, hi, q_sq_ptr,
                   L2: tl.constexpr, HAS_MASK: tl.constexpr, K: tl.constexpr,
                   SPLIT: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    qi = tl.program_id(0)
    pj = tl.program_id(1)
    s = tl.program_id(2)
    lst, r0_64, r0, r1 = _probed_list(probe_ptr, off_ptr, qi, pj, nprobe)
    lane = tl.arange(0, BLOCK)
    best = tl.full((K,), 0x7F8000007FFFFFFF, tl.int64)
    for start in range(r0 + s * BLOCK, r1, SPLIT * BLOCK):
        rows = start + lane
        inside = rows < r1
        c_blk = codes_ptr + (r0_64 + (start - r0)) * d
        acc = tl.zeros((BLOCK,), dtype=tl.float32)
        sq = tl.zeros((BLOCK,), dtype=tl.float32)
        for d0 in range(0, d, BLOCK_D):
            cols = d0 + tl.arange(0, BLOCK_D)
            cm = cols < d
            qv = tl.load(q_ptr + qi * d + cols, mask=cm, other=0.0)
            sc = tl.load(scale_ptr + cols, mask=cm, other=0.0)
            bs = tl.load(base_ptr + cols, mask=cm, other=0.0)
            code = tl.load(c_blk + lane[:, None] * d + cols[None, :],
                           mask=inside[:, None] & cm[None, :], other=0)
            xv = code.to(tl.float32) * sc[None, :] + bs[None, :]
            acc += tl.sum(xv * qv[None, :], axis=1)
            if L2:
                sq += tl.sum(xv * xv, axis=1)
        if L2:
            dist = tl.maximum(tl.load(q_sq_ptr + qi) + sq - 2.0 * acc, 0.0)
        else:
            dist = -acc
        best = _fold(best, dist, inside, rows, mask_ptr, lo, hi, HAS_MASK, K)
    tl.store(out_ptr + ((qi * nprobe + pj) * SPLIT + s) * K + tl.arange(0, K), best)


@triton.jit
def _pq_scan_topk(q_ptr, codes_ptr, cent_ptr, cb_ptr, cb_sq_ptr, off_ptr, probe_ptr,
                  mask_ptr, out_ptr, nprobe, d, m, lo, hi,
                  L2: tl.constexpr, HAS_MASK: tl.constexpr, K: tl.constexpr,
                  SPLIT: tl.constexpr, BLOCK: tl.constexpr, M: tl.constexpr,
                  DSUB: tl.constexpr, BLOCK_D: tl.constexpr):
    qi = tl.program_id(0)
    pj = tl.program_id(1)
    s = tl.program_id(2)
    lst, r0_64, r0, r1 = _probed_list(probe_ptr, off_ptr, qi, pj, nprobe)
    sub = tl.arange(0, M)
    ent = tl.arange(0, 256)
    live = sub < m
    # the pair's base: L2 ||q - c||^2, IP -q.c
    base = 0.0
    for d0 in range(0, d, BLOCK_D):
        cols = d0 + tl.arange(0, BLOCK_D)
        cm = cols < d
        qv = tl.load(q_ptr + qi * d + cols, mask=cm, other=0.0)
        cv = tl.load(cent_ptr + lst * d + cols, mask=cm, other=0.0)
        if L2:
            base += tl.sum((qv - cv) * (qv - cv), axis=0)
        else:
            base -= tl.sum(qv * cv, axis=0)
    # the (M, 256) lookup table: one dimension of every subspace at a time
    table = tl.zeros((M, 256), dtype=tl.float32)
    for t in range(DSUB):
        dim = sub * DSUB + t
        qv = tl.load(q_ptr + qi * d + dim, mask=live, other=0.0)
        if L2:
            qv = qv - tl.load(cent_ptr + lst * d + dim, mask=live, other=0.0)
        cb = tl.load(cb_ptr + (sub[:, None] * 256 + ent[None, :]) * DSUB + t,
                     mask=live[:, None], other=0.0)
        table += qv[:, None] * cb
    if L2:
        table = tl.load(cb_sq_ptr + sub[:, None] * 256 + ent[None, :], mask=live[:, None],
                        other=0.0) - 2.0 * table
    else:
        table = -table
    lane = tl.arange(0, BLOCK)
    best = tl.full((K,), 0x7F8000007FFFFFFF, tl.int64)
    for start in range(r0 + s * BLOCK, r1, SPLIT * BLOCK):
        rows = start + lane
        inside = rows < r1
        c_blk = codes_ptr + (r0_64 + (start - r0)) * m
        code = tl.load(c_blk + sub[:, None] + lane[None, :] * m,
                       mask=live[:, None] & inside[None, :], other=0).to(tl.int32)  # (M, B)
        dist = base + tl.sum(tl.gather(table, code, 1), axis=0)
        if L2:
            dist = tl.maximum(dist, 0.0)
        best = _fold(best, dist, inside, rows, mask_ptr, lo, hi, HAS_MASK, K)
    tl.store(out_ptr + ((qi * nprobe + pj) * SPLIT + s) * K + tl.arange(0, K), best)


def _unit(q: torch.Tensor, metric: str) -> torch.Tensor:
    qf = q.float().contiguous()
    if metric == "COSINE":
        qf = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return qf


def ivf_sq8_search(q: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor,
                   base: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor, k: int,
                   metric: str, mask: torch.Tensor | None = None, lo: float | None = None,
                   hi: float | None = None, *, block: int = BLOCK, block_d: int = BLOCK_D,
                   num_warps: int = NUM_WARPS, split: int | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``ref.ivf_sq8_search``; ``k`` <= ``MAX_K``."""
    assert k <= MAX_K, "larger k goes through ref.ivf_sq8_search"
    n, d = codes.shape
    assert n < 2**31 - 1, "row numbers travel in 31 bits"
    qf = _unit(q, metric)
    go = Launch.of(k, probes, offsets, codes.shape[0], mask, lo, hi, block, split,
                   codes.device)
    _sq8_scan_topk[go.grid](
        qf, codes.contiguous(), scale.float().contiguous(), base.float().contiguous(),
        offsets.contiguous(), probes.contiguous(), go.mask, go.out, probes.shape[1], d,
        go.lo, go.hi, (qf * qf).sum(1).contiguous(), L2=metric == "L2",
        HAS_MASK=mask is not None, K=go.K, SPLIT=go.split, BLOCK=go.block,
        BLOCK_D=min(block_d, triton.next_power_of_2(d)), num_warps=num_warps)
    return go.result(k)


def ivf_pq_search(q: torch.Tensor, codes: torch.Tensor, centroids: torch.Tensor,
                  codebooks: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
                  k: int, metric: str, mask: torch.Tensor | None = None,
                  lo: float | None = None, hi: float | None = None,
                  cb_sq: torch.Tensor | None = None, *, block: int = 64,
                  block_d: int = BLOCK_D, num_warps: int = PQ_WARPS,
                  split: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``ref.ivf_pq_search``; ``k`` <= ``MAX_K``, nbits = 8."""
    assert k <= MAX_K, "larger k goes through ref.ivf_pq_search"
    n, m = codes.shape
    _, ksub, dsub = codebooks.shape
    assert ksub == KSUB and n < 2**31 - 1
    d = m * dsub
    qf = _unit(q, metric)
    if cb_sq is None:
        cb_sq = (codebooks.float() ** 2).sum(-1)
    go = Launch.of(k, probes, offsets, codes.shape[0], mask, lo, hi, block, split,
                   codes.device)
    _pq_scan_topk[go.grid](
        qf, codes.contiguous(), centroids.float().contiguous(),
        codebooks.float().contiguous(), cb_sq.float().contiguous(), offsets.contiguous(),
        probes.contiguous(), go.mask, go.out, probes.shape[1], d, m, go.lo, go.hi,
        L2=metric == "L2", HAS_MASK=mask is not None, K=go.K, SPLIT=go.split,
        BLOCK=go.block, M=triton.next_power_of_2(m), DSUB=dsub,
        BLOCK_D=min(block_d, triton.next_power_of_2(d)), num_warps=num_warps)
    return go.result(k)
